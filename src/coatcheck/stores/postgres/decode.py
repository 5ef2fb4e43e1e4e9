"""Rows -> records, and the text PostgreSQL refuses to store.

The load statement's row arrives in binary format (see ``sql.RECORD`` for the column order):
floats and integers exactly as stored, with no formatting and parsing on either side; ``data``
travels as text and goes through the JSON decoder once.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ...core.errors import SessionDataError
from ...core.records import SessionRecord, decode_value
from ...core.tokens import SessionKey

_FLOAT8 = struct.Struct(">d").unpack


class Result(Protocol):
    """What the store reads of a libpq result (``psycopg.pq.PGresult``)."""

    @property
    def status(self) -> int: ...

    @property
    def ntuples(self) -> int: ...

    @property
    def error_message(self) -> bytes: ...

    def get_value(self, row_number: int, column_number: int) -> bytes | None: ...

    def error_field(self, fieldcode: Any) -> bytes | None: ...


def decode_record(
    key: SessionKey, res: Result, encoding: str, row: int = 0, first: int = 0
) -> SessionRecord:
    """The record in row ``row`` of a load statement's result: binary columns in
    ``sql.RECORD`` order, from column ``first`` on (load_many's rows start with the id)."""
    value = res.get_value
    user_id = value(row, first)
    authenticated_at = value(row, first + 4)
    client_ip = value(row, first + 6)
    user_agent = value(row, first + 7)
    return SessionRecord(
        key,
        None if user_id is None else user_id.decode(encoding),
        value(row, first + 1).decode(encoding),  # type: ignore[union-attr, arg-type]
        _FLOAT8(value(row, first + 2))[0],  # type: ignore[arg-type]
        _FLOAT8(value(row, first + 3))[0],  # type: ignore[arg-type]
        None if authenticated_at is None else _FLOAT8(authenticated_at)[0],
        _FLOAT8(value(row, first + 5))[0],  # type: ignore[arg-type]
        None if client_ip is None else client_ip.decode(encoding),
        None if user_agent is None else user_agent.decode(encoding),
        decode_value(value(row, first + 8).decode(encoding)),  # type: ignore[union-attr]
        int.from_bytes(value(row, first + 9), "big", signed=True),  # type: ignore[arg-type]
        value(row, first + 10) == b"\x01",
    )


_ARRAY_HEAD = struct.Struct(">iiiii")
BYTEA_OID = 17  # the type of load's one parameter ...
BYTEA_ARRAY_OID = 1001  # ... and of load_many's


def bytea_array(values: Sequence[bytes]) -> bytes:
    """``values`` as a one-dimensional ``bytea[]`` in PostgreSQL's binary format (header:
    dimensions, has-nulls, element type, then length and lower bound of the dimension; each
    element as its length and bytes), for a statement sent straight through libpq."""
    parts = [_ARRAY_HEAD.pack(1, 0, BYTEA_OID, len(values), 1)]
    for value in values:
        parts += (len(value).to_bytes(4, "big"), value)
    return b"".join(parts)


def json_object(values: Mapping[str, str]) -> str:
    """A JSON object from values that are already JSON text: nothing is decoded again."""
    return "{" + ",".join([f"{json.dumps(k)}:{v}" for k, v in values.items()]) + "}"


_REFUSED = "PostgreSQL cannot store the character U+0000 (NUL) or unpaired surrogates"


def data_error(record: SessionRecord) -> SessionDataError | None:
    """The clear error for a record PostgreSQL refused because of its text, else None."""
    fields = [
        name
        for name, value in (
            ("user_id", record.user_id),
            ("client_ip", record.client_ip),
            ("user_agent", record.user_agent),
        )
        if _unstorable(value)
    ]
    keys = [k for k, v in record.data.items() if _unstorable(k) or _unstorable(v)]
    if not fields and not keys:
        return None
    what = ", ".join([*fields, *(f"session key {k!r}" for k in keys)])
    return SessionDataError(f"{_REFUSED}; found in {what}; nothing was written")


def patch_error(values: Mapping[str, str]) -> SessionDataError | None:
    """The clear error for a patch PostgreSQL refused because of its text, else None."""
    keys = [k for k, v in values.items() if _unstorable(k) or _unstorable(json.loads(v))]
    if not keys:
        return None
    names = ", ".join(repr(k) for k in keys)
    return SessionDataError(f"{_REFUSED}; found in session key(s) {names}; nothing was written")


def _unstorable(value: Any) -> bool:
    """True if ``value`` holds text PostgreSQL cannot store: NUL, or an unpaired surrogate."""
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def _bad_text(text: str) -> bool:
    if "\0" in text:
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, e.g. from json.loads('"\\ud800"')
        return True
    return False
