"""JSON Patch (RFC 6902) on a subscription's editable document.

The document is `{name, config, statements, on, tags}` as a client reads it (secrets
masked), so a `test` operation compares against what the client saw. A PATCH body is a
patch array, or LaunchDarkly's envelope `{"comment": ..., "patch": [...]}`. Fields whose
names start with `_` are read-only. A failed `test` is a 409 `optimistic_locking_error`;
any other problem is a 400 naming the operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from relay.errors import ConflictError, FieldProblem, InvalidRequestError

_ENVELOPE = ("comment", "patch")
# each operation copies the document; a subscription never needs more than this in one go
MAX_OPERATIONS = 100


def patch_operations(body: Any) -> tuple[list[Mapping[str, Any]], str]:
    """The operations of a PATCH body, and the attribute prefix naming them in errors."""
    prefix = ""
    # a lone operation object is a common mistake: say what is expected, not "unknown field op"
    if isinstance(body, Mapping) and ("patch" in body or "op" not in body):
        body, prefix = _unwrap(body), "patch"
    if not isinstance(body, list):
        attribute = prefix or "body"
        raise _invalid(attribute, "must be a JSON Patch: an array of operations")
    if len(body) > MAX_OPERATIONS:
        raise _invalid(prefix or "body", f"at most {MAX_OPERATIONS} operations")
    for index, operation in enumerate(body):
        _check_operation(operation, f"{prefix}[{index}]")
    return body, prefix


def apply_patch(
    document: dict[str, Any], operations: list[Mapping[str, Any]], *, prefix: str = ""
) -> dict[str, Any]:
    """The document after every operation (a new object); raises before any partial result."""
    for index, operation in enumerate(operations):
        attribute = f"{prefix}[{index}]"
        try:
            document = jsonpatch.JsonPatch([operation]).apply(document)
        except jsonpatch.JsonPatchTestFailed as exc:
            path = operation.get("path")
            raise ConflictError(
                f"{attribute}: test failed: {path} does not hold the tested value",
                code="optimistic_locking_error",
            ) from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise _invalid(attribute, _reason(operation, exc)) from exc
    return document


def _reason(operation: Mapping[str, Any], exc: Exception) -> str:
    # jsonpatch quotes the whole document after " in "; the path says enough
    text = str(exc).split(" in {")[0][:200]
    op, path = operation.get("op"), operation.get("path")
    return f"cannot {op} {path}: {text}" if isinstance(path, str) and path else text


def _unwrap(envelope: Mapping[str, Any]) -> Any:
    for name in envelope:
        if name not in _ENVELOPE:
            raise _invalid(str(name), "unknown field; expected comment and patch")
    if "patch" not in envelope:
        raise _invalid("patch", "is required")
    comment = envelope.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise _invalid("comment", "must be a string")
    return envelope["patch"]


def _check_operation(operation: Any, attribute: str) -> None:
    if not isinstance(operation, Mapping):
        raise _invalid(attribute, "must be an object with op and path")
    for member in ("path", "from"):
        pointer = operation.get(member)
        if isinstance(pointer, str) and _first_segment(pointer).startswith("_"):
            raise _invalid(f"{attribute}.{member}", f"{pointer} is read-only")


def _first_segment(pointer: str) -> str:
    return pointer.split("/")[1] if pointer.startswith("/") else ""


def _invalid(attribute: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"invalid patch: {attribute}: {reason}", [FieldProblem(attribute, reason)]
    )
