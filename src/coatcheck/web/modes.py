"""Server-side sessions or sealed cookies: the one switch, resolved from settings and explicit
arguments once, for :func:`~coatcheck.web.backend.build_backend` and
:func:`~coatcheck.web.backend.build_async_backend` alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from ..config import Settings, read_settings
from ..config.settings import SEALED_CACHE, SESSION_MODE
from ..cookies import CookieSettings
from ..core.policy import Policy
from ..core.tokens import is_well_formed
from ..stores import DEFAULT_URL
from .settings import cookie_settings


def value_check(manager: object) -> Callable[[object], bool]:
    """How a backend's cookie values look, checked without I/O: a manager with its own format
    says so with an ``is_well_formed`` method (the sealed ones do); else server-mode tokens."""
    check = getattr(manager, "is_well_formed", None)
    return check if callable(check) else is_well_formed


class Overrides(TypedDict, total=False):
    """Arguments of the builders that win over their settings.

    mode: ``server`` keeps sessions in the store at ``store_url`` (else the SQLite default);
        ``sealed`` keeps them in the cookie, encrypted with ``sealed_keys``, keeps the sessions
        of ``opened_cache`` recent cookie values (1024 by default, 0 for none;
        docs/sealed.md), and uses the store only if one is configured, for
        logout-everywhere stamps.
    token_key: server mode's token key (docs/security.md, "The token key").
    """

    mode: str | None
    store_url: str | None
    policy: Policy | None
    cookie: CookieSettings | None
    sealed_keys: str | Sequence[str | bytes] | None
    opened_cache: int | str | None
    token_key: str | bytes | None


@dataclass(frozen=True, slots=True)
class Plan:
    """What both builders make, resolved once from settings and explicit arguments."""

    sealed: bool
    store_url: str | None
    policy: Policy
    cookie: CookieSettings
    sealed_keys: str | Sequence[str | bytes] | None
    opened_cache: int
    token_key: str | bytes | None
    log_key: bytes | None


def resolve(settings: Settings | None, given: Overrides) -> Plan:
    """Explicit arguments win over ``settings``, which default to the environment's."""
    from ..sealed.codec import OPENED_CACHE_SIZE

    chosen = read_settings(os.environ) if settings is None else settings
    mode, opened_cache = given.get("mode"), given.get("opened_cache")
    explicit = read_settings({SESSION_MODE: mode, SEALED_CACHE: opened_cache}, environ={})
    sealed = (explicit.session_mode if mode else chosen.session_mode) == "sealed"
    cache = explicit.sealed_cache if opened_cache is not None else chosen.sealed_cache
    url = given.get("store_url") or chosen.store_url
    policy, cookie = given.get("policy"), given.get("cookie")
    sealed_keys, token_key = given.get("sealed_keys"), given.get("token_key")
    return Plan(
        sealed=sealed,
        store_url=url if url or sealed else DEFAULT_URL,
        policy=policy if policy is not None else chosen.policy,
        cookie=cookie if cookie is not None else cookie_settings(chosen),
        sealed_keys=sealed_keys if sealed_keys is not None else chosen.sealed_keys or None,
        opened_cache=OPENED_CACHE_SIZE if cache is None else cache,
        token_key=token_key if token_key is not None else chosen.token_key,
        log_key=chosen.log_key,
    )
