"""Bad flag-events requests get 400 ValidationFailedErrorRep naming the parameter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from launchdarkly_api import ApiClient, Configuration, InsightsFlagEventsBetaApi
from launchdarkly_api.exceptions import ApiException
from launchdarkly_api.models.validation_failed_error_rep import ValidationFailedErrorRep

from relay.store.client import Redis
from relay.store.tokens import Role, create_token

PATH = "/api/v2/engineering-insights/flag-events"
BASE = {"projectKey": "default", "environmentKey": "production"}


@contextmanager
def _client(live_api: str, token: str) -> Iterator[InsightsFlagEventsBetaApi]:
    configuration = Configuration(host=live_api, api_key={"ApiKey": token})
    with ApiClient(configuration) as client:
        yield InsightsFlagEventsBetaApi(client)


@pytest.fixture
def ld(live_api: str, admin_headers: dict[str, str]) -> Iterator[InsightsFlagEventsBetaApi]:
    """The official client's flag-events API, pointed at the relay."""
    with _client(live_api, admin_headers["Authorization"]) as api:
        yield api


def _attributes(answer: ValidationFailedErrorRep) -> list[str]:
    return [error.attribute for error in answer.errors]


@pytest.mark.parametrize(
    ("arguments", "attribute"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"impact_size": "huge"}, "impactSize"),
        ({"var_global": "only"}, "global"),
        ({"expand": "members"}, "expand"),
        ({"expand": "experiments,members"}, "expand"),
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "12.x"}, "before"),
        ({"after": "1.1", "before": "2.2"}, "before"),
        ({"var_from": 2_000, "to": 1_000}, "from"),
        ({"application_key": " , "}, "applicationKey"),
    ],
)
def test_bad_parameters_raise_400_through_the_client(
    ld: InsightsFlagEventsBetaApi, arguments: dict[str, Any], attribute: str
) -> None:
    """The client gets a 400 it parses as ValidationFailedErrorRep, naming the parameter."""
    with pytest.raises(ApiException) as raised:
        ld.get_flag_events("default", "production", **arguments)
    assert raised.value.status == 400
    answer = raised.value.data
    assert isinstance(answer, ValidationFailedErrorRep)
    assert answer.code == "invalid_request"
    assert attribute in _attributes(answer)
    assert attribute in answer.message


@pytest.mark.parametrize(
    ("params", "attributes"),
    [
        ({"environmentKey": "production"}, ["projectKey"]),
        ({"projectKey": "default"}, ["environmentKey"]),
        ({}, ["projectKey", "environmentKey"]),
        ({**BASE, "limit": "ten"}, ["limit"]),
        ({**BASE, "limit": "2.5"}, ["limit"]),
        ({**BASE, "from": "yesterday"}, ["from"]),
        ({**BASE, "hasExperiments": "maybe"}, ["hasExperiments"]),
        ({**BASE, "projectKey": ""}, ["projectKey"]),
    ],
)
def test_missing_or_mistyped_parameters_raise_400(
    live_api: str, admin_headers: dict[str, str], params: dict[str, str], attributes: list[str]
) -> None:
    """What the typed client cannot send (missing keys, non-integers) is a 400 too."""
    response = httpx.get(f"{live_api}{PATH}", params=params, headers=admin_headers)
    assert response.status_code == 400
    answer = ValidationFailedErrorRep.from_json(response.text)
    assert answer is not None
    assert _attributes(answer) == attributes


@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.INGEST, 403)])
def test_callers_who_may_not_read_are_refused(
    live_api: str, redis_client: Redis, role: Role | None, status: int
) -> None:
    """No valid token is 401; a token that may only ingest is 403."""
    token = "nope" if role is None else create_token(redis_client, name="t", role=role)[1]
    with _client(live_api, token) as api, pytest.raises(ApiException) as raised:
        api.get_flag_events("default", "production")
    assert raised.value.status == status


def test_a_reader_token_may_list(live_api: str, redis_client: Redis) -> None:
    """Listing flag events needs only the reader role."""
    _, secret = create_token(redis_client, name="dashboard", role=Role.READER)
    with _client(live_api, secret) as api:
        page = api.get_flag_events("default", "production")
    assert (page.total_count, page.items) == (0, [])
