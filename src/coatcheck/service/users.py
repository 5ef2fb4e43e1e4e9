"""Local users of the embedded mode: names and argon2id password hashes in the service data.

``coatcheck users add NAME`` and the login page use this. Hashing uses argon2-cffi's
``PasswordHasher`` with its defaults (RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB,
p=4); a hash made with older parameters is replaced at the next successful login. Unknown,
malformed and disabled names cost the same argon2 verification as a real one, so response
times do not tell which names exist. Hashing runs on a worker thread (argon2-cffi releases
the GIL), never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..core.errors import CoatcheckError
from .data.base import ServiceData

USER_PREFIX: Final = "user:"
NAME_RE: Final = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_PASSWORD_LENGTH: Final = 1024  # characters; argon2 itself has no limit worth having


class UserError(CoatcheckError, ValueError):
    """A user name or password that cannot be used; the message says why."""


class UserExists(UserError):
    """``add`` of a name that is taken."""


class UnknownUser(UserError):
    """A command names a user that does not exist."""


@dataclass(frozen=True, slots=True)
class LocalUser:
    """A local user as listings show it (never the hash)."""

    name: str
    created_at: float
    disabled: bool = False


def check_name(name: object) -> str:
    """``name`` if it is a valid user name, else UserError saying what is allowed."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(
            f"{name!r:.80} is not a valid user name: use 1 to 64 characters, letters, digits "
            "and _ . @ -"
        )
    return name


def check_new_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise UserError("the password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


class LocalUsers:
    """Users stored under ``user:<name>`` as JSON ``{name, hash, created_at, disabled}``."""

    def __init__(self, data: ServiceData, *, hasher: PasswordHasher | None = None) -> None:
        self.data = data
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    def _dummy(self) -> str:
        """A hash of no one's password, made with the hasher's own parameters so verifying
        against it costs what verifying a real user costs."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("coatcheck: no such user")
        return self._dummy_hash

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def add(self, name: str, password: str, *, now: float | None = None) -> LocalUser:
        """The new user; UserExists if the name is taken, UserError for a bad name/password."""
        check_name(name)
        hashed = await self._hash(check_new_password(password))
        user = LocalUser(name, time.time() if now is None else float(now))
        if not await self.data.put(USER_PREFIX + name, _encode(user, hashed), only_if_absent=True):
            raise UserExists(f"user {name!r} already exists")
        return user

    async def _load(self, name: str) -> tuple[LocalUser, str] | None:
        raw = await self.data.get(USER_PREFIX + name)
        return None if raw is None else _decode(raw)

    async def get(self, name: str) -> LocalUser | None:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            return None
        found = await self._load(name)
        return None if found is None else found[0]

    async def list(self) -> list[LocalUser]:
        """Every user, sorted by name."""
        users = [_decode(raw) for _, raw in await self.data.scan(USER_PREFIX)]
        return [user for user, _ in users]

    async def authenticate(self, name: object, password: object) -> LocalUser | None:
        """The user if the name and password match an enabled user, else None (same work)."""
        found = None
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            found = await self._load(name)
        hashed = found[1] if found is not None else await asyncio.to_thread(self._dummy)
        secret = password if isinstance(password, str) else ""
        if len(secret) > MAX_PASSWORD_LENGTH:
            secret = ""
        ok = await asyncio.to_thread(self._verify, hashed, secret)
        if found is None or not ok or not secret:
            return None
        user = found[0]
        if user.disabled:
            return None
        if self.hasher.check_needs_rehash(hashed):
            await self._rehash(user.name, secret)
        return user

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _rehash(self, name: str, password: str) -> None:
        """Store a hash with today's parameters (unless the user changed meanwhile)."""
        found = await self._load(name)
        if found is not None and not found[0].disabled:
            await self.data.put(USER_PREFIX + name, _encode(found[0], await self._hash(password)))

    async def check_password(self, name: object, password: object) -> bool:
        """True if the password is right for this enabled user (e.g. before a sensitive step)."""
        return await self.authenticate(name, password) is not None

    async def set_password(self, name: str, password: str) -> None:
        """Replace the password; UnknownUser if there is no such user."""
        check_name(name)
        hashed = await self._hash(check_new_password(password))
        found = await self._load(name)
        if found is None:
            raise UnknownUser(f"no user named {name!r}")
        await self.data.put(USER_PREFIX + name, _encode(found[0], hashed))

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        """False if there is no such user."""
        check_name(name)
        found = await self._load(name)
        if found is None:
            return False
        user, hashed = found
        changed = LocalUser(user.name, user.created_at, bool(disabled))
        await self.data.put(USER_PREFIX + name, _encode(changed, hashed))
        return True

    async def delete(self, name: str) -> bool:
        """False if there is no such user."""
        return await self.data.delete(USER_PREFIX + check_name(name))


def _encode(user: LocalUser, hashed: str) -> str:
    return json.dumps(
        {
            "name": user.name,
            "hash": hashed,
            "created_at": user.created_at,
            "disabled": user.disabled,
        }
    )


def _decode(raw: str) -> tuple[LocalUser, str]:
    fields = json.loads(raw)
    user = LocalUser(str(fields["name"]), float(fields["created_at"]), bool(fields["disabled"]))
    return user, str(fields["hash"])
