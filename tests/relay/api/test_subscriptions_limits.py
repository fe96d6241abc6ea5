"""Everything a writer can grow in a subscription is bounded; past a limit is a 400 naming it."""

from __future__ import annotations

import contextlib
import json
import resource
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import subscriptions
from relay.store.client import Redis

BASE = "/api/v2/integrations/webhook"


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "audit",
        "config": {"url": "https://hooks.example.com/audit"},
        "statements": [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}],
        "tags": ["ops"],
    }
    body.update(overrides)
    return body


def _problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    return {e["attribute"]: e["reason"] for e in body["errors"]}


@contextlib.contextmanager
def _memory_ceiling(extra_bytes: int) -> Iterator[None]:
    """Cap this process's address space at its current size + `extra_bytes` (Linux).

    A regression to exponential patching then fails fast with a MemoryError instead of
    taking the machine's memory.
    """
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    current = pages * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (current + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture
def sub_id(app_client: TestClient, admin_headers: dict[str, str]) -> str:
    response = app_client.post(BASE, json=_body(), headers=admin_headers)
    assert response.status_code == 201, response.text
    created: str = response.json()["_id"]
    return created


@contextlib.contextmanager
def _client(settings: Settings, redis_client: Redis, **limits: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=limits), redis=redis_client)) as client:
        yield client


def test_doubling_copies_are_refused_at_once(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub_id: str
) -> None:
    """25 copies of /tags into itself (2^25 elements) answer 400 within a second, memory bounded."""
    # given
    before = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    patch = [{"op": "copy", "from": "/tags", "path": "/tags/-"}] * 25
    # when
    with _memory_ceiling(1 << 30):
        started = time.perf_counter()
        response = app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers)
        elapsed = time.perf_counter() - started
    # then
    problems = _problems(response)
    [(attribute, reason)] = problems.items()
    assert attribute.startswith("[") and "RELAY_MAX_SUBSCRIPTION_BYTES" in reason
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) == before


def test_one_hundred_large_copies_stay_fast(
    app_client: TestClient, admin_headers: dict[str, str], sub_id: str
) -> None:
    """50 copy+remove pairs of a 20 KB statement list (each within the limit) answer in < 1 s."""
    # given: statements of about 20 KB
    statements = [
        {
            "effect": "allow",
            "resources": [f"proj/{letter}{n:02d}-{'x' * 120}" for letter in "pqr"],
            "actions": ["*"],
        }
        for n in range(50)
    ]
    replaced = app_client.patch(
        f"{BASE}/{sub_id}",
        json=[{"op": "replace", "path": "/statements", "value": statements}],
        headers=admin_headers,
    )
    assert replaced.status_code == 200, replaced.text
    patch: list[dict[str, Any]] = []
    for _ in range(50):
        patch += [
            {"op": "copy", "from": "/statements", "path": "/tags/-"},
            {"op": "remove", "path": "/tags/1"},
        ]
    # when
    started = time.perf_counter()
    response = app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers)
    elapsed = time.perf_counter() - started
    # then
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["ops"]
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_a_patch_growing_past_the_size_limit_is_400(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str], sub_id: str
) -> None:
    """An add whose value would take the document past RELAY_MAX_SUBSCRIPTION_BYTES is 400."""
    with _client(settings, redis_client, max_subscription_bytes=2048) as client:
        response = client.patch(
            f"{BASE}/{sub_id}",
            json=[
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "add", "path": "/tags/-", "value": "t" * 3000},
            ],
            headers=admin_headers,
        )
    problems = _problems(response)
    assert list(problems) == ["[1]"] and "RELAY_MAX_SUBSCRIPTION_BYTES" in problems["[1]"]


def test_a_create_past_the_size_limit_is_400(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A subscription larger than RELAY_MAX_SUBSCRIPTION_BYTES is refused; nothing is stored."""
    statements = [
        {"effect": "allow", "resources": [f"proj/p{n}-{'x' * 100}"], "actions": ["*"]}
        for n in range(30)
    ]
    with _client(settings, redis_client, max_subscription_bytes=2048) as client:
        response = client.post(BASE, json=_body(statements=statements), headers=admin_headers)
    assert "RELAY_MAX_SUBSCRIPTION_BYTES" in _problems(response)["body"]
    assert subscriptions.list_subscriptions(redis_client) == []


def test_150000_resources_are_refused_quickly(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A statement with 150,000 resources is a 400 naming RELAY_MAX_POLICY_ENTRIES, fast."""
    resources = [f"proj/p{n}" for n in range(150_000)]
    statements = [{"effect": "allow", "resources": resources, "actions": ["*"]}]
    started = time.perf_counter()
    response = app_client.post(BASE, json=_body(statements=statements), headers=admin_headers)
    elapsed = time.perf_counter() - started
    problems = _problems(response)
    assert "RELAY_MAX_POLICY_ENTRIES" in problems["statements[0].resources"]
    assert subscriptions.list_subscriptions(redis_client) == []
    assert elapsed < 3.0, f"{elapsed:.2f} s"


@pytest.mark.parametrize(
    ("statements", "attribute", "named"),
    [
        (
            [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}] * 4,
            "statements",
            "RELAY_MAX_STATEMENTS",
        ),
        (
            [{"effect": "allow", "resources": [f"proj/p{n}" for n in range(5)], "actions": ["*"]}],
            "statements[0].resources",
            "RELAY_MAX_POLICY_ENTRIES",
        ),
        (
            [
                {"effect": "allow", "resources": ["proj/a", "proj/b"], "actions": ["*"]},
                {"effect": "deny", "resources": ["proj/c"], "notActions": ["a", "b", "c"]},
            ],
            "statements[1].notActions",
            "RELAY_MAX_POLICY_ENTRIES",
        ),
        (
            [{"effect": "allow", "resources": ["proj/" + "x" * 600], "actions": ["*"]}],
            "statements[0].resources[0]",
            "512",
        ),
        (
            [{"effect": "allow", "resources": ["proj/*"], "actions": ["update" + "x" * 600]}],
            "statements[0].actions[0]",
            "512",
        ),
    ],
    ids=["statements", "entries", "entries-across", "specifier", "action"],
)
def test_policy_limits_on_create_and_patch(
    settings: Settings,
    redis_client: Redis,
    admin_headers: dict[str, str],
    sub_id: str,
    statements: list[dict[str, Any]],
    attribute: str,
    named: str,
) -> None:
    """Too many statements, entries or too long a specifier: 400 naming the place and limit."""
    limits = {"max_statements": 3, "max_policy_entries": 4}
    with _client(settings, redis_client, **limits) as client:
        created = client.post(BASE, json=_body(statements=statements), headers=admin_headers)
        patched = client.patch(
            f"{BASE}/{sub_id}",
            json=[{"op": "replace", "path": "/statements", "value": statements}],
            headers=admin_headers,
        )
    for response in (created, patched):
        assert named in _problems(response)[attribute]


def test_subscription_count_is_bounded(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Past RELAY_MAX_SUBSCRIPTIONS a create is 400 naming it; a delete makes room again."""
    with _client(settings, redis_client, max_subscriptions=2) as client:
        # given
        first = client.post(BASE, json=_body(), headers=admin_headers).json()["_id"]
        assert client.post(BASE, json=_body(), headers=admin_headers).status_code == 201
        # when
        refused = client.post(BASE, json=_body(), headers=admin_headers)
        client.delete(f"{BASE}/{first}", headers=admin_headers)
        again = client.post(BASE, json=_body(), headers=admin_headers)
    # then
    assert "RELAY_MAX_SUBSCRIPTIONS" in _problems(refused)["body"]
    assert again.status_code == 201
    assert len(subscriptions.list_subscriptions(redis_client)) == 2


def test_concurrent_creates_never_pass_the_count(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """20 concurrent creates against a limit of 5 store exactly 5."""
    with (
        _client(settings, redis_client, max_subscriptions=5) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        codes = list(
            pool.map(
                lambda _: client.post(BASE, json=_body(), headers=admin_headers).status_code,
                range(20),
            )
        )
    assert sorted(codes) == [201] * 5 + [400] * 15
    assert len(subscriptions.list_subscriptions(redis_client)) == 5


@pytest.mark.parametrize(
    ("overrides", "attribute"),
    [
        ({"tags": ["t" * 65]}, "tags[0]"),
        ({"tags": [f"t{n}" for n in range(101)]}, "tags"),
        ({"name": "n" * 257}, "name"),
        (
            {
                "config": {
                    "url": "https://h.example.com",
                    "headers": {f"X-H{n}": "v" for n in range(21)},
                }
            },
            "config.headers",
        ),
        (
            {"config": {"url": "https://h.example.com", "headers": {"X-" + "h" * 300: "v"}}},
            "config.headers.X-" + "h" * 300,
        ),
        (
            {"config": {"url": "https://h.example.com", "headers": {"X-A": "v" * 1025}}},
            "config.headers.X-A",
        ),
        ({"config": {"url": "https://h.example.com/" + "p" * 2048}}, "config.url"),
    ],
    ids=["tag-length", "tag-count", "name", "header-count", "header-name", "header-value", "url"],
)
def test_field_limits_are_400(
    app_client: TestClient, admin_headers: dict[str, str], overrides: dict[str, Any], attribute: str
) -> None:
    """Tags, name, headers and URL have documented bounds; past one is a 400 on that attribute."""
    response = app_client.post(BASE, json=_body(**overrides), headers=admin_headers)
    assert attribute in _problems(response)


def test_too_many_headers_is_one_problem(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """10,000 bad headers answer one problem about the count, not 10,000 problems."""
    headers = {f"X H{n}": "v" for n in range(10_000)}
    config = {"url": "https://h.example.com", "headers": headers}
    response = app_client.post(BASE, json=_body(config=config), headers=admin_headers)
    assert list(_problems(response)) == ["config.headers"]


def test_the_values_of_one_patch_are_bounded(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str], sub_id: str
) -> None:
    """Values adding up past twice RELAY_MAX_SUBSCRIPTION_BYTES stop the patch at that operation."""
    value = ["t" * 1000] * 3  # about 3 KB, within the limit alone
    patch = [{"op": "replace", "path": "/tags", "value": value}] * 3
    with _client(settings, redis_client, max_subscription_bytes=4096) as client:
        response = client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers)
    problems = _problems(response)
    assert list(problems) == ["[2]"] and "RELAY_MAX_SUBSCRIPTION_BYTES" in problems["[2]"]


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("patch", "attribute"),
    [
        ([{"op": "add", "path": "/name", "value": _nested(700)}], "[0]"),
        (
            [
                {"op": "add", "path": "/tags/-", "value": "x"},
                {"op": "test", "path": "/tags/0", "value": _nested(400)},
            ],
            "[1]",
        ),
        ([{"op": "replace", "path": "/tags", "value": _nested(40)}], "[0]"),
    ],
    ids=["add-700", "test-400", "replace-40"],
)
def test_deeply_nested_patch_values_are_400(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    sub_id: str,
    patch: list[dict[str, Any]],
    attribute: str,
) -> None:
    """A patch value nested past MAX_VALUE_DEPTH is a 400 naming the operation, never a 500."""
    before = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    response = app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers)
    problems = _problems(response)
    assert list(problems) == [attribute] and "levels" in problems[attribute]
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) == before


def test_copies_nesting_the_document_deeper_are_400(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, sub_id: str
) -> None:
    """Copies doubling the depth (12 levels to 1536) answer 400 at the first past 32, not 500."""
    # given: /tags nested 12 levels, each copy puts /tags inside its own innermost array
    before = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    patch = [{"op": "replace", "path": "/tags", "value": _nested(12)}]
    for doubling in range(7):
        innermost = "/tags" + "/0" * (12 * 2**doubling - 1)
        patch.append({"op": "copy", "from": "/tags", "path": f"{innermost}/-"})
    # when
    response = app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers)
    # then
    problems = _problems(response)
    assert list(problems) == ["[2]"] and "levels" in problems["[2]"]
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) == before


@pytest.mark.parametrize("text", ["\ud800", "ok\udfffok"], ids=["high", "low"])
def test_lone_surrogates_in_a_patch_are_400(
    app_client: TestClient, admin_headers: dict[str, str], sub_id: str, text: str
) -> None:
    """A patch value holding a lone surrogate (not encodable as UTF-8) is a 400, never a 500."""
    body = json.dumps([{"op": "replace", "path": "/name", "value": text}])  # \ud800 escapes
    headers = {**admin_headers, "content-type": "application/json"}
    response = app_client.patch(f"{BASE}/{sub_id}", content=body, headers=headers)
    assert "[0]" in _problems(response)


def test_a_lone_surrogate_in_a_create_is_400(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A created subscription whose name holds a lone surrogate is a 400; nothing is stored."""
    body = json.dumps(_body(name="a\ud800"))
    headers = {**admin_headers, "content-type": "application/json"}
    response = app_client.post(BASE, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert subscriptions.list_subscriptions(redis_client) == []


def _entries(count: int) -> list[dict[str, Any]]:
    """One statement of `count` policy entries: `count - 1` resources and one action."""
    return [
        {"effect": "allow", "resources": [f"proj/p{n}" for n in range(count - 1)], "actions": ["*"]}
    ]


def test_the_policy_entries_of_all_subscriptions_are_bounded(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Past RELAY_MAX_TOTAL_POLICY_ENTRIES a create is 400 naming it; a delete frees its share."""
    with _client(settings, redis_client, max_total_policy_entries=10) as client:
        # given: 8 of 10 entries taken
        first = client.post(BASE, json=_body(statements=_entries(4)), headers=admin_headers)
        second = client.post(BASE, json=_body(statements=_entries(4)), headers=admin_headers)
        assert second.status_code == 201
        # when
        refused = client.post(BASE, json=_body(statements=_entries(3)), headers=admin_headers)
        fits = client.post(BASE, json=_body(statements=_entries(2)), headers=admin_headers)
        client.delete(f"{BASE}/{first.json()['_id']}", headers=admin_headers)
        again = client.post(BASE, json=_body(statements=_entries(4)), headers=admin_headers)
    # then
    assert "RELAY_MAX_TOTAL_POLICY_ENTRIES" in _problems(refused)["statements"]
    assert fits.status_code == 201 and again.status_code == 201
    assert len(subscriptions.list_subscriptions(redis_client)) == 3


def test_a_patch_past_the_total_entries_is_400_and_changes_nothing(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """A patch growing the policies past RELAY_MAX_TOTAL_POLICY_ENTRIES is 400, nothing applied;
    one shrinking them frees their share, one keeping the count passes at the budget."""
    with _client(settings, redis_client, max_total_policy_entries=10) as client:
        # given: 4 + 6 = 10 entries, the whole budget
        first = client.post(BASE, json=_body(statements=_entries(4)), headers=admin_headers)
        second = client.post(BASE, json=_body(statements=_entries(6)), headers=admin_headers)
        assert second.status_code == 201
        sub_id = first.json()["_id"]
        before = subscriptions.get_subscription(redis_client, sub_id=sub_id)
        # when
        grown = client.patch(
            f"{BASE}/{sub_id}",
            json=[
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "add", "path": "/statements/0/resources/-", "value": "proj/more"},
            ],
            headers=admin_headers,
        )
        unchanged = subscriptions.get_subscription(redis_client, sub_id=sub_id)
        same_count = client.patch(
            f"{BASE}/{sub_id}",
            json=[{"op": "replace", "path": "/statements/0/resources/0", "value": "proj/other"}],
            headers=admin_headers,
        )
        shrunk = client.patch(
            f"{BASE}/{sub_id}",
            json=[{"op": "replace", "path": "/statements", "value": _entries(2)}],
            headers=admin_headers,
        )
        created = client.post(BASE, json=_body(statements=_entries(2)), headers=admin_headers)
    # then
    assert "RELAY_MAX_TOTAL_POLICY_ENTRIES" in _problems(grown)["statements"]
    assert unchanged == before
    assert same_count.status_code == 200, same_count.text
    assert shrunk.status_code == 200 and created.status_code == 201


def test_concurrent_creates_and_patches_never_pass_the_total_entries(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Budget 20: 20 concurrent creates of 4 entries store 5; then concurrent patches adding
    an entry each to a full budget are all refused, and after a delete only what fits passes."""
    with (
        _client(settings, redis_client, max_total_policy_entries=20) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        # when
        def create(_: int) -> int:
            body = _body(statements=_entries(4))
            return client.post(BASE, json=body, headers=admin_headers).status_code

        codes = list(pool.map(create, range(20)))
        ids = [record.id for record in subscriptions.list_subscriptions(redis_client)]
        client.delete(f"{BASE}/{ids[0]}", headers=admin_headers)  # 4 entries free

        def grow(sub_id: str) -> int:
            add = {"op": "add", "path": "/statements/0/resources/-", "value": "proj/x"}
            patch = [add] * 3
            return client.patch(f"{BASE}/{sub_id}", json=patch, headers=admin_headers).status_code

        patched = list(pool.map(grow, ids[1:]))
    # then
    assert sorted(codes) == [201] * 5 + [400] * 15
    assert sorted(patched) == [200, 400, 400, 400]
    counts = [
        sum(len(s.get("resources") or []) + len(s.get("actions") or []) for s in r.statements)
        for r in subscriptions.list_subscriptions(redis_client)
    ]
    assert sorted(counts) == [4, 4, 4, 7]


def test_stored_subscriptions_without_counts_are_counted_once(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Subscriptions stored before the budget existed (no counts in Redis) count against it."""
    # given: 9 entries stored, then the counts lost (as before an upgrade)
    with _client(settings, redis_client) as client:
        for size in (4, 5):
            body = _body(statements=_entries(size))
            assert client.post(BASE, json=body, headers=admin_headers).is_success
    counters = redis_client.keys("relay:subs:entries*")
    assert counters, "the store keeps its counts under relay:subs:entries*"
    redis_client.delete(*counters)
    # when
    with _client(settings, redis_client, max_total_policy_entries=11) as client:
        old = subscriptions.list_subscriptions(redis_client)[0].id
        add = {"op": "add", "path": "/statements/0/resources/-", "value": "proj/x"}
        grown = client.patch(f"{BASE}/{old}", json=[add] * 3, headers=admin_headers)
        refused = client.post(BASE, json=_body(statements=_entries(3)), headers=admin_headers)
        fits = client.post(BASE, json=_body(statements=_entries(2)), headers=admin_headers)
    # then
    assert "RELAY_MAX_TOTAL_POLICY_ENTRIES" in _problems(grown)["statements"]
    assert "RELAY_MAX_TOTAL_POLICY_ENTRIES" in _problems(refused)["statements"]
    assert fits.status_code == 201, fits.text
    assert redis_client.get("relay:subs:entries:total") == "11"


def test_the_size_error_does_not_measure_hidden_values(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Past the limit, the message names the limit only: a writer adding tags cannot learn
    the length of a masked header value from it."""
    tags = [f"{n:02d}" + "t" * 60 for n in range(50)]  # about 3.3 KB
    replies = []
    with _client(settings, redis_client, max_subscription_bytes=4096) as client:
        for hidden in ("k" * 1000, "k" * 1001):
            # given: subscriptions alike but for the length of a hidden header value
            config = {"url": "https://h.example.com/a", "headers": {"X-Key": hidden}}
            created = client.post(BASE, json=_body(config=config), headers=admin_headers)
            assert created.status_code == 201, created.text
            # when: tags that keep the masked document within the limit, the stored one not
            patch = [{"op": "replace", "path": "/tags", "value": tags}]
            url = f"{BASE}/{created.json()['_id']}"
            replies.append(client.patch(url, json=patch, headers=admin_headers))
    # then
    first, second = (_problems(reply) for reply in replies)
    assert first == second and "4096" in first["body"], first
