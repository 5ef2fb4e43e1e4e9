"""A ``SameSite=Strict`` session cookie and OIDC: the provider's redirect back is a navigation
another site started, so the browser leaves the cookie out and no callback would find its
login. Both stacks say so when they are built."""

from __future__ import annotations

import asyncio
import logging

import pytest

from coatcheck import AsyncSessionManager, SessionManager, open_async_store, open_store
from coatcheck.cookies import CookieSettings
from coatcheck.oidc import OIDCSettings
from coatcheck.web import oidc_wsgi
from coatcheck.web.oidc import with_oidc
from coatcheck.web.settings import WebSettings

SETTINGS = OIDCSettings(issuer="https://id.example", client_id="app", client_secret="s")


async def empty_app(scope: object, receive: object, send: object) -> None:
    return None


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "coatcheck.oidc"]


@pytest.mark.parametrize("same_site", ["Strict", "Lax"])
def test_a_strict_cookie_is_warned_of_at_start_up(
    caplog: pytest.LogCaptureFixture, same_site: str
) -> None:
    caplog.set_level(logging.WARNING, logger="coatcheck.oidc")
    web = WebSettings.build(cookie=CookieSettings(same_site=same_site))  # type: ignore[arg-type]
    manager = AsyncSessionManager(open_async_store("memory://"))
    asgi = with_oidc(empty_app, manager, SETTINGS, web)
    sync_manager = SessionManager(open_store("memory://"))
    wsgi = oidc_wsgi.with_oidc(lambda environ, start: [], sync_manager, SETTINGS, web)
    try:
        said = warnings_of(caplog)
        if same_site == "Strict":
            assert len(said) == 2 and all("SameSite=Strict" in line for line in said)
        else:
            assert said == []
    finally:
        wsgi.close()
        sync_manager.close()
        asyncio.run(asgi.aclose())
        asyncio.run(manager.close())
