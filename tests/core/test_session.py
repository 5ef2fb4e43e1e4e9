"""Session.get: the same answers as the mapping's own lookups, in every state of a key."""

from __future__ import annotations

from coatcheck.core.records import SessionRecord
from coatcheck.core.session import Session
from coatcheck.core.tokens import TokenCodec, new_token_key


def _stored(data: dict[str, object]) -> Session:
    _, key = TokenCodec(new_token_key()).new_token()
    record = SessionRecord(key, None, "browser", 1.0, 1.0, None, 100.0, data=dict(data))
    return Session(record)


def test_get_agrees_with_getitem_and_in_for_every_kind_of_key() -> None:
    session = _stored({"kept": 1, "replaced": 2, "removed": 3})
    session["replaced"] = [4]
    session["added"] = {"x": 5}
    del session["removed"]
    for key in ("kept", "replaced", "added", "removed", "never"):
        expected = session[key] if key in session else "default"  # noqa: SIM401 (the oracle)
        assert session.get(key, "default") == expected
    assert session.get("never") is None


def test_get_on_a_new_session_sees_only_what_this_request_set() -> None:
    session = Session(None)
    assert session.get("a") is None
    session["a"] = "b"
    assert session.get("a") == "b"
