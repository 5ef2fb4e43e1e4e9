"""Service keys on every ``/v1`` call: ``Authorization: Bearer cck_...``. A missing, wrong or
revoked key is one and the same 401; a key whose scope does not cover the call is 403."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..keys import ServiceKeyInfo
from .problems import Problem, unauthorized
from .state import context_of

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


async def service_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ServiceKeyInfo:
    """The calling service's key, or 401 (the same answer for no, wrong and revoked keys)."""
    if credentials is None:
        raise unauthorized()
    info = await context_of(request).service_keys.authenticate(credentials.credentials)
    if info is None:
        raise unauthorized()
    return info


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
