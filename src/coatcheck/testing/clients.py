"""Put a session cookie into a framework's test client, the way the app itself would have.

Three cookie jars cover the test clients people use, recognised by shape so that no framework
is imported here:

* ``http.cookiejar`` behind httpx, Starlette's ``TestClient`` and requests: the cookie goes in
  through the jar's own ``Set-Cookie`` parsing, as if the app had answered a request to the
  client's base URL. The jar then applies its real rules (``Secure`` only over https, host and
  path scoping) and a later ``Set-Cookie`` from the app replaces it instead of doubling it.
* werkzeug's (Flask's) test client: ``client.set_cookie`` for the host the client requests.
* Django's test ``Client``: its ``SimpleCookie``, which it sends with every request.
"""

from __future__ import annotations

import asyncio
import email.message
import urllib.request
from collections.abc import Awaitable, Callable
from functools import partial
from http.cookiejar import CookieJar
from http.cookies import SimpleCookie
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from ..cookies import CookieSettings
from ..core.errors import ConfigError
from ..core.records import Kind
from .guard import ensure_testing_allowed
from .login import (
    AnyLoginManager,
    AsyncLoginManager,
    LoginManager,
    alogin_token,
    is_async,
    login_token,
)

T = TypeVar("T")


class ClientCookies(Protocol):
    """The session cookie as one test client holds it."""

    def check(self, cookie: CookieSettings) -> None:
        """Raise ConfigError if this client could never send ``cookie`` back."""

    def set(self, cookie: CookieSettings, token: str) -> None: ...

    def values(self, cookie: CookieSettings) -> list[str]: ...

    def delete(self, cookie: CookieSettings) -> None: ...


class _SetCookieResponse:
    """Just enough of a urllib response for ``CookieJar.extract_cookies``."""

    def __init__(self, set_cookie: str) -> None:
        self._headers = email.message.Message()
        self._headers["Set-Cookie"] = set_cookie

    def info(self) -> email.message.Message:
        return self._headers


class JarCookies:
    """httpx / Starlette ``TestClient`` / requests: a standard ``http.cookiejar`` jar."""

    def __init__(self, jar: CookieJar, base_url: str) -> None:
        self.jar = jar
        self.base_url = base_url

    def check(self, cookie: CookieSettings) -> None:
        parts = urlsplit(self.base_url)
        if not parts.hostname:
            raise ConfigError(
                "cannot tell which host this test client talks to: give it a base_url "
                "(e.g. https://testserver) or pass base_url= to log_in"
            )
        if cookie.secure and parts.scheme != "https":
            raise ConfigError(
                f"the session cookie {cookie.name} is Secure, and this test client's base URL "
                f"{self.base_url} is not https, so the client would never send it. Use an "
                "https base URL (TestClient(app, base_url='https://testserver')) or, on "
                "http://127.0.0.1, coatcheck.cookies.development() cookies"
            )

    def set(self, cookie: CookieSettings, token: str) -> None:
        self.check(cookie)
        parts = urlsplit(self.base_url)
        # Never opened: only the jar's description of "a response from this URL".
        url = f"{parts.scheme}://{parts.netloc}{cookie.path}"
        request = urllib.request.Request(url)  # noqa: S310
        self.jar.extract_cookies(_SetCookieResponse(cookie.set_cookie(token)), request)  # type: ignore[arg-type]
        if token not in self.values(cookie):
            raise ConfigError(
                f"the test client refused the {cookie.name} cookie for {self.base_url} "
                f"(Domain={cookie.domain!r}, Path={cookie.path!r}); give the client a base "
                "URL on the cookie's domain and path"
            )

    def values(self, cookie: CookieSettings) -> list[str]:
        return [c.value for c in self.jar if c.name == cookie.name and c.value]

    def delete(self, cookie: CookieSettings) -> None:
        for found in [c for c in self.jar if c.name == cookie.name]:
            self.jar.clear(found.domain, found.path, found.name)


class WerkzeugCookies:
    """Flask's / werkzeug's test client: cookies keyed by (host, path, name)."""

    def __init__(self, client: Any, base_url: str | None) -> None:
        self.client = client
        self.host = _werkzeug_host(client, base_url)

    def check(self, cookie: CookieSettings) -> None:
        """werkzeug sends a cookie to its host and path whatever its Secure flag."""

    def set(self, cookie: CookieSettings, token: str) -> None:
        self.client.set_cookie(
            cookie.name,
            token,
            domain=cookie.domain or self.host,
            origin_only=cookie.domain is None,
            path=cookie.path,
            secure=cookie.secure,
            httponly=True,
            samesite=cookie.same_site,
        )

    def values(self, cookie: CookieSettings) -> list[str]:
        found = self.client.get_cookie(
            cookie.name, domain=cookie.domain or self.host, path=cookie.path
        )
        return [found.value] if found is not None and found.value else []

    def delete(self, cookie: CookieSettings) -> None:
        self.client.delete_cookie(cookie.name, domain=cookie.domain or self.host, path=cookie.path)


def _werkzeug_host(client: Any, base_url: str | None) -> str:
    """The host werkzeug's client requests: base_url, else Flask's SERVER_NAME, else localhost."""
    if base_url:
        return urlsplit(base_url).hostname or "localhost"
    config = getattr(getattr(client, "application", None), "config", None)
    server_name = config.get("SERVER_NAME") if isinstance(config, dict) else None
    if server_name:
        return urlsplit(f"//{server_name}").hostname or "localhost"
    return "localhost"


class DjangoCookies:
    """Django's test ``Client``: a ``SimpleCookie`` sent whole with every request."""

    def __init__(self, jar: SimpleCookie) -> None:
        self.jar = jar

    def check(self, cookie: CookieSettings) -> None:
        """Django's client sends every cookie it holds, to any host and path."""

    def set(self, cookie: CookieSettings, token: str) -> None:
        self.jar[cookie.name] = token
        morsel = self.jar[cookie.name]
        morsel["path"] = cookie.path
        if cookie.domain:
            morsel["domain"] = cookie.domain
        morsel["secure"] = cookie.secure
        morsel["httponly"] = True
        morsel["samesite"] = cookie.same_site

    def values(self, cookie: CookieSettings) -> list[str]:
        morsel = self.jar.get(cookie.name)
        return [morsel.value] if morsel is not None and morsel.value else []

    def delete(self, cookie: CookieSettings) -> None:
        self.jar.pop(cookie.name, None)


def cookies_of(client: Any, base_url: str | None = None) -> ClientCookies:
    """The cookie jar of a test client, recognised by shape (no framework is imported)."""
    jar = getattr(client, "cookies", None)
    if isinstance(jar, SimpleCookie):
        return DjangoCookies(jar)
    if callable(getattr(client, "set_cookie", None)) and callable(
        getattr(client, "get_cookie", None)
    ):
        return WerkzeugCookies(client, base_url)
    inner = jar if isinstance(jar, CookieJar) else getattr(jar, "jar", None)
    if isinstance(inner, CookieJar):
        return JarCookies(inner, base_url or str(getattr(client, "base_url", "") or ""))
    raise TypeError(
        f"cannot log in a {type(client).__name__}: coatcheck.testing knows httpx clients "
        "(Starlette/FastAPI TestClient), Flask/werkzeug test clients, Django's test Client "
        "and requests sessions"
    )


def _drive(client: Any, step: Callable[[], Awaitable[T]]) -> T:
    """Run an async manager call from synchronous test code.

    On the test client's own event loop when it has one (Starlette's ``TestClient`` inside
    ``with``: pooled Redis/PostgreSQL connections are bound to that loop), else on a private
    loop. Inside a running loop there is no safe way to block: use the ``a…`` helpers.
    """
    portal = getattr(client, "portal", None)
    if portal is not None:
        return portal.call(step)  # type: ignore[no-any-return]
    try:
        asyncio.get_running_loop()
    except RuntimeError:

        async def run() -> T:
            return await step()

        return asyncio.run(run())
    raise RuntimeError(
        "log_in/log_out with an AsyncSessionManager inside a running event loop: "
        "use `await alog_in(...)` / `await alog_out(...)`"
    )


def log_in(
    client: Any,
    manager: AnyLoginManager,
    user_id: str,
    *,
    cookie: CookieSettings | None = None,
    kind: Kind = "browser",
    data: dict[str, Any] | None = None,
    base_url: str | None = None,
) -> str:
    """Log a test client in as ``user_id`` in one line; returns the session token.

    The session is real (made by ``manager``); the cookie is the one the app's ``cookie``
    settings name (pass the app's :class:`CookieSettings`; the default is the secure
    ``__Host-session``). ``base_url`` is only needed when the client cannot say where it
    sends requests.
    """
    ensure_testing_allowed(explicit=True)
    cookie = cookie or CookieSettings()
    jar = cookies_of(client, base_url)
    jar.check(cookie)
    if is_async(manager):
        token = _drive(client, partial(alogin_token, manager, user_id, kind=kind, data=data))
    else:
        token = login_token(cast(LoginManager, manager), user_id, kind=kind, data=data)
    jar.set(cookie, token)
    return token


async def alog_in(
    client: Any,
    manager: AsyncLoginManager,
    user_id: str,
    *,
    cookie: CookieSettings | None = None,
    kind: Kind = "browser",
    data: dict[str, Any] | None = None,
    base_url: str | None = None,
) -> str:
    """:func:`log_in` from async test code (e.g. ``httpx.AsyncClient`` over ``ASGITransport``)."""
    ensure_testing_allowed(explicit=True)
    cookie = cookie or CookieSettings()
    jar = cookies_of(client, base_url)
    jar.check(cookie)
    token = await alogin_token(manager, user_id, kind=kind, data=data)
    jar.set(cookie, token)
    return token


def log_out(
    client: Any,
    manager: AnyLoginManager | None = None,
    *,
    cookie: CookieSettings | None = None,
    base_url: str | None = None,
) -> None:
    """Drop the session cookie from a test client; with ``manager``, end the session too
    (through the manager's own ``logout``, as the app's logout route would)."""
    cookie = cookie or CookieSettings()
    jar = cookies_of(client, base_url)
    if manager is not None:
        for token in jar.values(cookie):
            if is_async(manager):
                _drive(client, partial(_alogout_token, manager, token))
            else:
                sync = cast(LoginManager, manager)
                sync.logout(sync.load(token))
    jar.delete(cookie)


async def _alogout_token(manager: AsyncLoginManager, token: str) -> None:
    await manager.logout(await manager.load(token))


async def alog_out(
    client: Any,
    manager: AsyncLoginManager | None = None,
    *,
    cookie: CookieSettings | None = None,
    base_url: str | None = None,
) -> None:
    """:func:`log_out` from async test code."""
    cookie = cookie or CookieSettings()
    jar = cookies_of(client, base_url)
    if manager is not None:
        for token in jar.values(cookie):
            await _alogout_token(manager, token)
    jar.delete(cookie)
