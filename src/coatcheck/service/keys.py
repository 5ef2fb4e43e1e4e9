"""Service keys: what other services present (``Authorization: Bearer cck_...``) to call the
service's JSON API.

A key is ``cck_`` + 43 URL-safe base64 characters (32 random bytes). The store keeps only
its SHA-256 under ``servicekey:<hex digest>`` with the key's id (16 hex digits), name, scope
(``introspect`` or ``admin``), creation and revocation times; ``servicekey-name:<name>``
holds the id of the live key with that name, so names are unique among live keys. A
revoked key stays listed (with ``revoked_at``) and never authenticates again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from ..core.errors import CoatcheckError
from .data.base import ServiceData

KEY_PREFIX: Final = "cck_"
SCOPES: Final = ("introspect", "admin")
Scope = Literal["introspect", "admin"]
RECORD_PREFIX: Final = "servicekey:"
NAME_PREFIX: Final = "servicekey-name:"
KEY_RE: Final = re.compile(r"cck_[A-Za-z0-9_-]{43}")
NAME_RE: Final = re.compile(r"[A-Za-z0-9_.@:-]{1,64}")


class ServiceKeyError(CoatcheckError, ValueError):
    """A service key name or scope that cannot be used; the message says why."""


class ServiceKeyExists(ServiceKeyError):
    """A live key already has this name (revoke it first, or pick another name)."""


@dataclass(frozen=True, slots=True)
class ServiceKeyInfo:
    """A service key as listings show it (never the key)."""

    id: str
    name: str
    scope: Scope
    created_at: float
    revoked_at: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def looks_like_service_key(value: object) -> bool:
    """Prefix, length and alphabet: garbage is refused without a store call."""
    return isinstance(value, str) and KEY_RE.fullmatch(value) is not None


def check_scope(scope: object) -> Scope:
    if scope == "introspect" or scope == "admin":
        return scope
    raise ServiceKeyError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r:.40}")


def check_key_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ServiceKeyError(
            f"{name!r:.80} is not a valid service key name: use 1 to 64 characters, letters, "
            "digits and _ . @ : -"
        )
    return name


class ServiceKeys:
    """Create, check, list and revoke service keys."""

    def __init__(self, data: ServiceData) -> None:
        self.data = data

    async def create(
        self, name: str, scope: str = "introspect", *, now: float | None = None
    ) -> tuple[str, ServiceKeyInfo]:
        """The new key (shown once: only its digest is stored) and its info."""
        check_key_name(name)
        info = ServiceKeyInfo(
            secrets.token_hex(8), name, check_scope(scope), time.time() if now is None else now
        )
        if not await self.data.put(NAME_PREFIX + name, info.id, only_if_absent=True):
            raise ServiceKeyExists(
                f"a service key named {name!r} exists; revoke it first or choose another name"
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = digest_of(key)
        await self.data.put(RECORD_PREFIX + digest, _encode(info, digest))
        return key, info

    async def authenticate(self, key: object) -> ServiceKeyInfo | None:
        """The live key's info, or None (malformed, unknown or revoked)."""
        if not isinstance(key, str) or not looks_like_service_key(key):
            return None
        digest = digest_of(key)
        raw = await self.data.get(RECORD_PREFIX + digest)
        if raw is None:
            return None
        info, stored = _decode(raw)
        if not hmac.compare_digest(stored, digest) or info.revoked_at is not None:
            return None
        return info

    async def _records(self) -> list[tuple[str, ServiceKeyInfo, str]]:
        found = []
        for key, raw in await self.data.scan(RECORD_PREFIX):
            info, digest = _decode(raw)
            found.append((key, info, digest))
        return found

    async def list(self) -> list[ServiceKeyInfo]:
        """Every key, live and revoked, oldest first."""
        infos = [info for _, info, _ in await self._records()]
        return sorted(infos, key=lambda info: (info.created_at, info.id))

    async def revoke(self, name_or_id: str, *, now: float | None = None) -> bool:
        """Revoke the live key with this id or name; False if there is none."""
        if not isinstance(name_or_id, str):
            return False
        at = time.time() if now is None else now
        for key, info, digest in await self._records():
            if info.revoked_at is None and name_or_id in (info.id, info.name):
                revoked = ServiceKeyInfo(info.id, info.name, info.scope, info.created_at, at)
                await self.data.put(key, _encode(revoked, digest))
                if await self.data.get(NAME_PREFIX + info.name) == info.id:
                    await self.data.delete(NAME_PREFIX + info.name)
                return True
        return False


def _encode(info: ServiceKeyInfo, digest: str) -> str:
    return json.dumps({**info.summary(), "digest": digest})


def _decode(raw: str) -> tuple[ServiceKeyInfo, str]:
    fields = json.loads(raw)
    revoked = fields.get("revoked_at")
    info = ServiceKeyInfo(
        str(fields["id"]),
        str(fields["name"]),
        check_scope(fields["scope"]),
        float(fields["created_at"]),
        None if revoked is None else float(revoked),
    )
    return info, str(fields["digest"])
