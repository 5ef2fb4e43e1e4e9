"""What the provider's HTTP answers mean, written once for both faces of the provider client:
the token endpoint's JSON (a token set, an OAuth error, or a provider that is not well),
client authentication and the URLs sent to the browser."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

from .errors import ProviderRefused, ProviderUnavailable
from .models import Identity, TokenSet, json_number


def basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749, 2.3.1: both form-urlencoded, then HTTP Basic."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def with_query(endpoint: str, params: Mapping[str, str]) -> str:
    """``endpoint`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(endpoint)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def unreachable(what: str, exc: httpx.HTTPError) -> ProviderUnavailable:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return ProviderUnavailable(f"{what}: the OpenID Provider {kind} ({type(exc).__name__})")


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeError):
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{what}: the OpenID Provider's answer is not a JSON object")
    return body


def token_answer(response: httpx.Response) -> dict[str, Any]:
    """The token endpoint's JSON answer, or the error it stands for."""
    status = response.status_code
    if status >= 500 or status == 429:
        raise ProviderUnavailable(f"token endpoint: the OpenID Provider answered HTTP {status}")
    try:
        body = response.json()
    except (ValueError, UnicodeError):
        body = None
    if status != 200:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            description = body.get("error_description")
            raise ProviderRefused(
                body["error"], description if isinstance(description, str) else None
            )
        raise ProviderUnavailable(f"token endpoint: the OpenID Provider answered HTTP {status}")
    if not isinstance(body, dict):
        raise ProviderUnavailable(
            "token endpoint: the OpenID Provider's answer is not a JSON object"
        )
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise ProviderUnavailable("token endpoint: the answer has no access_token")
    if not isinstance(body.get("token_type"), str):
        raise ProviderUnavailable("token endpoint: the answer has no token_type")
    return body


def token_set(
    answer: Mapping[str, Any], *, now: float, identity: Identity | None, refresh_token: str | None
) -> TokenSet:
    """A checked token answer as a TokenSet; ``refresh_token`` stands in for a missing one."""
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)  # some providers send it as a string
    lifetime = json_number(expires_in)
    new_refresh = answer.get("refresh_token")
    scope = answer.get("scope")
    id_token = answer.get("id_token")
    return TokenSet(
        access_token=answer["access_token"],
        token_type=answer["token_type"],
        expires_at=None if lifetime is None else now + lifetime,
        refresh_token=new_refresh
        if isinstance(new_refresh, str) and new_refresh
        else refresh_token,
        id_token=id_token if isinstance(id_token, str) else None,
        scope=scope if isinstance(scope, str) else None,
        identity=identity,
    )
