"""The JSON shapes of the API: strict requests (unknown fields and wrong types are refused, every
text is bounded) and the responses as documented in the OpenAPI document."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ...apitokens import MAX_SCOPES

MAX_USER_ID_CHARS = 256
MAX_TOKEN_CHARS = 1024  # longer than any token: anything up to this is answered, not refused
MAX_USER_AGENT_CHARS = 512
MAX_IP_CHARS = 45  # the longest text form of an IPv6 address
MAX_TOKEN_NAME_CHARS = 100
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600  # ten years, in seconds


def _ip_address(value: str) -> str:
    """The canonical text of an IPv4 or IPv6 address (what the web layer stores)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"  # what a URL path can carry, too
UserId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=NO_CONTROL_CHARACTERS),
]
TokenText = Annotated[StrictStr, Field(max_length=MAX_TOKEN_CHARS)]
ClientIp = Annotated[StrictStr, Field(max_length=MAX_IP_CHARS), AfterValidator(_ip_address)]
UserAgent = Annotated[StrictStr, Field(max_length=MAX_USER_AGENT_CHARS)]
Scope = Annotated[StrictStr, Field(pattern=r"^[a-z0-9:._-]{1,64}$")]
Timestamp = Annotated[float, Field(description="seconds since the Unix epoch")]


class RequestBody(BaseModel):
    """A request body: unknown fields and wrong types are 422 ``validation-error``.

    ``one_pass``: every field is a string or a boolean, so pydantic's JSON parser accepts
    exactly the bodies :func:`json.loads` does (it would also take ``NaN`` for a number, which
    the API refuses as invalid JSON): such a body is validated straight from its bytes."""

    model_config = ConfigDict(extra="forbid", strict=True)
    one_pass: ClassVar[bool] = False


class Reply(BaseModel):
    """A response body (documentation: the API writes plain JSON)."""

    model_config = ConfigDict(extra="forbid")


class CreateSession(RequestBody):
    user_id: UserId
    kind: Literal["browser", "api"] = "browser"
    client_ip: ClientIp | None = None
    user_agent: UserAgent | None = None
    data: dict[str, Any] | None = None
    remember: StrictBool = False


class Introspect(RequestBody):
    one_pass = True
    token: TokenText
    touch: StrictBool = False
    client_ip: ClientIp | None = Field(
        None, description="the end user's address, for a policy that binds sessions to it"
    )


class Refresh(RequestBody):
    one_pass = True
    token: TokenText
    client_ip: ClientIp | None = None


class Revoke(RequestBody):
    one_pass = True
    token: TokenText


class RevokeUserSessions(RequestBody):
    one_pass = True
    except_token: TokenText | None = None
    include_tokens: StrictBool = False


class CreateToken(RequestBody):
    user_id: UserId
    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_TOKEN_NAME_CHARS)]
    scopes: Annotated[list[Scope], Field(max_length=MAX_SCOPES)] = []
    expires_in: Annotated[StrictInt, Field(gt=0, le=MAX_EXPIRES_IN)] | None = None


class SessionCreated(Reply):
    token: str
    id: str
    user_id: str
    kind: Literal["browser", "api"]
    created_at: Timestamp
    expires_at: Timestamp
    absolute_expires_at: Timestamp


class Introspection(Reply):
    """``{"active": false}`` and nothing else for a token that is not live; every field for a
    live one (``scope`` and ``name`` for API tokens only)."""

    active: bool
    token_type: Literal["session", "api_token"] | None = None
    id: str | None = None
    sub: str | None = None
    user_id: str | None = None
    kind: Literal["browser", "api"] | None = None
    iat: int | None = None
    exp: int | None = None
    created_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    authenticated_at: Timestamp | None = None
    last_seen_at: Timestamp | None = None
    scope: str | None = None
    name: str | None = None


class Refreshed(Reply):
    active: bool
    id: str | None = None
    expires_at: Timestamp | None = None
    absolute_expires_at: Timestamp | None = None


class Revoked(Reply):
    revoked: bool


class RevokedCount(Reply):
    revoked: int


class SessionSummary(Reply):
    id: str
    kind: Literal["browser", "api"]
    created_at: Timestamp
    last_seen_at: Timestamp
    authenticated_at: Timestamp | None
    expires_at: Timestamp
    client_ip: str | None
    user_agent: str | None


class SessionList(Reply):
    sessions: list[SessionSummary]


class TokenCreated(Reply):
    token: str
    id: str
    user_id: str
    name: str
    scopes: list[str]
    created_at: Timestamp
    expires_at: Timestamp | None


class TokenSummary(Reply):
    id: str
    user_id: str
    name: str
    scopes: list[str]
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None


class TokenList(Reply):
    tokens: list[TokenSummary]


class Health(Reply):
    status: Literal["ok"]


class ProblemError(Reply):
    loc: list[str]
    msg: str
    type: str


class ProblemDetails(Reply):
    """RFC 9457 problem details; ``type`` is ``urn:coatcheck:problem:<slug>``."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CreateSession,
    Introspect,
    Refresh,
    Revoke,
    RevokeUserSessions,
    CreateToken,
)
