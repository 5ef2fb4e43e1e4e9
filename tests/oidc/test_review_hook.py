"""A failing ``on_revoked`` hook (its event bus down, a bug) never undoes or halts what the
relying party ended: a back-channel logout still revokes every session it names and answers
200, a logout still logs out; the failure is logged."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck import AsyncSessionManager
from coatcheck.core.records import SessionRecord
from coatcheck.oidc import BACKCHANNEL_LOGOUT_EVENT, OIDCSettings

from .apps import HTML, Site, asgi_site, default_stack
from .provider_harness import OidcProvider

FORM = {"content-type": "application/x-www-form-urlencoded"}
told: list[str] = []


async def broken_hook(record: SessionRecord, reason: str) -> None:
    told.append(reason)
    raise RuntimeError("the event bus is down")


def stack_with_a_broken_hook(manager: AsyncSessionManager, settings: OIDCSettings) -> Any:
    app = default_stack(manager, settings)
    app.flow.on_revoked = broken_hook
    return app


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    told.clear()
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, build=stack_with_a_broken_hook) as site:
        yield site


def test_a_back_channel_logout_revokes_every_session_despite_the_hook(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="coatcheck.oidc")
    for _ in range(2):
        site.logged_in("alice")
    claims = {
        "iss": site.provider.issuer,
        "aud": site.provider.client_id,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "sub": "alice",
    }
    token = site.provider.sign(claims, typ="logout+jwt")
    answer = httpx.post(
        f"{site.url}/oidc/backchannel-logout", content=f"logout_token={token}", headers=FORM
    )
    assert answer.status_code == 200
    assert site.user_sessions("alice") == []
    assert told == ["backchannel_logout", "backchannel_logout"]
    assert any("on_revoked" in r.getMessage() for r in caplog.records)


def test_a_logout_logs_out_despite_the_hook(site: Site) -> None:
    browser, _ = site.logged_in("alice")
    page = browser.get("/page", html=True)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = browser.client.post(browser.url("/oidc/logout"), data={"csrf_token": csrf}, headers=HTML)
    assert out.status_code == 303
    assert site.user_sessions("alice") == []
    assert browser.me()["user"] is None
    assert told == ["logout"]
