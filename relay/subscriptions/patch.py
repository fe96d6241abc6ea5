"""JSON Patch (RFC 6902) on a subscription's editable document, bounded in time and memory.

The document is `{name, config, statements, on, tags}` as a client reads it (secrets
masked), so a `test` operation compares against what the client saw. A PATCH body is a
patch array, or LaunchDarkly's envelope `{"comment": ..., "patch": [...]}`. Fields whose
names start with `_` are read-only. A failed `test` is a 409 `optimistic_locking_error`;
any other problem is a 400 naming the operation.

Operations apply one by one to one private copy of the document. `copy` can double it
(20 copies of `/tags` into itself made 2^20 elements, 4 s and 900 MB), so the serialized
size is known after every operation that adds, and a patch stops with a 400 as soon as the
document would pass `max_bytes` (RELAY_MAX_SUBSCRIPTION_BYTES). One operation can at most
double a document within the limit, or add a value itself within it, and the values of a
patch together are at most twice the limit: memory stays under three times the limit,
time under 100 serializations of it (about 10 ms for 64 KiB).

jsonpatch copies and compares values recursively (a `copy` of 700 nested arrays raised
RecursionError), so every operation's value, and the document after every operation that
changes it, is at most `MAX_DEPTH` levels deep, measured without recursion. A string with a
lone surrogate (`"\\ud800"` is valid JSON text) has no UTF-8 form and is refused as well.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from relay.errors import ConflictError, FieldProblem, InvalidRequestError

_ENVELOPE = ("comment", "patch")
# each operation costs up to one serialization of the document; 100 keep a patch < 100 ms
MAX_OPERATIONS = 100
# the operations that can grow, deepen or rename: the document is measured after each
_CHANGING = ("add", "replace", "copy", "move")
# a subscription's own fields are at most 4 levels deep (config.headers, statements[].resources)
MAX_DEPTH = 32
# the values of one patch together: enough to `test` a whole document and replace it
VALUES_FACTOR = 2


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


def document_size(document: Any) -> int:
    """Bytes of `document` as compact UTF-8 JSON, what RELAY_MAX_SUBSCRIPTION_BYTES measures.

    Raises UnicodeEncodeError when a string holds a lone surrogate (it has no UTF-8 form).
    """
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


def deeper_than(value: Any, levels: int) -> bool:
    """Whether `value` nests objects and arrays more than `levels` deep (`[[]]` is 2 levels)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > levels:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def apply_patch(
    document: dict[str, Any],
    operations: list[Mapping[str, Any]],
    *,
    max_bytes: int,
    prefix: str = "",
) -> dict[str, Any]:
    """The document after every operation (a new object); raises before any partial result."""
    current: Any = json.loads(json.dumps(document))  # ours to change in place
    values = 0
    for index, operation in enumerate(operations):
        attribute = f"{prefix}[{index}]"
        values += _value_size(operation, max_bytes, attribute)
        if values > VALUES_FACTOR * max_bytes:
            reason = (
                f"the values of this patch add up to more than {VALUES_FACTOR * max_bytes} "
                f"bytes of JSON, {VALUES_FACTOR} x RELAY_MAX_SUBSCRIPTION_BYTES"
            )
            raise _invalid(attribute, reason)
        try:
            current = jsonpatch.JsonPatch([operation]).apply(current, in_place=True)
        except RecursionError as exc:  # the depth checks should make this unreachable
            raise _invalid(attribute, f"nested too deeply; at most {MAX_DEPTH} levels") from exc
        except jsonpatch.JsonPatchTestFailed as exc:
            path = operation.get("path")
            raise ConflictError(
                f"{attribute}: test failed: {path} does not hold the tested value",
                code="optimistic_locking_error",
            ) from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise _invalid(attribute, _reason(operation, exc)) from exc
        if operation.get("op") in _CHANGING:
            _check_document(current, max_bytes, attribute)
    if not isinstance(current, dict):
        raise _invalid(prefix or "body", "the patched document must be an object")
    return current


def _value_size(operation: Mapping[str, Any], max_bytes: int, attribute: str) -> int:
    """Bytes of the operation's value; a value too deep or larger than a subscription is refused."""
    if "value" not in operation:
        return 0
    value = operation["value"]
    if deeper_than(value, MAX_DEPTH):
        raise _invalid(attribute, f"its value is nested more than {MAX_DEPTH} levels deep")
    size = _size(value, attribute)
    if size > max_bytes:
        raise _too_large(attribute, f"its value is {size} bytes", max_bytes)
    return size


def _check_document(document: Any, max_bytes: int, attribute: str) -> None:
    """The document after an operation: within MAX_DEPTH levels and max_bytes."""
    if deeper_than(document, MAX_DEPTH):
        reason = f"the subscription would be nested more than {MAX_DEPTH} levels deep"
        raise _invalid(attribute, reason)
    if _size(document, attribute) > max_bytes:
        raise _too_large(attribute, "the subscription would be larger than the limit", max_bytes)


def _size(document: Any, attribute: str) -> int:
    try:
        return document_size(document)
    except UnicodeEncodeError as exc:
        reason = "a string holds a lone surrogate (\\ud800-\\udfff), which has no UTF-8 form"
        raise _invalid(attribute, reason) from exc


def _too_large(attribute: str, measured: str, max_bytes: int) -> InvalidRequestError:
    return _invalid(
        attribute,
        f"{measured}; a subscription may be at most {max_bytes} bytes of JSON "
        "(RELAY_MAX_SUBSCRIPTION_BYTES)",
    )


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
