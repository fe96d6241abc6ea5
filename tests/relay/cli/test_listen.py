"""`relay listen`, as an attacker and a user would try it: its signature check against an
independent implementation (standardwebhooks, hmac), what it prints of a producer's text,
its receiver facing hostile clients, its command line, the subscription it takes, and how
that subscription goes away (Ctrl-C, SIGTERM, SIGKILL and the sweep, a delete through the
API). The receiver runs as a real `relay listen` process; deliveries from a real worker
are in test_listen_e2e.py.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay import clock
from relay.cli.embedded_redis import free_port
from relay.cli.listen import (
    MAX_BODY,
    READ_TIMEOUT,
    Delivery,
    check_signatures,
    describe,
    take_subscription,
)
from relay.cli.main import main
from relay.destinations import listener_origin
from relay.settings import Settings
from relay.store import keys, listeners, subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord
from tests import support
from tests.relay.cli.listen_process import ListenProcess, exchange, listening, post, signed
from tests.support import SUBSCRIPTIONS, eventually, stored_subscription
from workers.delivery import pump
from workers.delivery.subscription_cache import SubscriptionCache

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PLAIN_SECRET = "my-very-secret-value-123"  # LaunchDarkly's kind: any printable text
BODY = json.dumps(
    {
        "type": "feature-environment-enabled",
        "featureName": "checkout.v2",
        "project": "default",
        "environment": "production",
    }
).encode()
TTL = listeners.LISTENER_TTL_MS
BAD_BOTH = "signature BAD (webhook-signature, X-LD-Signature)"
STALE = "signature BAD (webhook-timestamp is more than 5 minutes away)"


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    """The test settings with the destination guard on, as a relay is by default."""
    return settings.model_copy(update={"allow_private_destinations": False})


def arrived(headers: dict[str, str], body: bytes = BODY, at: float | None = None) -> Delivery:
    """What the listener's server hands over: header names lower-cased."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return Delivery(lowered, body, time.time() if at is None else at)


def signed_with(client: Redis, secret: str) -> SubscriptionRecord:
    return support.subscription(client, secret=secret)


# --- the signature check -----------------------------------------------------------------------


@pytest.mark.parametrize("secret", [SECRET, PLAIN_SECRET], ids=["whsec", "plain"])
def test_what_standardwebhooks_signs_is_signature_ok(redis_client: Redis, secret: str) -> None:
    """Signed by the standardwebhooks library and hmac, not by relay: both headers verify."""
    record = signed_with(redis_client, secret)
    assert check_signatures(arrived(signed(secret, BODY)), record) == "signature ok"


def _tampered_body(record: SubscriptionRecord) -> Delivery:
    return arrived(signed(SECRET, BODY), body=BODY.replace(b"checkout", b"checkoux"))


def _wrong_secret(record: SubscriptionRecord) -> Delivery:
    return arrived(signed("whsec_" + "A" * 43, BODY))


def _other_id(record: SubscriptionRecord) -> Delivery:
    # X-LD-Signature covers the body only; webhook-signature covers the id too
    return arrived({**signed(SECRET, BODY), "webhook-id": "msg_2_s"})


def _stale(record: SubscriptionRecord) -> Delivery:
    return arrived(signed(SECRET, BODY, at=time.time() - 301))


def _future(record: SubscriptionRecord) -> Delivery:
    return arrived(signed(SECRET, BODY, at=time.time() + 301))


def _replayed_later(record: SubscriptionRecord) -> Delivery:
    # a captured request sent again six minutes on: its timestamp is now stale
    return arrived(signed(SECRET, BODY), at=time.time() + 360)


def _unsigned(record: SubscriptionRecord) -> Delivery:
    return arrived({"webhook-id": "msg_1_s", "webhook-timestamp": str(int(time.time()))})


def _without(name: str) -> Callable[[SubscriptionRecord], Delivery]:
    def delivery(record: SubscriptionRecord) -> Delivery:
        headers = signed(SECRET, BODY)
        del headers[name]
        return arrived(headers)

    return delivery


def _empty_signature(record: SubscriptionRecord) -> Delivery:
    return arrived({**signed(SECRET, BODY), "webhook-signature": "v1,", "x-ld-signature": ""})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_tampered_body, BAD_BOTH),
        (_wrong_secret, BAD_BOTH),
        (_other_id, "signature BAD (webhook-signature)"),
        (_stale, STALE),
        (_future, STALE),
        (_replayed_later, STALE),
        (_unsigned, "UNSIGNED"),
        (_without("webhook-signature"), "signature BAD (webhook-signature)"),
        (_without("x-ld-signature"), "signature BAD (X-LD-Signature)"),
        (_without("webhook-timestamp"), "signature BAD (no webhook-timestamp)"),
        (_empty_signature, BAD_BOTH),
    ],
    ids=[
        "tampered-body",
        "wrong-secret",
        "other-webhook-id",
        "stale-timestamp",
        "future-timestamp",
        "replayed-after-6-minutes",
        "no-signature-headers",
        "no-webhook-signature",
        "no-x-ld-signature",
        "no-timestamp",
        "empty-signatures",
    ],
)
def test_a_bad_signature_says_what_failed(
    redis_client: Redis, make: Callable[[SubscriptionRecord], Delivery], expected: str
) -> None:
    """Each way a signature can fail gives its documented result, never "signature ok"."""
    record = signed_with(redis_client, SECRET)
    assert check_signatures(make(record), record) == expected


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("abc", id="letters"),
        pytest.param("-1", id="negative"),
        pytest.param(
            "\N{SUPERSCRIPT TWO}",
            id="superscript-digit",
        ),
        pytest.param(
            "9" * 5000,
            id="5000-digits",
        ),
    ],
)
def test_a_hostile_timestamp_is_a_bad_signature_not_an_exception(
    redis_client: Redis, timestamp: str
) -> None:
    """The check never raises on what a local client puts in webhook-timestamp."""
    record = signed_with(redis_client, SECRET)
    delivery = arrived({**signed(SECRET, BODY), "webhook-timestamp": timestamp})
    assert check_signatures(delivery, record).startswith("signature BAD")


def test_a_rotated_secret_still_verifies(redis_client: Redis) -> None:
    """After a rotation, deliveries signed with the new secret, the previous one (in its
    overlap) or both verify; one signed with neither does not."""
    # given
    new = "whsec_" + "B" * 43

    def rotate(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, config={**record.config, "secret": new})

    sub_id = signed_with(redis_client, SECRET).id
    rotated = subscriptions.update_subscription(redis_client, sub_id=sub_id, change=rotate)
    assert rotated is not None and rotated.signing_secrets(now_ms=clock.now_ms()) == [new, SECRET]
    both = signed(new, BODY)
    old = signed(SECRET, BODY)
    both["webhook-signature"] += " " + old["webhook-signature"]
    both["x-ld-signature"] += " " + old["x-ld-signature"]
    # then
    assert check_signatures(arrived(signed(new, BODY)), rotated) == "signature ok"
    assert check_signatures(arrived(old), rotated) == "signature ok"
    assert check_signatures(arrived(both), rotated) == "signature ok"
    assert check_signatures(arrived(signed(PLAIN_SECRET, BODY)), rotated) == BAD_BOTH


# --- what is printed ---------------------------------------------------------------------------

HOSTILE = [
    "\x1b[2J",  # ANSI: clear the screen
    "\x1b]0;owned\x07",  # OSC: set the terminal's title
    "\x9b2J",  # the C1 form of CSI
    "\n12:00:00  feature-created  attempt 1  signature ok",  # a forged second line
    "\rsignature ok",
    "\u202egnp.exe",  # right-to-left override
    "\x00\x08\x7f",
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["type", "featureName", "project", "environment"])
def test_a_producers_text_never_reaches_the_terminal_raw(field: str, text: str) -> None:
    """Control characters, escape sequences and bidi overrides in an event's fields are
    neutralised: the printed description is one line of printable text."""
    event = json.loads(BODY) | {field: f"before{text}after"}
    shown = describe(arrived({}, body=json.dumps(event).encode()))
    assert shown.isprintable(), repr(shown)
    assert "before" in shown and "after" in shown


def test_describe_shows_type_flag_project_and_environment() -> None:
    assert (
        describe(arrived({})) == "feature-environment-enabled, flag checkout.v2, default/production"
    )


def test_describe_of_a_launchdarkly_entry_names_its_action() -> None:
    entry = {
        "kind": "flag",
        "accesses": [{"action": "updateOn", "resource": "proj/p:env/e:flag/f"}],
    }
    assert describe(arrived({}, body=json.dumps(entry).encode())) == "updateOn"


def test_long_fields_are_bounded() -> None:
    """A 100 000-character flag name prints as a bounded field ending in an ellipsis."""
    event = json.loads(BODY) | {"featureName": "x" * 100_000, "project": "p" * 100_000}
    shown = describe(arrived({}, body=json.dumps(event).encode()))
    assert len(shown) < 300 and "\N{HORIZONTAL ELLIPSIS}" in shown


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b"{}", b'{"type": {"a": [1]}}', b"\xff\xfe"]
)
def test_describe_of_an_odd_body_says_so(body: bytes) -> None:
    assert describe(arrived({}, body=body)).isprintable()


@pytest.mark.parametrize("accesses", [["x"], "x", [1]])
def test_describe_of_an_event_with_odd_accesses_does_not_raise(accesses: Any) -> None:
    body = json.dumps({"accesses": accesses}).encode()
    assert describe(arrived({}, body=body)).isprintable()


# --- the subscription it takes -----------------------------------------------------------------


def test_a_listener_creates_a_marked_subscription(redis_client: Redis, guarded: Settings) -> None:
    """With the guard on: a webhook to origin + "/", every event, marked and registered."""
    origin = listener_origin("127.0.0.1", 9876)
    taken = take_subscription(redis_client, guarded, origin=origin, policies=[])
    assert taken.created
    record = stored_subscription(redis_client, taken.record.id)
    assert record.config["url"] == f"{origin}/" and record.local_listener == origin
    assert record.statements == [] and record.on
    assert redis_client.zrange(keys.LISTENERS, 0, -1) == [record.id]


def test_a_listener_takes_back_the_subscription_left_at_its_origin(
    redis_client: Redis, guarded: Settings
) -> None:
    """An earlier listener's subscription at the same origin is reused: same id, the new
    --subscribe policy, turned back on; another port gets a subscription of its own."""
    # given: a listener left its subscription, and someone turned it off
    origin = listener_origin("127.0.0.1", 9876)
    first = take_subscription(redis_client, guarded, origin=origin, policies=[]).record

    def turn_off(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, on=False)

    subscriptions.update_subscription(redis_client, sub_id=first.id, change=turn_off)
    # when
    again = take_subscription(redis_client, guarded, origin=origin, policies=["proj/web"])
    other = take_subscription(
        redis_client, guarded, origin=listener_origin("127.0.0.1", 9877), policies=[]
    )
    # then
    assert not again.created and again.record.id == first.id
    record = stored_subscription(redis_client, first.id)
    assert record.on and record.local_listener == origin
    assert record.statements == [{"effect": "allow", "resources": ["proj/web"], "actions": ["*"]}]
    assert other.created and other.record.id != first.id
    assert len(subscriptions.list_subscriptions(redis_client)) == 2


def test_a_listener_without_subscribe_listens_to_every_event_again(
    redis_client: Redis, guarded: Settings
) -> None:
    """`relay listen` after `relay listen --subscribe X` on that port receives every event."""
    origin = listener_origin("127.0.0.1", 9876)
    take_subscription(redis_client, guarded, origin=origin, policies=["proj/web"])
    again = take_subscription(redis_client, guarded, origin=origin, policies=[])
    assert stored_subscription(redis_client, again.record.id).statements == []


def test_a_subscription_moved_to_a_public_url_is_not_taken_back(
    redis_client: Redis, guarded: Settings
) -> None:
    """Once a writer moved it (mark dropped), the next listener on that port makes its own."""
    origin = listener_origin("127.0.0.1", 9876)
    first = take_subscription(redis_client, guarded, origin=origin, policies=[]).record

    def to_public(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, config={**record.config, "url": "https://1.1.1.1/hook"})

    subscriptions.update_subscription(redis_client, sub_id=first.id, change=to_public)
    again = take_subscription(redis_client, guarded, origin=origin, policies=[])
    assert again.created and again.record.id != first.id
    assert stored_subscription(redis_client, first.id).config["url"] == "https://1.1.1.1/hook"


# --- the command line --------------------------------------------------------------------------


def test_help_explains_signatures_ctrl_c_and_the_loopback_mark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["listen", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for needed in (
        "webhook-signature",
        "X-LD-Signature",
        "Ctrl-C",
        "loopback",
        "localListener",
        "--port",
        "--subscribe",
        "--status",
        "127.0.0.1",
    ):
        assert needed in text, needed


def test_a_port_in_use_exits_2_naming_port(
    redis_client: Redis, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone holds the port: exit 2, a message naming it and --port, nothing stored."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["listen", "--port", str(port)], settings=settings)
    err = capsys.readouterr().err
    assert code == 2
    assert f"127.0.0.1:{port}" in err and "--port" in err
    assert subscriptions.list_subscriptions(redis_client) == []
    assert redis_client.zcard(keys.LISTENERS) == 0


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_exits_2_naming_port(
    settings: Settings, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    try:
        code = main(["listen", "--port", port], settings=settings)
    except SystemExit as exit_:  # argparse's own refusal is fine too
        code = int(exit_.code or 0)
    assert code == 2 and "--port" in capsys.readouterr().err


def test_without_relay_up_or_redis_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No RELAY_REDIS_URL and no `relay up` on the data dir: exit 2 saying both."""
    alone = Settings(redis_url=None, redis_sentinels=[], data_dir=tmp_path / "nothing")
    code = main(["listen", "--port", "0"], settings=alone)
    err = capsys.readouterr().err
    assert code == 2
    assert "RELAY_REDIS_URL" in err and "relay up" in err


@pytest.mark.parametrize(
    "policy", ["not a policy", "proj/*:env/production:flag/", "proj/" + "x" * 10_000]
)
def test_an_invalid_subscribe_exits_2_and_stores_nothing(
    redis_client: Redis, settings: Settings, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    """A policy that does not parse: exit 2 naming the statements, nothing stored, the port
    free again."""
    port = free_port()
    code = main(["listen", "--port", str(port), "--subscribe", policy], settings=settings)
    err = capsys.readouterr().err
    assert code == 2
    assert "statements" in err and "Traceback" not in err
    assert subscriptions.list_subscriptions(redis_client) == []
    assert redis_client.zcard(keys.LISTENERS) == 0
    with socket.create_server(("127.0.0.1", port)):
        pass  # bindable: the refused listener closed it


@pytest.mark.parametrize("status", ["99", "600", "abc", "2OO"])
def test_a_status_outside_200_599_is_refused(
    settings: Settings, capsys: pytest.CaptureFixture[str], status: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["listen", "--status", status], settings=settings)
    assert exit_.value.code == 2
    assert "200 to 599" in capsys.readouterr().err


# --- the receiver, as a process ---------------------------------------------------------------


def test_a_signed_post_is_printed_with_signature_ok(
    redis_client: Redis, settings: Settings
) -> None:
    """A POST signed with the printed secret gives one line: type, flag, where, attempt,
    signature ok and the webhook-id; the answer is 200."""
    with listening(settings) as listener:
        headers = signed(listener.secret, BODY) | {"X-Relay-Attempt": "3"}
        answer = post(listener.port, BODY, headers)
        [line] = listener.wait_for("checkout.v2")
    assert answer.startswith(b"HTTP/1.1 200")
    assert "feature-environment-enabled, flag checkout.v2, default/production" in line
    assert "attempt 3  signature ok  msg_1_s" in line


def test_a_secret_rotated_through_the_api_is_picked_up(
    redis_client: Redis, guarded: Settings, api_for: Callable[[Settings], TestClient]
) -> None:
    """A writer rotates the listener's secret while it runs: a delivery signed with the new
    one alone still prints "signature ok"; one signed with another secret does not."""
    api = api_for(guarded)
    admin = {"Authorization": guarded.admin_token or ""}
    with listening(guarded) as listener:
        # given
        rotated = api.patch(
            f"{SUBSCRIPTIONS}/{listener.sub_id}",
            json=[{"op": "replace", "path": "/config/secret", "value": PLAIN_SECRET}],
            headers=admin,
        )
        assert rotated.status_code == 200, rotated.text
        # when
        post(listener.port, BODY, signed(PLAIN_SECRET, BODY, msg_id="msg_new"))
        post(listener.port, BODY, signed(SECRET, BODY, msg_id="msg_other"))
        post(listener.port, BODY, signed(listener.secret, BODY, msg_id="msg_old"))
        # then
        [new] = listener.wait_for("msg_new")
        [other] = listener.wait_for("msg_other")
        [old] = listener.wait_for("msg_old")
    assert "signature ok" in new and "signature ok" in old
    assert BAD_BOTH in other


def test_escape_sequences_in_a_delivery_do_not_reach_stdout(
    redis_client: Redis, settings: Settings
) -> None:
    """A body and headers full of terminal controls print as one line without them."""
    event = json.loads(BODY) | {"featureName": "x\x1b[2J\x1b]0;owned\x07\nforged line\ry"}
    body = json.dumps(event).encode()
    with listening(settings) as listener:
        before = len(listener.lines)
        headers = signed(listener.secret, body, msg_id="msg_\x1b[31mred") | {
            "X-Relay-Attempt": "1\x1b[2J"
        }
        post(listener.port, body, headers)
        listener.wait_for("flag x")
        time.sleep(0.2)  # a forged second line would be printed by now
        printed = listener.lines[before:]
    assert len(printed) == 1, printed
    assert printed[0].isprintable(), printed


def test_a_body_over_max_body_is_413_without_being_read(
    redis_client: Redis, settings: Settings
) -> None:
    """A Content-Length over MAX_BODY is answered 413 at once: the listener does not wait
    for (or read) the body, and closes the connection."""
    with listening(settings) as listener:
        head = (
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode() + b"{"
        )
        started = time.monotonic()
        answer = exchange(listener.port, head, timeout=READ_TIMEOUT + 5)
        took = time.monotonic() - started
        assert not listener.printed("attempt")
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert took < READ_TIMEOUT / 2


@pytest.mark.parametrize(
    "length_header",
    [
        pytest.param("", id="none"),
        pytest.param("Transfer-Encoding: chunked\r\n", id="chunked"),
        pytest.param("Content-Length: -1\r\n", id="negative"),
        pytest.param("Content-Length: 1e3\r\n", id="float"),
        pytest.param("Content-Length: 0x10\r\n", id="hex"),
        pytest.param(
            "Content-Length: \N{SUPERSCRIPT TWO}\r\n",
            id="superscript-digit",
        ),
        pytest.param(
            "Content-Length: " + "9" * 5000 + "\r\n",
            id="5000-digits",
        ),
    ],
)
def test_a_post_without_a_usable_content_length_is_411(
    redis_client: Redis, settings: Settings, length_header: str
) -> None:
    """No Content-Length, or one that is not a number of bytes: 411, nothing printed."""
    with listening(settings) as listener:
        request = f"POST / HTTP/1.1\r\nHost: x\r\n{length_header}\r\n".encode("latin-1")
        answer = exchange(listener.port, request + b"5\r\nhello\r\n0\r\n\r\n")
        printed = listener.lines[:]
    assert answer.startswith(b"HTTP/1.1 411"), answer
    assert not [line for line in printed if "Traceback" in line or "attempt" in line]


# --- how the subscription goes away --------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_delete_the_subscription(
    redis_client: Redis, settings: Settings, sig: signal.Signals
) -> None:
    """The listener deletes its subscription and its registration, says so, exits 0."""
    listener = ListenProcess(settings)
    assert stored_subscription(redis_client, listener.sub_id).local_listener == listener.origin
    assert listener.stop(sig) == 0
    assert listener.printed(f"deleted subscription {listener.sub_id}")
    assert subscriptions.get_subscription(redis_client, sub_id=listener.sub_id) is None
    assert redis_client.zcard(keys.LISTENERS) == 0
    assert not redis_client.exists(keys.listener(listener.sub_id))


def test_sigkill_leaves_the_subscription_and_the_sweep_removes_it(
    redis_client: Redis, settings: Settings
) -> None:
    """A killed listener cannot clean up. Its heartbeat keeps the subscription for a
    minute; once the heartbeat has run out, the sweep deletes it."""
    # given
    listener = ListenProcess(settings)
    listener.kill()
    assert stored_subscription(redis_client, listener.sub_id).local_listener == listener.origin
    cache = SubscriptionCache(critical_environments=settings.critical_set)
    later = time.time() + TTL / 1000 + 1

    def sweep() -> dict[str, int]:
        return pump.sweep(
            redis_client,
            settings=settings,
            cache=cache,
            enqueue=lambda ids: None,
            clock=lambda: later,
        )

    # when: the heartbeat is still there
    kept = sweep()
    # then
    assert kept["listeners"] == 0
    assert subscriptions.get_subscription(redis_client, sub_id=listener.sub_id) is not None
    # when: the heartbeat ran out (its TTL cut short rather than waited for)
    redis_client.pexpire(keys.listener(listener.sub_id), 1)
    eventually(lambda: not redis_client.exists(keys.listener(listener.sub_id)), 5)
    swept = sweep()
    # then
    assert swept["listeners"] == 1
    assert subscriptions.get_subscription(redis_client, sub_id=listener.sub_id) is None


@pytest.mark.slow
def test_a_subscription_deleted_through_the_api_stops_the_listener(
    redis_client: Redis, guarded: Settings, api_for: Callable[[Settings], TestClient]
) -> None:
    """Its next heartbeat (every LISTENER_TTL_MS / 3 = 20 s) finds the subscription gone:
    the listener says so and exits 0."""
    api = api_for(guarded)
    admin = {"Authorization": guarded.admin_token or ""}
    listener = ListenProcess(guarded)
    try:
        deleted = api.delete(f"{SUBSCRIPTIONS}/{listener.sub_id}", headers=admin)
        assert deleted.status_code == 204, deleted.text
        listener.wait_for(f"subscription {listener.sub_id} was deleted; stopping", TTL / 3000 + 10)
        assert listener.popen.wait(10) == 0
    finally:
        listener.kill()
    assert redis_client.zcard(keys.LISTENERS) == 0
