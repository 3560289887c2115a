"""The v3.3 request pipeline (docs/contract.md §2.2, §14.1), declared once per route.

v3.3 answered every bearer-authenticated operation in one order, and which error wins when several apply
follows from it:

1. decode the body, for operations that take one: malformed JSON is a 422 even for anonymous callers;
2. authenticate the bearer token: 401 (missing or bad credentials) or 400 (disabled client);
3. check the operation's permission: 403, only once the client is known;
4. validate path, query and body together: one 422 listing every problem;
5. run the use case.

A route declares steps 1 to 3 with `@pipeline(...)` under its Litestar decorator; the handler is step 4
and 5, and receives what the pipeline produced as the parameters it names:

    @get("/ctms/{email_id:str}", ...)
    @pipeline(READ)
    async def read_contact(email_id: EmailIdPath, contacts_api: Api) -> ASGIResponse: ...

* `body: RequestJson` — the decoded body (`body=True`): a body problem other than malformed JSON is in
  `body.problem`, for the handler's 422 (step 4) — see `requests.parse_body`;
* `client: ApiClient` — the authenticated client;
* `request` — the request, as in any Litestar handler.

Litestar sees the handler's own parameters (path, query, the dependency bundle) plus `request`, so the
OpenAPI document is unchanged. The pipeline costs one plain function call per request: no Litestar guard
(Litestar copies the route handler for each guard call) and no extra dependency (Litestar resolves a
handler's dependencies concurrently in a task group, see `dependencies`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from litestar import Request

from ctms_core.services.auth import AuthService
from ctms_entrypoints.http.auth import authenticate
from ctms_entrypoints.http.requests import read_json_body

AnyRequest = Request[Any, Any, Any]
R = TypeVar("R")
Handler = Callable[..., Awaitable[R]]

# What the pipeline hands to a handler that names them (see the module docstring).
_PRODUCED = ("request", "client", "body")


def pipeline(
    permissions: Sequence[str], *, body: bool = False, auth: str = "contacts_api.auth"
) -> Callable[[Handler[R]], Handler[R]]:
    """Run a handler after v3.3's decode → authenticate → permit steps.

    `permissions`: the operation needs any one of them. `body`: decode the JSON body first. `auth`: where
    the `AuthService` is, as `<dependency parameter>[.<attribute>...]` (the handler must declare that
    dependency parameter).
    """
    required = tuple(permissions)
    dependency, _, attribute = auth.partition(".")
    auth_of: Callable[[Any], AuthService] = attrgetter(attribute) if attribute else _itself

    def decorate(handler: Handler[R]) -> Handler[R]:
        parameters = inspect.signature(handler).parameters
        if dependency not in parameters:
            raise TypeError(f"{handler.__qualname__} must declare the `{dependency}` dependency")
        if "body" in parameters and not body:
            raise TypeError(f"{handler.__qualname__} takes `body` but its pipeline decodes none")
        wants_request = "request" in parameters
        wants_client = "client" in parameters
        wants_body = "body" in parameters

        async def admitted(request: AnyRequest, **kwargs: Any) -> R:
            decoded = await read_json_body(request) if body else None
            client = await authenticate(request, auth_of(kwargs[dependency]), required)
            if wants_request:
                kwargs["request"] = request
            if wants_client:
                kwargs["client"] = client
            if wants_body:
                kwargs["body"] = decoded
            return await handler(**kwargs)

        _present_as(admitted, handler)
        return admitted

    return decorate


def _itself(value: AuthService) -> AuthService:
    return value


def _present_as(wrapper: Callable[..., Any], handler: Callable[..., Any]) -> None:
    """Give `wrapper` the name, docstring (the OpenAPI description) and signature Litestar reads from
    `handler`, with `request` instead of what the pipeline produces."""
    signature = inspect.signature(handler)
    kept = [p for name, p in signature.parameters.items() if name not in _PRODUCED]
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    wrapper.__signature__ = signature.replace(parameters=[request, *kept])  # type: ignore[attr-defined]
    annotations = {
        name: value for name, value in handler.__annotations__.items() if name not in _PRODUCED
    }
    wrapper.__annotations__ = {"request": AnyRequest, **annotations}
    wrapper.__name__ = handler.__name__
    wrapper.__qualname__ = handler.__qualname__
    wrapper.__module__ = handler.__module__
    wrapper.__doc__ = handler.__doc__
