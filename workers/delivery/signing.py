"""Webhook signatures: Standard Webhooks headers plus LaunchDarkly's `X-LD-Signature`.

Standard Webhooks (https://www.standardwebhooks.com) signs `{id}.{timestamp}.{body}` with
HMAC-SHA256 and sends `v1,<base64>` per secret in `webhook-signature`. Its secrets are
`whsec_<base64>` and the key is the decoded bytes; any other secret is used as its UTF-8
bytes. `X-LD-Signature` is LaunchDarkly's: the hex HMAC-SHA256 of the body alone, keyed
by the secret string's UTF-8 bytes (`whsec_` included), as LaunchDarkly receivers expect.
During a secret rotation each header carries one signature per secret, space-separated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from relay.store.subscriptions import SubscriptionRecord

__all__ = ["active_secrets", "sign", "signing_key"]

_WHSEC = "whsec_"


def sign(*, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The signature headers for one attempt; without secrets only id and timestamp."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return headers
    signed = f"{msg_id}.{timestamp}.".encode() + body
    headers["webhook-signature"] = " ".join(
        "v1," + base64.b64encode(_hmac(signing_key(secret), signed)).decode() for secret in secrets
    )
    headers["X-LD-Signature"] = " ".join(_hmac(secret.encode(), body).hex() for secret in secrets)
    return headers


def signing_key(secret: str) -> bytes:
    """The Standard Webhooks key of a secret: `whsec_` base64 decoded, else its UTF-8 bytes."""
    if secret.startswith(_WHSEC):
        try:
            # the padding the reference library adds, so unpadded secrets decode alike
            key = base64.b64decode(secret[len(_WHSEC) :] + "==")
        except binascii.Error:
            key = b""
        if key:
            return key
    return secret.encode()


def active_secrets(record: SubscriptionRecord, *, now_ms: int) -> list[str]:
    """The current secret, then the replaced one while its overlap lasts."""
    return record.signing_secrets(now_ms=now_ms)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()
