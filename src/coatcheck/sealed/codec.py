"""The sealed cookie format: a session record as JSON, encrypted and authenticated with
AES-256-GCM under a key ring. Pure: no store, no HTTP, no clock.

A sealed value is ``cs1.`` followed by unpadded URL-safe base64 of::

    key id (4 bytes) || nonce (12 random bytes) || AES-GCM ciphertext and tag (16 bytes)

* The key id is ``SHA-256("coatcheck-sealed-key-id\\0" + key)[:4]``: decryption goes straight
  to the right key instead of trying each one, and it reveals nothing about the key.
* The associated data is ``"cs1\\0" + cookie name``: a value cut from one cookie and pasted
  into another (another app on the same domain, a cookie of another name) fails to open, and
  so does a value relabelled with another format version.
* The plaintext is JSON, never pickle, and is not compressed: compressing attacker-influenced
  data next to secrets (the CSRF token) before encryption leaks those secrets through the
  cookie's length (CRIME/BREACH).

Anything that is not a value this key ring sealed for this cookie name -- junk, truncation, a
flipped bit, a dropped key, the wrong name -- opens as ``None``; nothing here raises on input.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring
from math import isfinite
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..cookies import MAX_COOKIE_BYTES
from ..core.errors import ConfigError
from ..core.policy import Policy
from ..core.records import KINDS, Kind, SessionRecord, encode_data, json_reader
from ..core.tokens import SessionKey, sha256, unkeyed_user_shard

VERSION = "cs1"
PREFIX = VERSION + "."
KEYS_ENV = "COATCHECK_SEALED_KEYS"
KEY_BYTES = 32
KEY_ID_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 16
SID_BYTES = 16
OPENED_CACHE_SIZE = 1024  # cookie values whose sessions a manager keeps (OpenedValues)
USER_AGENT_CHARS = 200  # enough to tell devices apart; full strings would eat the 4 KB budget
MAKE_KEY_HINT = (
    'make one with: python -c "import base64, secrets; '
    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b'=').decode())\""
)

_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_NONCE_END = KEY_ID_BYTES + NONCE_BYTES
_MIN_RAW = _NONCE_END + TAG_BYTES
_MIN_TEXT = len(PREFIX) + -(-_MIN_RAW * 4 // 3)  # the prefix, then _MIN_RAW bytes in base64
_SEALED_TEXT = re.compile(re.escape(PREFIX) + "[A-Za-z0-9_-]+")

_PADDING = ("", "", "==", "=")  # by len(text) % 4; 1 is never valid
# The last character of a text whose length is 2 or 3 (mod 4) carries 4 or 2 unused low bits,
# which a canonical encoding leaves at zero: the characters that may end such a text.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset(),
    frozenset(_ALPHABET[::16]),
    frozenset(_ALPHABET[::4]),
)
# A session id: SID_BYTES (16) bytes are 22 characters, the last carrying 4 unused bits.
_SID_TEXT = re.compile("[A-Za-z0-9_-]{21}[" + _ALPHABET[::16] + "]")


def generate_key() -> str:
    """A new random 256-bit key as unpadded URL-safe base64 (what the key ring accepts)."""
    return _b64encode(secrets.token_bytes(KEY_BYTES))


def key_id(key: bytes) -> bytes:
    """The short, public name of a key inside sealed values."""
    return hashlib.sha256(b"coatcheck-sealed-key-id\0" + key).digest()[:KEY_ID_BYTES]


def parse_key(key: str | bytes, position: int = 1) -> bytes:
    """32 raw bytes from a base64url string (padded or not) or from raw bytes.

    Error messages name the key's position in the ring, never its content.
    """
    if isinstance(key, bytes | bytearray):
        raw = bytes(key)
    elif isinstance(key, str):
        text = key.strip()
        if not _KEY_TEXT.fullmatch(text):
            raise ConfigError(
                f"sealed cookie key #{position} is not 32 bytes of URL-safe base64 "
                f"({len(text)} characters, expected 43); {MAKE_KEY_HINT}"
            )
        try:
            raw = _b64decode(text.rstrip("="))
        except ValueError:
            raise ConfigError(
                f"sealed cookie key #{position} is not canonical base64url; {MAKE_KEY_HINT}"
            ) from None
    else:
        raise ConfigError(
            f"sealed cookie key #{position} must be str or bytes, got {type(key).__name__}"
        )
    if len(raw) != KEY_BYTES:
        raise ConfigError(
            f"sealed cookie key #{position} is {len(raw)} bytes; AES-256 needs exactly "
            f"{KEY_BYTES} random bytes; {MAKE_KEY_HINT}"
        )
    return raw


class KeyRing:
    """The keys sealed cookies are encrypted with: the first encrypts, every one decrypts.

    Rotation: put a new key first and keep the old ones behind it until every cookie they
    sealed has passed its absolute lifetime, then drop them.
    """

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        raws = [parse_key(k, i) for i, k in enumerate(keys, 1)]
        if not raws:
            raise ConfigError(f"a sealed cookie key ring needs at least one key; {MAKE_KEY_HINT}")
        self._by_id: dict[bytes, AESGCM] = {}
        for position, raw in enumerate(raws, 1):
            kid = key_id(raw)
            if kid in self._by_id:
                raise ConfigError(
                    f"sealed cookie key #{position} is listed twice (or shares its key id "
                    "with another key); remove the duplicate"
                )
            self._by_id[kid] = AESGCM(raw)
        self._primary_id = key_id(raws[0])
        self._primary = self._by_id[self._primary_id]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The ring in ``COATCHECK_SEALED_KEYS``: comma-separated keys, the encrypting one first."""
        value = (os.environ if environ is None else environ).get(KEYS_ENV, "")
        if not value.strip():
            raise ConfigError(
                f"sealed cookie mode needs keys: set {KEYS_ENV} to one or more "
                f"comma-separated keys (the encrypting one first); {MAKE_KEY_HINT}"
            )
        return cls.of(value)

    @classmethod
    def of(cls, keys: KeyRing | str | bytes | Iterable[str | bytes] | None) -> KeyRing:
        """A ring from what configuration holds: a ring, a comma-separated string, one raw
        key, a list of keys, or None for ``COATCHECK_SEALED_KEYS``."""
        if isinstance(keys, KeyRing):
            return keys
        if keys is None:
            return cls.from_env()
        if isinstance(keys, str):
            return cls(k for k in (part.strip() for part in keys.split(",")) if k)
        if isinstance(keys, bytes | bytearray):
            return cls([bytes(keys)])
        return cls(keys)

    @property
    def primary_id(self) -> str:
        """Hex id of the encrypting key (safe to log: it says which key, not what key)."""
        return self._primary_id.hex()

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"<KeyRing {len(self)} key(s), encrypting with {self.primary_id}>"

    def encrypt(self, plaintext: bytes, name: str) -> str:
        """Seal ``plaintext`` for the cookie called ``name`` under the first key."""
        nonce = os.urandom(NONCE_BYTES)  # what secrets.token_bytes returns, minus a call
        sealed = self._primary.encrypt(nonce, plaintext, _associated(name))
        return PREFIX + _b64encode(self._primary_id + nonce + sealed)

    def decrypt(self, value: object, name: str) -> bytes | None:
        """The plaintext of a value this ring sealed for ``name``, else None (never raises)."""
        if not isinstance(value, str) or len(value) > MAX_COOKIE_BYTES:
            return None
        if not value.startswith(PREFIX):
            return None
        try:
            raw = _b64decode(value[len(PREFIX) :])
        except ValueError:
            return None
        if len(raw) < _MIN_RAW:
            return None
        aead = self._by_id.get(raw[:KEY_ID_BYTES])
        if aead is None:
            return None
        nonce, sealed = raw[KEY_ID_BYTES:_NONCE_END], raw[_NONCE_END:]
        try:
            return aead.decrypt(nonce, sealed, _associated(name))
        except InvalidTag:
            return None


def is_well_formed(value: object) -> bool:
    """True for a value shaped like a sealed cookie: prefix, base64url alphabet, long enough
    for a key id, nonce and tag, short enough for a cookie. Decrypts nothing: the web layer
    uses it to drop junk among several cookies of one name before choosing which to open."""
    return (
        isinstance(value, str)
        and _MIN_TEXT <= len(value) <= MAX_COOKIE_BYTES
        and _SEALED_TEXT.fullmatch(value) is not None
    )


# --- the payload -------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True, init=False)
class _SealedFields(SessionRecord):
    """The fields of :class:`SealedRecord` (a dataclass drops a property named like a field, so
    its ``key`` property lives in the subclass)."""

    # Derived, never passed in (so ``dataclasses.replace`` cannot make it disagree with the
    # session id); compared through sid_text and user_id.
    key: SessionKey = field(init=False, compare=False)
    sid_text: str
    issued_at: float


# The slot SessionRecord declares for ``key``: SealedRecord.key fills it on first read.
_KEY_SLOT: Final[Any] = SessionRecord.__dict__["key"]


class SealedRecord(_SealedFields):
    """A session record that lives in a cookie.

    sid_text: the session id, 16 random bytes as canonical unpadded base64url (22
        characters), as the cookie carries it; names this session in logs and per-session
        revocation. ``sid`` gives the bytes.
    issued_at: when this chain of cookies began (creation, login, re-authentication, or the
        re-issue after "log out other sessions"); kept across touches and plain rotation, and
        compared with a user's "not before" stamp. Unlike ``created_at`` it never extends the
        absolute lifetime.
    key: derived from the session id and user (see :func:`sealed_key`) so everything that
        expects a store key keeps working; computed on first use, as most requests never
        read it.
    """

    __slots__ = ()

    def __init__(
        self,
        user_id: str | None,
        kind: Kind,
        created_at: float,
        last_seen_at: float,
        authenticated_at: float | None,
        expires_at: float,
        data: dict[str, Any],
        sid_text: str,
        issued_at: float,
        client_ip: str | None = None,
        user_agent: str | None = None,
        version: int = 1,
        remember: bool = False,
    ) -> None:
        """Written out so that the per-request constructions can pass arguments by position:
        the generated keyword-only ``__init__`` costs twice as much to call."""
        self.user_id = user_id
        self.kind = kind
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        self.authenticated_at = authenticated_at
        self.expires_at = expires_at
        self.data = data
        self.sid_text = sid_text
        self.issued_at = issued_at
        self.client_ip = client_ip
        self.user_agent = user_agent
        self.version = version
        self.remember = remember

    @property
    def key(self) -> SessionKey:  # type: ignore[override]  # read-only: derived from the id
        """Derived when first read: hashing the session id would cost more than the rest of a
        read that never logs or revokes with it."""
        try:
            key: SessionKey = _KEY_SLOT.__get__(self)
        except AttributeError:
            key = sealed_key(self.sid, self.user_id)
            _KEY_SLOT.__set__(self, key)
        return key

    @property
    def sid(self) -> bytes:
        """The session id's 16 bytes."""
        return _b64decode(self.sid_text)

    def written(self, data: dict[str, Any], now: float, expires_at: float) -> SealedRecord:
        """This session after one more write (a plain constructor call: ``dataclasses.replace``
        costs several microseconds on this per-request path)."""
        return SealedRecord(
            self.user_id,
            self.kind,
            self.created_at,
            now,
            self.authenticated_at,
            expires_at,
            data,
            self.sid_text,
            self.issued_at,
            self.client_ip,
            self.user_agent,
            self.version + 1,
            self.remember,
        )


def new_sid() -> str:
    """A new session id as its text (``token_urlsafe`` is canonical unpadded base64url)."""
    return secrets.token_urlsafe(SID_BYTES)


def sealed_key(sid: bytes, user_id: str | None) -> SessionKey:
    """The store-shaped key of a sealed session (nothing is stored under it, and it never
    leaves the server: the cookie is encrypted, so its shard need not be keyed)."""
    shard = unkeyed_user_shard(user_id) if user_id is not None else sid[:4]
    return SessionKey(shard, sha256(b"coatcheck-sealed-session\0" + sid))


def seal(ring: KeyRing, record: SealedRecord, name: str, opened: OpenedValues | None = None) -> str:
    """The cookie value carrying ``record`` (remembered in ``opened``: the browser's next
    request presents it)."""
    data = encode_data(record.data)
    value = ring.encrypt(_payload(record, data).encode(), name)
    if opened is not None:
        opened.put(value, name, record, data)
    return value


def _payload(record: SealedRecord, data: str) -> str:
    """The record as a JSON object with short field names (every byte counts)::

        {"id":sid,"k":kind,"c":created,"i":issued,"s":seen,"d":data[,"u":..,"a":..,"ip":..,"ua":..,
         "r":1]}

    (``"r":1``: logged in with "remember me"; absent otherwise.)

    Assembled here rather than from a dict: the encoder would format the same time up to
    three times (issued and, in a new session, last seen usually equal created), and turning a
    float into text is the dearest part of the encoding. Each piece is what ``encode_data``
    writes for it, but for times (see ``_json_time``); a test compares the two documents.
    """
    created = _json_time(record.created_at)
    issued = record.issued_at
    seen = record.last_seen_at
    parts = [
        '{"id":"',
        record.sid_text,  # base64url: nothing to escape
        '","k":',
        _KIND_TEXT.get(record.kind) or _json_text(record.kind),
        ',"c":',
        created,
        ',"i":',
        created if _same_time(issued, record.created_at) else _json_time(issued),
        ',"s":',
        created if _same_time(seen, record.created_at) else _json_time(seen),
        ',"d":',
        data,
    ]
    if record.user_id is not None:
        parts += (',"u":', _json_text(record.user_id))
    if record.authenticated_at is not None:
        parts += (',"a":', _json_time(record.authenticated_at))
    if record.client_ip is not None:
        parts += (',"ip":', _json_text(record.client_ip))
    if record.user_agent is not None:
        parts += (',"ua":', _json_text(record.user_agent))
    if record.remember:
        parts.append(',"r":1')
    parts.append("}")
    return "".join(parts)


def _same_time(a: object, b: object) -> bool:
    """Whether two times have the same JSON text: equal non-zero floats (0.0 and -0.0 are
    equal but print differently)."""
    return type(a) is float and type(b) is float and a == b and a != 0.0


def _json_time(value: object) -> str:
    """A finite float as 17 significant digits, which always read back as the same float:
    exact like the shortest text the JSON encoder writes (``repr``), for two thirds the cost."""
    if type(value) is float and isfinite(value):
        return "%.17g" % value  # noqa: UP031  # the %-operator is the cheapest formatting call
    return encode_data(value)  # type: ignore[arg-type]  # ints; NaN and junk raise


def _json_text(value: object) -> str:
    if type(value) is str:
        return encode_basestring(value)  # what the JSON encoder (ensure_ascii=False) writes
    return encode_data(value)  # type: ignore[arg-type]  # raises for what is not JSON


_KIND_TEXT: Final = {kind: _json_text(kind) for kind in KINDS}


# SealedRecord's positional arguments around expires_at and data (see OpenedValues).
_Head = tuple[str | None, Kind, float, float, float | None]
_Tail = tuple[str, float, str | None, str | None]


class OpenedValues:
    """The sessions of the cookie values this process sealed or opened most recently.

    A browser sends the same cookie until it gets a new one, and a sealed cookie is re-issued
    only by a write (or a touch past the touch interval), so most requests present a value
    this process has already opened. A hit skips base64, AES-GCM and the validation of the
    payload's fields, and is exact: the value must be byte-identical to one that this key ring
    sealed, or opened and validated, for this cookie name. Each hit still decodes the data
    from its JSON text (every request gets its own copy to change), and timeouts and
    revocation stamps are checked as always.

    At most ``size`` values are kept, the oldest put in dropped first (each takes its value's
    length and about as much again for its fields and data; at most about 8 KB, typically
    under 1 KB). ``size=0`` keeps none. Safe to share between threads: a race costs at most
    one extra entry.
    """

    __slots__ = ("_opened", "size")

    def __init__(self, size: int = OPENED_CACHE_SIZE) -> None:
        if type(size) is not int or size < 0:
            raise ConfigError(f"the opened-values cache size must be an int >= 0, got {size!r}")
        self.size = size
        # value -> (cookie name, the constructor's arguments before expires_at, the data as
        # JSON text, the arguments after data, the remember flag); expires_at follows from the
        # policy
        self._opened: dict[str, tuple[str, _Head, str, _Tail, bool]] = {}

    def __len__(self) -> int:
        return len(self._opened)

    def get(self, value: str, name: str, policy: Policy) -> SealedRecord | None:
        """A fresh record for ``value`` if it was sealed or opened for ``name`` lately."""
        hit = self._opened.get(value)
        if hit is None or hit[0] != name:
            return None
        _, head, data, tail, remember = hit  # head: user, kind, created, seen, authenticated
        expires_at = policy.expires_at(head[2], head[3], remember)
        return SealedRecord(*head, expires_at, _decode_payload(data), *tail, 1, remember)

    def put(self, value: str, name: str, record: SealedRecord, data: str) -> None:
        """Remember ``record`` (its fields are copied; ``data`` is its data as JSON text)."""
        opened = self._opened
        if len(opened) >= self.size:
            if not self.size:
                return
            # First in, first out (dicts keep insertion order); another thread may get there
            # first.
            with suppress(KeyError, RuntimeError, StopIteration):
                del opened[next(iter(opened))]
        r = record
        head = (r.user_id, r.kind, r.created_at, r.last_seen_at, r.authenticated_at)
        tail = (r.sid_text, r.issued_at, r.client_ip, r.user_agent)
        opened[value] = (name, head, data, tail, r.remember)


def unseal(
    ring: KeyRing,
    value: object,
    name: str,
    policy: Policy,
    opened: OpenedValues | None = None,
) -> SealedRecord | None:
    """The record a cookie value carries, or None for anything this ring did not seal
    (``opened``: sessions this ring gave out or opened lately, to skip decrypting)."""
    if opened is not None and type(value) is str:
        record = opened.get(value, name, policy)
        if record is not None:
            return record
    plaintext = ring.decrypt(value, name)
    if plaintext is None:
        return None
    try:
        record = _record(_decode_payload(plaintext.decode()), policy)
    # UnicodeDecodeError is a ValueError; OverflowError: an integer time too large for a float
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        return None
    if opened is not None:  # before the request can change the data
        opened.put(value, name, record, encode_data(record.data))  # type: ignore[arg-type]
    return record


def _record(doc: Any, policy: Policy) -> SealedRecord:
    """Validate every field's type: a payload is data, never trusted to have our shape.

    Written out field by field (no helper per field): this runs on every request.
    """
    if not isinstance(doc, dict):
        raise TypeError("payload is not an object")
    sid_text = doc["id"]
    if type(sid_text) is not str or not _SID_TEXT.fullmatch(sid_text):
        raise ValueError("bad session id")
    kind = doc["k"]
    if kind not in KINDS:
        raise ValueError("bad kind")
    data = doc["d"]
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    user_id = doc.get("u")
    if user_id is not None and not isinstance(user_id, str):
        raise TypeError("user id is not a string")
    client_ip = doc.get("ip")
    if client_ip is not None and not isinstance(client_ip, str):
        raise TypeError("client IP is not a string")
    user_agent = doc.get("ua")
    if user_agent is not None and not isinstance(user_agent, str):
        raise TypeError("user agent is not a string")
    created, seen, issued = doc["c"], doc["s"], doc["i"]
    if not (
        type(created) is float
        and type(seen) is float
        and type(issued) is float
        and isfinite(created + seen + issued)
    ):  # integers, or something to refuse: checked one by one (a finite sum may overflow)
        created, seen, issued = _time(created), _time(seen), _time(issued)
    authenticated = doc.get("a")
    remember = doc.get("r")
    if remember is not None and (type(remember) is not int or remember != 1):
        raise ValueError("bad remember flag")
    remembered = remember is not None
    return SealedRecord(
        user_id,
        kind,
        created,
        seen,
        None if authenticated is None else _time(authenticated),
        policy.expires_at(created, seen, remembered),
        data,
        sid_text,
        issued,
        client_ip,
        user_agent,
        1,
        remembered,
    )


def _time(value: object) -> float:
    """A finite number of seconds (JSON gives exact ``float`` and ``int``; never ``bool``)."""
    if type(value) is not float:
        if type(value) is not int:
            raise TypeError("time is not a number")
        value = float(value)  # OverflowError when too large
    if not isfinite(value):
        raise ValueError("time is not finite")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Made once: json.loads with any keyword argument builds a new decoder on every call.
_decode_payload: Final = json_reader(json.JSONDecoder(parse_constant=_no_constant))


@lru_cache(maxsize=16)  # the cookie names in use: usually one
def _associated(name: str) -> bytes:
    return VERSION.encode() + b"\0" + name.encode()


def _b64encode(raw: bytes) -> str:
    """Unpadded URL-safe base64 (binascii directly: the base64 module adds two calls; two
    replaces, which skip ahead to each rare "+" or "/", cost half a translate)."""
    return (
        binascii.b2a_base64(raw)  # newline=False would cost more to parse than the rstrip
        .replace(b"+", b"-")
        .replace(b"/", b"_")
        .rstrip(b"=\n")
        .decode("ascii")
    )


def _b64decode(text: str) -> bytes:
    """Canonical unpadded URL-safe base64 (one text per byte string); ValueError otherwise.

    binascii's strict mode refuses any character outside the standard alphabet, so ``+``,
    ``/`` and ``=`` (not base64url; ``=`` would be padding) become ``!`` before ``-`` and
    ``_`` become theirs (each replace skips ahead to the rare character it changes: cheaper
    than a translate); the set lookup refuses stray bits in the last character.
    """
    tail = len(text) % 4
    if not text or tail == 1 or not text.isascii():
        raise ValueError("not URL-safe base64")
    standard = (
        text.replace("+", "!")
        .replace("/", "!")
        .replace("=", "!")
        .replace("-", "+")
        .replace("_", "/")
    )
    try:
        raw = binascii.a2b_base64(standard + _PADDING[tail], strict_mode=True)
    except binascii.Error:
        raise ValueError("not URL-safe base64") from None
    if tail and text[-1] not in _CANONICAL_LAST[tail]:
        raise ValueError("non-canonical base64 (stray bits in the last character)")
    return raw
