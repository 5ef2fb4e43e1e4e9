"""Bad input once through the WSGI face (the generated synchronous flow): the same clear
answers as through ASGI (tests/oidc/test_review_bad_input.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .apps import JSON, Site, wsgi_site
from .provider_harness import OidcProvider
from .test_review_bad_input import FORM, PAGES, same_site_path


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with wsgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


@pytest.mark.parametrize("path", PAGES)
def test_too_many_parameters_is_a_400(site: Site, path: str) -> None:
    answer = httpx.get(f"{site.url}{path}?{'a=1&' * 150}", headers=JSON)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_query"


def test_a_non_ascii_next_comes_back_percent_encoded(site: Site) -> None:
    landed = site.browser().log_in("alice", target="/%E6%97%A5%3Fq%3D%E2%80%A8")
    assert landed.status_code == 303
    assert landed.headers["location"] == "/%E6%97%A5?q=%E2%80%A8"
    assert same_site_path(landed.headers["location"])


def test_a_repeated_or_junk_logout_token_is_a_400(site: Site) -> None:
    endpoint = f"{site.url}/oidc/backchannel-logout"
    for body in (b"logout_token=a&logout_token=b", b"\xff" * 50, b"a=1&" * 40):
        answer = httpx.post(endpoint, content=body, headers=FORM)
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"
