"""The three one-time values of a login: ``state`` (ties the callback to the browser that
started it), ``nonce`` (ties the ID token to it) and the PKCE ``code_verifier``."""

from __future__ import annotations

import re
import secrets as _random

_BYTES = 32  # 256 bits each; the verifier gets 43 characters, within RFC 7636's 43..128
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636, 4.1


def new_login_secrets() -> tuple[str, str, str]:
    """``(state, nonce, code_verifier)``: fresh, independent, URL-safe, 256 bits each."""
    return (
        _random.token_urlsafe(_BYTES),
        _random.token_urlsafe(_BYTES),
        _random.token_urlsafe(_BYTES),
    )


def check_code_verifier(code_verifier: object) -> None:
    """ValueError unless ``code_verifier`` is what RFC 7636 (4.1) allows."""
    if not isinstance(code_verifier, str) or not _VERIFIER.fullmatch(code_verifier):
        raise ValueError("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
