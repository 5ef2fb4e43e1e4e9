"""A sealed record as the JSON text inside the encryption, and back.

The plaintext is JSON, never pickle, and is not compressed: compressing attacker-influenced
data next to secrets (the CSRF token) before encryption leaks those secrets through the
cookie's length (CRIME/BREACH).
"""

from __future__ import annotations

import json
import re
from math import isfinite
from typing import Any, Final

from ..core.policy import Policy
from ..core.records import KINDS, encode_json, json_reader
from .b64 import ALPHABET
from .record import SealedRecord

# A session id: SID_BYTES (16) bytes are 22 characters, the last carrying 4 unused bits.
_SID_TEXT = re.compile("[A-Za-z0-9_-]{21}[" + ALPHABET[::16] + "]")


def payload_text(record: SealedRecord, data: str) -> str:
    """The record as a JSON object with short field names (every byte counts); ``data`` is
    its data as JSON text::

        {"id":sid,"k":kind,"c":created,"i":issued,"s":seen,"d":data[,"u":..,"a":..,"ip":..,"ua":..,
         "r":1]}

    (``"r":1``: logged in with "remember me"; absent otherwise.)

    Assembled here rather than from a dict: the encoder would format the same time up to
    three times (issued and, in a new session, last seen usually equal created), and turning a
    float into text is the dearest part of the encoding. Each piece is what the JSON encoder
    writes for it, but for times (see ``_json_time``); a test compares the two documents.
    """
    created = _json_time(record.created_at)
    issued = record.issued_at
    seen = record.last_seen_at
    parts = [
        '{"id":"',
        record.sid_text,  # base64url: nothing to escape
        '","k":',
        _KIND_TEXT.get(record.kind) or encode_json(record.kind),
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
        parts += (',"u":', encode_json(record.user_id))
    if record.authenticated_at is not None:
        parts += (',"a":', _json_time(record.authenticated_at))
    if record.client_ip is not None:
        parts += (',"ip":', encode_json(record.client_ip))
    if record.user_agent is not None:
        parts += (',"ua":', encode_json(record.user_agent))
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
    return encode_json(value)  # ints; NaN and junk raise


_KIND_TEXT: Final = {kind: encode_json(kind) for kind in KINDS}


def record_from_payload(doc: Any, policy: Policy) -> SealedRecord:
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
decode_payload: Final = json_reader(json.JSONDecoder(parse_constant=_no_constant))
"""A payload's (or a cached data's) JSON text as Python objects; NaN and Infinity refused."""
