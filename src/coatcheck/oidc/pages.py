"""The few pages the relying party shows itself: small, server-rendered, escaped, no script
(the style of :mod:`coatcheck.web.errors`). No token ever appears in them."""

from __future__ import annotations

import html

PAGE_HEADERS = (
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "no-store"),
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"),
    ("referrer-policy", "no-referrer"),
)


def page(title: str, paragraphs: tuple[str, ...], link: tuple[str, str] | None = None) -> bytes:
    """One page: a heading, plain paragraphs and at most one link (``(href, text)``), every
    value escaped."""
    body = "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    if link is not None:
        href, text = link
        body += f'<p><a href="{html.escape(href, quote=True)}">{html.escape(text)}</a></p>'
    heading = html.escape(title)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}</title><main><h1>{heading}</h1>{body}</main></html>"
    ).encode()


def ended_page(login_href: str) -> bytes:
    """The session at the provider has ended: the local one has too; log in again."""
    return page(
        "Your session has ended",
        (
            "Your session at the sign-in provider has ended (you logged out there, or it "
            "expired), so you have been logged out here as well.",
        ),
        (login_href, "Log in again"),
    )


def logged_out_page(home_href: str, *, provider_reached: bool = True) -> bytes:
    """After a logout: the local session is gone (and, when reached, the provider's)."""
    lines: tuple[str, ...] = ("You have been logged out.",)
    if not provider_reached:
        lines += (
            "The sign-in provider could not be reached, so you may still be logged in there; "
            "close the browser to end that session too.",
        )
    return page("Logged out", lines, (home_href, "Continue"))
