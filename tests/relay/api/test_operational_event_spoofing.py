"""Only relay writes its operational events: no producer may pass as their source, and a
producer's look-alike event is not mapped to a subscription's resource."""

from __future__ import annotations

from fastapi.testclient import TestClient

from policies import map_event, matches, parse_statements

OPERATOR_POLICY = parse_statements(
    [{"effect": "allow", "resources": ["integration/*"], "actions": ["delivery-dead"]}]
)


def _dead(**fields: object) -> dict[str, object]:
    return {
        "type": "delivery-dead",
        "createdBy": "relay",
        "data": {"subscription": "webhook/0123456789abcdef01234567"},
        **fields,
    }


def test_a_producer_cannot_post_as_relay(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """`?source=relay` is a 400 naming the source, whatever the case."""
    for name in ("relay", "Relay"):
        response = app_client.post(
            f"/api/events?source={name}", json=[_dead()], headers=admin_headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["attribute"] == "source"


def test_only_relays_own_events_map_to_a_subscription() -> None:
    """relay's `delivery-dead` is about `integration/<key>/<id>`; a producer's is unknown."""
    ours = map_event(_dead(source="relay"))
    theirs = map_event(_dead(source="a-producer"))
    assert ours.resource == "integration/webhook/0123456789abcdef01234567"
    assert matches(OPERATOR_POLICY, ours)
    assert not matches(OPERATOR_POLICY, theirs)
