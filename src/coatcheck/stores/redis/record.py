"""A session as a Redis hash: one field per record attribute, one ``d:<name>`` per data key.

One field per data key is what makes a save a patch (``HSET``/``HDEL`` of just the changed
keys). Field names and values: docs/stores/redis.md ("Key layout").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

from ...core.records import Kind, SessionRecord, decode_value, encode_value
from ...core.tokens import SessionKey
from .keys import KeyLayout

Arg: TypeAlias = "str | int | float"

_KINDS: Final[dict[bytes, Kind]] = {b"browser": "browser", b"api": "api"}


def decode_reply(key: SessionKey, reply: Any, keys: KeyLayout, where: str) -> SessionRecord:
    """A session from an HGETALL reply: a flat field/value list (RESP2) or a mapping (RESP3).
    A hash of another shape is a ``ValueError`` naming the server and the key."""
    try:
        if isinstance(reply, dict):
            return decode(key, reply)
        it = iter(reply)
        return decode(key, dict(zip(it, it, strict=True)))
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{where}: {keys.session(key)} is not a coatcheck session "
            f"({type(exc).__name__}: {exc}); is another program using prefix {keys.prefix!r}?"
        ) from exc


FACT_FIELDS: Final = ("kind", "created", "seen", "exp", "v", "user", "auth", "ip", "ua", "rem")
"""The fields ``HMGET`` reads for ``load(data=False)``, in :func:`decode_facts`'s order."""


def decode_facts(
    key: SessionKey, values: Sequence[Any], keys: KeyLayout, where: str
) -> SessionRecord | None:
    """A session without its data from an ``HMGET`` of :data:`FACT_FIELDS`; None when none
    of them is there (no hash, or one of another program that shares none of the names). A
    hash that has some but not all the fields a session always has is a ``ValueError``, as
    in :func:`decode_reply`."""
    kind, created, seen, exp, v, user, auth, ip, ua, rem = values
    if kind is None or created is None or seen is None or exp is None or v is None:
        if not any(values):
            return None
        missing = [n for n, value in zip(FACT_FIELDS[:5], values, strict=False) if value is None]
        raise ValueError(
            f"{where}: {keys.session(key)} is not a coatcheck session (no field "
            f"{', '.join(missing)}); is another program using prefix {keys.prefix!r}?"
        )
    try:
        return SessionRecord(
            key,
            None if user is None else user.decode(),
            _KINDS[kind],
            float(created),
            float(seen),
            None if auth is None else float(auth),
            float(exp),
            None if ip is None else ip.decode(),
            None if ua is None else ua.decode(),
            {},
            int(v),
            rem is not None,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{where}: {keys.session(key)} is not a coatcheck session "
            f"({type(exc).__name__}: {exc}); is another program using prefix {keys.prefix!r}?"
        ) from exc


def decode(key: SessionKey, f: dict[bytes, bytes]) -> SessionRecord:
    """A session hash as a record. On the hot path of every request: kept to one pass."""
    data: dict[str, Any] = {}
    for name, raw in f.items():
        if name.startswith(b"d:"):
            data[name[2:].decode()] = decode_value(raw.decode())
    user = f.get(b"user")
    auth = f.get(b"auth")
    ip = f.get(b"ip")
    ua = f.get(b"ua")
    return SessionRecord(
        key,
        None if user is None else user.decode(),
        _KINDS[f[b"kind"]],
        float(f[b"created"]),
        float(f[b"seen"]),
        None if auth is None else float(auth),
        float(f[b"exp"]),
        None if ip is None else ip.decode(),
        None if ua is None else ua.decode(),
        data,
        int(f[b"v"]),
        b"rem" in f,
    )


def fields(record: SessionRecord, public_key: str) -> list[Arg]:
    """The field/value pairs of a new session hash."""
    out: list[Arg] = [
        "pk",
        public_key,
        "kind",
        record.kind,
        "created",
        record.created_at,
        "seen",
        record.last_seen_at,
        "exp",
        record.expires_at,
        "v",
        record.version,
    ]
    for name, value in (
        ("user", record.user_id),
        ("auth", record.authenticated_at),
        ("ip", record.client_ip),
        ("ua", record.user_agent),
    ):
        if value is not None:
            out += (name, value)
    if record.remember:
        out += ("rem", 1)
    for name, data in record.data.items():
        out += ("d:" + name, encode_value(name, data))
    return out
