"""No address or token reaches a log line, whichever header or query parameter carries it, and no logged
value is unbounded (issue #16 defect 11; docs/contract.md §16.4; docs/observability.md).

The access log records every request header and query parameter, so the class test sends headers of
every kind (known, unknown, in any case) and query parameters of any name, each carrying an address, a
JWT, a bearer credential or a client secret somewhere in its value, and scans every captured line.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_harness import Api, RunApi
from tests.support.log_capture import CapturedLogs, captured_logs
from tests.unit.http.test_platform import ContactsUnreachableUnitOfWork

ADDRESS = "scanned-person@example.com"
CLIENT_SECRET = "secret_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V"
EMAIL_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"
HEADER_NAMES = [
    "From",
    "Referer",
    "User-Agent",
    "X-Forwarded-For",
    "Forwarded",
    "Proxy-Authorization",
    "Authorization",
    "Cookie",
    "X-Request-Id",
    "X-Api-Key",
    "X-Client-Id",
    "Origin",
    "Via",
    "Accept-Language",
    "X-Amzn-Trace-Id",
]
QUERY_NAMES = ["email", "Primary_Email", "PRIMARY_EMAIL", "access_token", "token", "q", "next"]


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    with captured_logs() as captured:
        yield captured


def _assert_clean(logs: CapturedLogs, secrets: list[str]) -> None:
    lines = logs.lines()
    assert any('"ctms.web"' in line for line in lines), "the access log was not captured"
    for line in lines:
        for secret in secrets:
            assert secret.lower() not in line.lower(), f"logged: {line[:400]}"
        assert len(line) < 32_768, f"an unbounded line of {len(line)} characters"


async def test_a_token_in_the_query_is_not_logged(api: Api, logs: CapturedLogs) -> None:
    token = api.token()
    response = await api.get(f"/ctms/{EMAIL_ID}?access_token={token}")
    assert response.status_code == 404
    _assert_clean(logs, [token])


@pytest.mark.parametrize("name", ["email", "Primary_Email", "fxa_PRIMARY_EMAIL", "unknown"])
async def test_an_address_in_any_query_parameter_is_not_logged(
    api: Api, logs: CapturedLogs, name: str
) -> None:
    await api.get(f"/ctms/{EMAIL_ID}?{name}={quote(ADDRESS)}")
    _assert_clean(logs, [ADDRESS, quote(ADDRESS)])


async def test_an_address_in_a_from_header_and_proxy_credentials_are_not_logged(
    api: Api, logs: CapturedLogs
) -> None:
    headers = {**api.auth(), "From": ADDRESS, "Proxy-Authorization": "Basic c2NhbjpuZWQ="}
    await api.get(f"/ctms/{EMAIL_ID}", headers=headers)
    _assert_clean(logs, [ADDRESS, "c2NhbjpuZWQ="])


async def test_a_huge_header_makes_a_bounded_line(api: Api, logs: CapturedLogs) -> None:
    headers = {**api.auth(), "X-Huge": "h" * 1_048_576, "X-Request-Id": "r" * 100_000}
    await api.get(f"/ctms/{EMAIL_ID}", headers=headers)
    _assert_clean(logs, [])


async def test_an_address_as_a_token_client_id_is_not_logged(api: Api, logs: CapturedLogs) -> None:
    response = await api.http.post(
        "/token", data={"client_id": ADDRESS, "client_secret": CLIENT_SECRET}
    )
    assert response.status_code == 400
    _assert_clean(logs, [ADDRESS, CLIENT_SECRET])


_AFFIXES = st.text(alphabet=string.ascii_letters + string.digits + "-._", max_size=8)


def _random_case(name: str, flips: list[bool]) -> str:
    return "".join(
        char.upper() if flip else char.lower() for char, flip in zip(name, flips, strict=False)
    )


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header_names=st.lists(
        st.one_of(
            st.sampled_from(HEADER_NAMES), st.from_regex(r"X-[A-Za-z0-9-]{1,16}", fullmatch=True)
        ),
        min_size=1,
        max_size=6,
        unique_by=str.lower,
    ),
    query_names=st.lists(
        st.one_of(st.sampled_from(QUERY_NAMES), st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True)),
        min_size=1,
        max_size=6,
        unique_by=str.lower,
    ),
    kinds=st.lists(
        st.sampled_from(["address", "jwt", "bearer", "secret", "encoded"]), min_size=12, max_size=12
    ),
    affixes=st.lists(st.tuples(_AFFIXES, _AFFIXES), min_size=12, max_size=12),
    flips=st.lists(st.booleans(), min_size=24, max_size=24),
    path=st.sampled_from([f"/ctms/{EMAIL_ID}", "/ctms", "/identities", "/no/such/route", "/token"]),
    authenticated=st.booleans(),
)
async def test_no_header_or_query_parameter_brings_an_address_or_a_token_into_the_logs(
    api: Api,
    logs: CapturedLogs,
    header_names: list[str],
    query_names: list[str],
    kinds: list[str],
    affixes: list[tuple[str, str]],
    flips: list[bool],
    path: str,
    authenticated: bool,
) -> None:
    logs.clear()
    token = api.token()
    carried = {
        "address": ADDRESS,
        "jwt": token,
        "bearer": f"Bearer {token}",
        "secret": CLIENT_SECRET,
        "encoded": quote(ADDRESS, safe=""),
    }

    def value(index: int) -> str:
        prefix, suffix = affixes[index]
        return f"{prefix}{carried[kinds[index]]}{suffix}"

    headers = {_random_case(name, flips): value(index) for index, name in enumerate(header_names)}
    if authenticated:
        headers["Authorization"] = f"Bearer {token}"
    params = {name: value(6 + index) for index, name in enumerate(query_names)}
    await api.http.get(path, headers=headers, params=params)
    _assert_clean(logs, [ADDRESS, quote(ADDRESS, safe=""), token, CLIENT_SECRET])


async def test_an_address_in_an_unexpected_error_is_not_logged(
    running_api: RunApi, logs: CapturedLogs
) -> None:
    failure = RuntimeError(f"Key (primary_email)=({ADDRESS}) already exists")
    async with running_api(
        wrap_uow=lambda inner: ContactsUnreachableUnitOfWork(inner, failure)
    ) as broken:
        response = await broken.get(f"/ctms/{EMAIL_ID}")
    assert response.status_code == 500
    assert any('"traceback"' in line for line in logs.lines())
    _assert_clean(logs, [ADDRESS])
