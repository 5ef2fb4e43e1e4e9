"""The three one-time values of a login: ``state`` (ties the callback to the browser that
started it), ``nonce`` (ties the ID token to it) and the PKCE ``code_verifier``."""

from __future__ import annotations

import secrets as _random

_BYTES = 32  # 256 bits each; the verifier gets 43 characters, within RFC 7636's 43..128


def new_login_secrets() -> tuple[str, str, str]:
    """``(state, nonce, code_verifier)``: fresh, independent, URL-safe, 256 bits each."""
    return (
        _random.token_urlsafe(_BYTES),
        _random.token_urlsafe(_BYTES),
        _random.token_urlsafe(_BYTES),
    )
