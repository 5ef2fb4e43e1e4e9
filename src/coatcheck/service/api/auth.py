"""Service keys on every ``/v1`` call: ``Authorization: Bearer cck_...``. A missing, wrong or
revoked key is one and the same 401; a key whose scope does not cover the call is 403."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from ..keys import ServiceKeyInfo
from .headers import header
from .problems import Problem, unauthorized
from .remembered import RememberedKeys

SCHEME_NAME: Final = "ServiceKey"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SCHEME_NAME,
    bearerFormat="cck_...",
    description=(
        "A service key made with `coatcheck service-keys create NAME [--scope introspect|admin]`."
        " Scope `introspect` may call introspect, refresh and events; `admin` may call all."
    ),
)


KEY_REQUIRED: Final[dict[str, Any]] = {"security": [{SCHEME_NAME: []}]}
"""``openapi_extra`` of a route that calls :func:`authenticated` itself (no dependency)."""


async def authenticated(request: Request) -> ServiceKeyInfo:
    """The calling service's key, or 401 (the same answer for no, wrong and revoked keys).

    A plain function: the introspection routes call it directly, because FastAPI's dependency
    machinery cost about as much as a store look-up on that path (docs/performance.md)."""
    scheme, key = get_authorization_scheme_param(header(request, b"authorization"))
    if scheme.lower() != "bearer" or not key:
        raise unauthorized()
    keys: RememberedKeys = request.app.state.remembered_keys
    info = await keys.authenticate(key)
    if info is None:
        raise unauthorized()
    return info


async def service_key(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ServiceKeyInfo:
    """:func:`authenticated` as a dependency (``bearer`` puts the scheme in the OpenAPI
    document)."""
    return await authenticated(request)


async def introspect_scope(key: Annotated[ServiceKeyInfo, Depends(service_key)]) -> ServiceKeyInfo:
    """Any valid key: both scopes may introspect, refresh and follow the events."""
    return key


async def admin_scope(key: Annotated[ServiceKeyInfo, Depends(service_key)]) -> ServiceKeyInfo:
    """A key of scope ``admin``, else 403."""
    if key.scope != "admin":
        raise Problem(
            "forbidden",
            "This service key has scope 'introspect': it may introspect, refresh and follow "
            "the events; this call needs a key of scope 'admin'.",
        )
    return key
