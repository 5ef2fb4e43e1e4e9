"""The Starlette/FastAPI helper (``add_oidc``) end to end, and the refusal of sealed-cookie
mode, where the provider's tokens would travel in the cookie."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from coatcheck import AsyncSessionManager
from coatcheck.cookies import development
from coatcheck.oidc import OIDCConfigError, OIDCSettings
from coatcheck.web.backend import build_async_backend
from coatcheck.web.oidc import with_oidc
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import AuthenticatedSession, add_oidc

from .apps import Site, asgi_site, rp_settings, starlette_app, whoami
from .provider_harness import OidcProvider

SEALED_KEY = "A" * 43  # 32 bytes, URL-safe base64


def fastapi_stack(manager: AsyncSessionManager, settings: OIDCSettings) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await manager.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def home(session: AuthenticatedSession) -> dict[str, Any]:
        return whoami(session.user_id, session)

    web = WebSettings.build(cookie=development(), login_url=settings.login_path)
    add_oidc(app, settings, manager=manager, settings=web)
    return app


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/s.db", build=fastapi_stack) as site:
        yield site


def test_fastapi_login_guard_sends_a_browser_to_the_oidc_login(site: Site) -> None:
    browser = site.browser()
    guarded = browser.get("/?x=1", html=True)
    assert guarded.status_code == 303
    assert guarded.headers["location"].startswith("/oidc/login?next=")
    authorization = browser.follow(guarded)  # the app's login path, then the provider's form
    assert authorization.status_code == 200
    back = site.provider.login(browser.client, str(authorization.url), "alice")
    assert browser.client.get(back).headers["location"] == "/?x=1"
    before = browser.me()
    assert before["user"] == "alice"
    browser.wait_until_expired(float(before["expires_at"]))
    assert browser.me()["token"] != before["token"]


def test_an_api_client_gets_401_from_the_guard(site: Site) -> None:
    assert site.browser().get("/").status_code == 401


def test_sealed_cookie_mode_is_refused_at_construction(oidc_provider: OidcProvider) -> None:
    sealed = build_async_backend(mode="sealed", sealed_keys=[SEALED_KEY])
    settings = rp_settings(oidc_provider)
    with pytest.raises(OIDCConfigError, match="sealed-cookie mode") as refused:
        with_oidc(starlette_app(sealed), sealed, settings)  # type: ignore[arg-type]
    assert "cookie" in str(refused.value)
    with pytest.raises(OIDCConfigError, match="server-side sessions"):
        add_oidc(FastAPI(), settings, manager=sealed)


def test_add_oidc_reads_the_environment_names(oidc_provider: OidcProvider, tmp_path: Path) -> None:
    config = {
        "COATCHECK_OIDC_ISSUER": oidc_provider.issuer,
        "COATCHECK_OIDC_CLIENT_ID": oidc_provider.client_id,
        "COATCHECK_OIDC_CLIENT_SECRET": oidc_provider.client_secret,
        "COATCHECK_STORE_URL": f"sqlite:///{tmp_path}/env.db",
    }
    app = FastAPI()
    manager = add_oidc(app, config=config)
    assert isinstance(manager, AsyncSessionManager)
    asyncio.run(manager.close())
    with pytest.raises(OIDCConfigError, match="COATCHECK_OIDC_ISSUER"):
        add_oidc(FastAPI(), config={"COATCHECK_STORE_URL": "memory://"})
