"""The people's pages in a real browser (Playwright driving Debian's Chromium) against a real
uvicorn server on loopback: two devices, one ends the other; an API token made on the page
works against a guarded route until it is revoked there. A screenshot of each page goes to
``$COATCHECK_ARTIFACTS`` (else ``artifacts/screenshots/`` in the repository)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import chromium
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from coatcheck import AsyncSessionManager, open_async_store
from coatcheck.cookies import development
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import ServiceSettings, load_service_settings
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import EXCEPTION_HANDLERS, require_scopes, session_middleware
from service.conftest import make_keys, uvicorn_server

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "alice-password-1"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def artifacts() -> Path:
    folder = Path(os.environ.get("COATCHECK_ARTIFACTS") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Site:
    url: str
    guarded: str
    introspect_key: str


async def prepare(settings: ServiceSettings) -> str:
    """The user alice and an introspection key, made before the server starts."""
    ctx = ServiceContext.build(settings)
    try:
        await ctx.users.add("alice", PASSWORD)
        _, introspect = await make_keys(ctx)
        return introspect
    finally:
        await ctx.close()


def guarded_app(store_url: str) -> Any:
    """Another app of ours on the same store: one route that API tokens with scope ``read``
    (or a browser session) may call."""
    manager = AsyncSessionManager(open_async_store(store_url))

    async def whoami(request: Request) -> JSONResponse:
        session = await require_scopes("read")(request)
        return JSONResponse({"user": session.user_id})

    return Starlette(
        routes=[Route("/whoami", whoami)],
        middleware=[session_middleware(manager, WebSettings.build(cookie=development()))],
        exception_handlers=EXCEPTION_HANDLERS,
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    store_url = f"sqlite:///{tmp_path}/service.db"
    settings = load_service_settings(None, {}, {"store_url": store_url, "data_dir": tmp_path})
    introspect = asyncio.run(prepare(settings))
    with (
        uvicorn_server(create_app(settings)) as url,
        uvicorn_server(guarded_app(store_url)) as guarded,
    ):
        yield Site(url, guarded, introspect)


def labelled_inputs(page: Any) -> bool:
    """Every visible form control has a label (accessibility)."""
    return bool(
        page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), button')]"
            ".every(e => e.tagName === 'BUTTON' ? (e.textContent.trim() || e.ariaLabel)"
            " : e.labels.length > 0)"
        )
    )


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/account/sessions")
    assert "/login?next=" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/account/sessions")


def test_two_devices_one_ends_the_other(site: Site) -> None:
    shots = artifacts()
    with chromium() as browser:
        laptop = browser.new_context().new_page()
        laptop.goto(f"{site.url}/login")
        assert laptop.get_attribute("html", "lang") == "en"
        assert labelled_inputs(laptop)
        focused = "document.activeElement.id || document.activeElement.textContent.trim()"
        order = [laptop.evaluate(focused)]
        for _ in range(2):
            laptop.keyboard.press("Tab")
            order.append(laptop.evaluate(focused))
        assert order == ["username", "password", "Log in"], "the form works by keyboard"
        laptop.screenshot(path=str(shots / "login.png"), full_page=True)
        log_in(laptop, site.url)
        jar = {c["name"]: c for c in laptop.context.cookies()}
        assert jar["session"]["httpOnly"] is True
        assert jar["session"]["value"] not in laptop.content()

        phone = browser.new_context(user_agent=FIREFOX).new_page()
        log_in(phone, site.url)

        laptop.reload()
        rows = laptop.locator("tr.session")
        assert rows.count() == 2
        assert laptop.locator("tr.session.current").count() == 1
        assert "This device" in laptop.locator("tr.session.current").inner_text()
        assert "Firefox 128 on Linux" in laptop.locator("tr.session:not(.current)").inner_text()
        assert labelled_inputs(laptop)
        laptop.screenshot(path=str(shots / "sessions.png"), full_page=True)

        laptop.locator("tr.session:not(.current)").get_by_role("button").click()
        laptop.wait_for_url(f"{site.url}/account/sessions")
        assert "The session has ended." in laptop.inner_text("main")
        assert laptop.locator("tr.session").count() == 1

        phone.goto(f"{site.url}/account/sessions")
        assert "/expired" in phone.url
        assert phone.get_by_role("heading", level=1).inner_text() == "Your session has expired"
        phone.screenshot(path=str(shots / "expired.png"), full_page=True)
        phone.get_by_role("link", name="Log in again").click()
        assert "/login" in phone.url


def test_an_api_token_from_the_page_works_until_revoked(site: Site) -> None:
    shots = artifacts()
    with chromium() as browser:
        page = browser.new_context().new_page()
        log_in(page, site.url)
        page.get_by_role("link", name="API tokens").click()
        page.wait_for_url(f"{site.url}/account/tokens")
        page.get_by_label("Name").fill("ci")
        page.get_by_label("Scopes").fill("read")
        page.get_by_label("Expires after (days)").fill("7")
        page.get_by_role("button", name="Create token").click()
        token = page.get_by_label("Token").input_value()
        assert token.startswith("cc_")
        assert token not in page.url
        page.screenshot(
            path=str(shots / "token-created.png"), full_page=True, mask=[page.locator("#new-token")]
        )

        introspect = {"authorization": f"Bearer {site.introspect_key}"}
        with httpx.Client() as client:
            bearer = {"authorization": f"Bearer {token}"}
            works = client.get(f"{site.guarded}/whoami", headers=bearer)
            assert works.status_code == 200
            assert works.json() == {"user": "alice"}
            active = client.post(
                f"{site.url}/v1/sessions/introspect", json={"token": token}, headers=introspect
            )
            assert active.json()["active"] is True

            page.goto(f"{site.url}/account/tokens")
            assert page.locator("tr.token").count() == 1
            assert token not in page.content()
            page.screenshot(path=str(shots / "tokens.png"), full_page=True)
            page.locator("tr.token").get_by_role("button", name="Revoke the token ci").click()
            page.wait_for_url(f"{site.url}/account/tokens")
            assert "The token is revoked" in page.inner_text("main")

            refused = client.get(f"{site.guarded}/whoami", headers=bearer)
            assert refused.status_code == 401
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
            inactive = client.post(
                f"{site.url}/v1/sessions/introspect", json={"token": token}, headers=introspect
            )
            assert inactive.json() == {"active": False}
