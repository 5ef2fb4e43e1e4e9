"""What the example-app trials share: browsers that carry several values of the session
cookie's name, and made-up values of the site's mode."""

from __future__ import annotations

import base64
import os

import httpx
from example_sites import COOKIE, Site

from coatcheck.core.tokens import TokenCodec, new_token_key

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}
CROSS_SITE = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}


def made_up(site: Site) -> str:
    """A value shaped like a real cookie of the site's mode that names no session."""
    if site.sealed:
        return "cs1." + base64.urlsafe_b64encode(os.urandom(60)).decode()
    return TokenCodec(new_token_key()).new_token()[0]


def planted(site: Site, kind: str, count: int) -> list[str]:
    if kind == "junk":
        return [f"junk{i}" for i in range(count)]
    return [made_up(site) for _ in range(count)]


def send(site: Site, method: str, path: str, values: list[str], **kwargs: object) -> httpx.Response:
    """One request from a browser whose ``Cookie`` header holds ``values`` for our name, in
    that order (a cookie jar cannot hold several cookies of one name, path and domain)."""
    headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
    headers["cookie"] = "; ".join(f"{COOKIE}={v}" for v in values)
    return site.client().request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


def set_cookies(response: httpx.Response) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k == "set-cookie"]


def assert_no_store(response: httpx.Response) -> None:
    directives = [d.strip() for d in response.headers.get("cache-control", "").split(",")]
    assert "no-store" in directives, (response.status_code, dict(response.headers))


def logged_in(site: Site) -> str:
    browser = site.client()
    site.login(browser)
    return str(browser.cookies[COOKIE])
