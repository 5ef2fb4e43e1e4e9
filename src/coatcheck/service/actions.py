"""The one place the service ends sessions and API tokens on purpose. The API, the pages and the
CLI all call these, so every ended session or token publishes exactly one revocation event
(its public id, and the first 16 hex digits of its store digest when that is known), which
clients holding a cache act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..apitokens import is_api_token, looks_like_api_token
from ..core.records import RevokeReason, parse_public_id, public_id
from ..core.tokens import SessionKey, digests_equal, is_well_formed, sha256
from .events import RevocationEvents

if TYPE_CHECKING:
    from .context import ServiceContext

DIGEST_PREFIX_CHARS = 16


def digest_prefix(digest: bytes) -> str:
    """What an event shows of a store digest: its first 16 hex digits (a cache keyed by token
    digest can match it; nothing can be done with it)."""
    return digest.hex()[:DIGEST_PREFIX_CHARS]


async def announce_ended(events: RevocationEvents, keys: Sequence[SessionKey]) -> None:
    """One event per ended session whose store key is known (revoked, evicted)."""
    for key in keys:
        await events.publish(public_id(key), digest_prefix(key.digest))


async def revoke_token_string(ctx: ServiceContext, token: str, reason: str = "revoked") -> bool:
    """End the session or API token ``token`` names; False if it named none that was live
    (malformed, unknown, already ended)."""
    if looks_like_api_token(token):
        info = await ctx.tokens.revoke_token(token, reason=reason)
        if info is None:
            return False
        await ctx.events.publish(info.id, digest_prefix(sha256(token.encode("ascii"))))
        return True
    if not is_well_formed(token):
        return False
    key = (await ctx.sessions.token_codec()).parse(token)
    if not await ctx.sessions.revoke_key(key, reason=reason):
        return False
    await announce_ended(ctx.events, [key])
    return True


async def revoke_session_id(
    ctx: ServiceContext, session_id: str, *, user_id: str | None = None, reason: str = "revoked"
) -> bool:
    """End the session with this public id (with ``user_id``: only if it is that user's, as on
    a person's own sessions page); False if there was none. Never an API token (those end
    through :func:`revoke_api_token`), so an id from one listing cannot end the other kind.
    A malformed id raises :class:`~coatcheck.core.errors.InvalidSessionId`."""
    normalized = parse_public_id(session_id).hex()
    ended = await ctx.sessions.revoke_session(
        normalized, user_id=user_id, reason=reason, api_token=False
    )
    if not ended:
        return False
    await ctx.events.publish(normalized, None)
    return True


async def revoke_user_sessions(
    ctx: ServiceContext,
    user_id: str,
    *,
    keep_token: str | None = None,
    include_tokens: bool = False,
    reason: str = "revoked",
    by: RevokeReason = "revoked_by_admin",
) -> int:
    """End every live session of a user except the one ``keep_token`` names (a token that
    names none keeps none), and with ``include_tokens`` every API token too; how many ended.

    Session by session, so that each gets its event with its digest; a session created while
    this runs may outlive it. ``by`` is what the tombstones say (``revoked_by_user`` for a
    person's own "end all other sessions")."""
    keep = await _key_of(ctx, keep_token)
    ended = 0
    for record in await ctx.sessions.list_user(user_id):
        if is_api_token(record) or (keep is not None and digests_equal(keep, record.key.digest)):
            continue
        if await ctx.sessions.revoke_key(record.key, reason=reason, by=by):
            await announce_ended(ctx.events, [record.key])
            ended += 1
    if include_tokens:
        for info in await ctx.tokens.revoke_user(user_id):
            await ctx.events.publish(info.id, None)
            ended += 1
    return ended


async def end_user(ctx: ServiceContext, user_id: str, reason: str = "user ended") -> int:
    """Every session and API token of a user, at once (a disabled or deleted account): those
    found live, each with its event, then a sweep of whatever is left of the user in the store
    (sessions created meanwhile, records past their expiry). How many were ended."""
    ended = await revoke_user_sessions(ctx, user_id, include_tokens=True, reason=reason)
    return ended + await ctx.sessions.revoke_user(user_id, reason=reason)


async def revoke_api_token(
    ctx: ServiceContext, token_id: str, *, user_id: str | None = None
) -> bool:
    """Revoke the API token with this id (with ``user_id``: only if it is that user's); False if
    there was none. Never a session (see :meth:`AsyncApiTokens.revoke`). A malformed id raises
    :class:`~coatcheck.core.errors.InvalidSessionId`."""
    normalized = parse_public_id(token_id).hex()
    if not await ctx.tokens.revoke(normalized, user_id=user_id):
        return False
    await ctx.events.publish(normalized, None)
    return True


async def _key_of(ctx: ServiceContext, token: str | None) -> bytes | None:
    """The store digest of a session token, or None for anything else."""
    if token is None or not is_well_formed(token):
        return None
    return (await ctx.sessions.token_codec()).parse(token).digest
