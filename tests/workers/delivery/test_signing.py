"""Webhook signatures: Standard Webhooks headers and LaunchDarkly's X-LD-Signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.store.subscriptions import SubscriptionRecord
from workers.delivery.signing import active_secrets, sign

BODY = json.dumps({"id": 7, "type": "feature-created", "featureName": "ünïcode"}).encode()
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
PLAIN = "a plain shared secret"


def ld_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(*secrets: str, body: bytes = BODY) -> dict[str, str]:
    return sign(msg_id="dlv_123", timestamp=int(time.time()), body=body, secrets=secrets)


def test_standard_webhooks_headers_name_the_message() -> None:
    """webhook-id is the message id and webhook-timestamp the integer seconds given."""
    headers = sign(msg_id="dlv_123", timestamp=1_700_000_000, body=BODY, secrets=[WHSEC])
    assert headers["webhook-id"] == "dlv_123"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")


def test_whsec_secret_verifies_with_the_standardwebhooks_library() -> None:
    """A `whsec_` secret signs with its decoded bytes, as the reference verifier expects."""
    headers = signed(WHSEC)
    assert Webhook(WHSEC).verify(BODY, headers) == json.loads(BODY)


def test_unpadded_whsec_secret_verifies_too() -> None:
    """An unpadded base64 `whsec_` secret decodes the way the reference library decodes it."""
    secret = "whsec_" + base64.b64encode(b"twenty-two bytes key!!").decode().rstrip("=")
    assert not secret.endswith("=")
    Webhook(secret).verify(BODY, signed(secret))


def test_plain_secret_signs_with_its_utf8_bytes() -> None:
    """A secret without `whsec_` is used as its UTF-8 bytes, not base64-decoded."""
    headers = signed(PLAIN)
    as_bytes = base64.b64encode(PLAIN.encode()).decode()
    Webhook(as_bytes).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"another key").decode()).verify(BODY, headers)


def test_plain_secret_signature_recomputed_by_hand() -> None:
    """The signed content is `{id}.{timestamp}.{body}`, HMAC-SHA256, base64 after `v1,`."""
    headers = sign(msg_id="dlv_9", timestamp=1_700_000_123, body=BODY, secrets=[PLAIN])
    content = b"dlv_9.1700000123." + BODY
    expected = base64.b64encode(hmac.new(PLAIN.encode(), content, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()


@pytest.mark.parametrize("secret", [WHSEC, PLAIN])
def test_ld_signature_is_hex_hmac_of_the_body_keyed_by_the_whole_secret(secret: str) -> None:
    """X-LD-Signature uses the secret string's UTF-8 bytes, `whsec_` included."""
    assert signed(secret)["X-LD-Signature"] == ld_signature(secret, BODY)


def test_tampered_body_fails_verification() -> None:
    """A body changed in transit does not verify."""
    headers = signed(WHSEC)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY.replace(b"7", b"8"), headers)


def test_every_secret_of_a_rotation_verifies() -> None:
    """During rotation both headers carry one signature per secret, space-separated."""
    # given
    old = "whsec_" + base64.b64encode(b"the old key, replaced yesterday").decode()
    # when
    headers = signed(WHSEC, old)
    # then
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(WHSEC).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    assert headers["X-LD-Signature"].split(" ") == [
        ld_signature(WHSEC, BODY),
        ld_signature(old, BODY),
    ]


def test_rotation_between_plain_and_whsec_secrets() -> None:
    """A plain secret replaced by a `whsec_` one: receivers holding either still verify."""
    headers = signed(WHSEC, PLAIN)
    Webhook(WHSEC).verify(BODY, headers)
    Webhook(base64.b64encode(PLAIN.encode()).decode()).verify(BODY, headers)


def test_no_secret_means_no_signature_headers() -> None:
    """A subscription without a secret gets the id and timestamp, unsigned."""
    headers = sign(msg_id="dlv_1", timestamp=1, body=BODY, secrets=["", ""])
    assert set(headers) == {"webhook-id", "webhook-timestamp"}


def record(previous: str | None, until: int | None) -> SubscriptionRecord:
    return SubscriptionRecord(
        id="sub1",
        integration_key="webhooks",
        name="audit",
        config={"url": "https://example.com/hook", "secret": WHSEC, "format": "unleash"},
        statements=[],
        on=True,
        tags=[],
        created_at=0,
        previous_secret=previous,
        previous_secret_until=until,
    )


@pytest.mark.parametrize(
    ("previous", "until", "expected"),
    [
        (None, None, [WHSEC]),
        (PLAIN, 2_000, [WHSEC, PLAIN]),
        (PLAIN, 1_001, [WHSEC, PLAIN]),
        (PLAIN, 1_000, [WHSEC]),
        (PLAIN, 500, [WHSEC]),
        (PLAIN, None, [WHSEC]),
    ],
)
def test_active_secrets_keep_the_previous_secret_only_while_its_overlap_lasts(
    previous: str | None, until: int | None, expected: list[str]
) -> None:
    """The current secret first, then the replaced one while previous_secret_until > now."""
    assert active_secrets(record(previous, until), now_ms=1_000) == expected
