"""Sessions validated through the session service, as the web layer sees them: the pure half
of the remote backend (``AsyncRemoteSessions`` / ``RemoteSessions`` do the calls).

A remote session knows who the user is and nothing of the session's data (the service does
not send it; only a CSRF token derived from the session token for this app's forms), so it is
read-only here: every write raises
:class:`~coatcheck.core.session.SessionReadOnly`, and
logging in happens on the service.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from ..core.errors import InvalidSessionId, StoreUnavailable
from ..core.policy import Verdict
from ..core.records import Kind, SessionRecord, cluster_slot, parse_public_id
from ..core.session import Session, SessionReadOnly, bearer_session
from ..core.tokens import SessionKey, sha256
from ..web import csrf
from .errors import ServiceError
from .models import Introspection

log = logging.getLogger("coatcheck.client")
_CSRF_LABEL = b"coatcheck-remote-csrf\0"


def read_only(what: str = "changed") -> SessionReadOnly:
    return SessionReadOnly(
        f"sessions validated through the session service are read-only here and cannot be "
        f"{what}; keep per-user state in this app, or change the session on the service"
    )


def login_elsewhere() -> SessionReadOnly:
    return SessionReadOnly(
        "logging in happens on the session service (its /login page, or POST /v1/sessions "
        "from the app that checked the password); this app validates sessions through the "
        "service and cannot create them"
    )


class RemoteSession(Session):
    """A :class:`Session` whose record came from an introspection. Reads work (the data is
    empty: the service does not send it); writes raise ``SessionReadOnly``."""

    def __init__(
        self,
        record: SessionRecord | None,
        presented: str | None = None,
        *,
        verdict: Verdict | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        super().__init__(record, verdict=verdict, client_ip=client_ip, user_agent=user_agent)
        self.presented = presented  # for logout; never in repr (Session's repr omits it)

    def __setitem__(self, key: str, value: Any) -> None:
        raise read_only("written")

    def __delitem__(self, key: str) -> None:
        raise read_only("written")


def remote_session(
    answer: Introspection, token: str, client_ip: str | None, user_agent: str | None
) -> RemoteSession:
    """The request's session from the service's answer about its cookie: the user's session
    if active and a session token (an API token is no cookie), else anonymous (``unknown``:
    the service does not say why a token is inactive)."""
    if not answer.is_session or answer.user_id is None:
        return anonymous(client_ip, user_agent, Verdict.UNKNOWN)
    created = answer.created_at or 0.0
    kind: Kind = "api" if answer.kind == "api" else "browser"
    record = SessionRecord(
        remote_key(token, answer.id),
        answer.user_id,
        kind,
        created,
        answer.last_seen_at or created,
        answer.authenticated_at,
        answer.expires_at or created,
        data={csrf.SESSION_KEY: remote_csrf_token(token)},
    )
    return RemoteSession(
        record, token, verdict=Verdict.VALID, client_ip=client_ip, user_agent=user_agent
    )


def remote_bearer(
    answer: Introspection, client_ip: str | None, user_agent: str | None
) -> Session | None:
    """The read-only session of a bearer API token the service says is active (a session
    token is no API token: None), built the web layer's one way."""
    if not answer.is_api_token or answer.user_id is None or answer.id is None:
        return None
    session = bearer_session(
        answer.user_id,
        scopes=answer.scopes or (),
        token_id=answer.id,
        created_at=answer.created_at or 0.0,
        expires_at=answer.expires_at,
    )
    session.client_ip, session.user_agent = client_ip, user_agent
    return session


def remote_csrf_token(token: str) -> str:
    """This app's CSRF synchronizer token for a remote session: derived from the session token
    (the service keeps its own in the session's data, which it does not send), so it is
    stable for the session's life, unguessable without the cookie, and needs no write."""
    digest = sha256(_CSRF_LABEL + token.encode("ascii"))
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def ip_address(value: str | None) -> str | None:
    """The request's client address if it is an IP address (what the service accepts),
    else None (a test client's placeholder name, a Unix socket)."""
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def anonymous(
    client_ip: str | None, user_agent: str | None, verdict: Verdict | None = None
) -> RemoteSession:
    return RemoteSession(None, verdict=verdict, client_ip=client_ip, user_agent=user_agent)


def remote_key(token: str, public_id: str | None) -> SessionKey:
    """The store key the service keeps the token under: its SHA-256, and a shard in the
    public id's cluster slot, so that ``record.public_id`` is the id the service lists (a
    "this device" marker, ``logout_session``). The shard itself is the service's secret."""
    try:
        slot = int.from_bytes(parse_public_id(public_id)[:2], "big")
    except InvalidSessionId:
        slot = 0
    return SessionKey(shard_for_slot(slot), sha256(token.encode("ascii")))


_SHARDS: dict[int, bytes] = {}
_CANDIDATES = itertools.count()


def shard_for_slot(slot: int) -> bytes:
    """Some 4-byte shard whose keys live in cluster ``slot``: shards are tried in order and
    every slot met is remembered, so all 16384 together cost about 170,000 CRC16s once per
    process, spread over the first requests."""
    found = _SHARDS.get(slot)
    while found is None:
        shard = next(_CANDIDATES).to_bytes(4, "big")
        _SHARDS.setdefault(cluster_slot(shard), shard)
        found = _SHARDS.get(slot)
    return found


@contextmanager
def service_errors(doing: str) -> Iterator[None]:
    """The service failing (down, or refusing our key) is the web layer's store outage: a
    503 for the request, logged here with what the service said (never a token)."""
    try:
        yield
    except ServiceError as exc:
        log.error("session service: %s failed: %s", doing, exc)
        raise StoreUnavailable(
            f"session service: {doing} failed ({exc.status} {exc.title})"
        ) from exc


def refuse_changes(session: Session) -> None:
    """``save``: nothing to write is fine; a change (set through the mapping of a plain
    Session) is refused."""
    if session.modified or session.token:
        raise read_only("saved")


def refuse(what: str) -> NoReturn:
    raise read_only(what)
