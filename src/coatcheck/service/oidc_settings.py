"""``coatcheck serve``'s OpenID Connect settings: the config file's ``[oidc]`` table and the
``COATCHECK_OIDC_*`` environment variables, read by :func:`coatcheck.oidc.read_oidc_settings`,
the one reader of those names (docs/serve.md, "OpenID Connect login").

The table's keys are the field names of :class:`coatcheck.oidc.OIDCSettings` (``issuer``,
``client_id``, ...), or their ``COATCHECK_OIDC_*`` names; they are handed to the reader under
those names, the environment's values over the file's. A client secret in the file makes the
file a secret too: it must be readable by its owner only, like ``secret.toml``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.settings import OIDC_NAMES, PREFIX
from ..core.errors import ConfigError
from .secretfile import refuse_if_shared

if TYPE_CHECKING:
    from ..oidc import OIDCSettings

OIDC_ENV_NAMES = frozenset(OIDC_NAMES.values())
OIDC_PREFIX = PREFIX + "OIDC_"
ISSUER, CLIENT_ID, CLIENT_SECRET = (OIDC_NAMES[n] for n in ("issuer", "client_id", "client_secret"))


def oidc_table_names(path: Path, table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[oidc]`` table under the reader's names: ``issuer`` and ``COATCHECK_OIDC_ISSUER``
    both mean ``COATCHECK_OIDC_ISSUER``. An unknown key is a ConfigError naming the file."""
    named: dict[str, Any] = {}
    for key, value in table.items():
        name = key if key.startswith(OIDC_PREFIX) else OIDC_PREFIX + key.upper()
        if name not in OIDC_ENV_NAMES:
            close = difflib.get_close_matches(key.removeprefix(OIDC_PREFIX).lower(), OIDC_NAMES)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{path}: [oidc] {key} is not an OpenID Connect setting{hint}")
        named[name] = value
    return named


def read_service_oidc(
    path: Path | None,
    table: Mapping[str, Any],
    env: Mapping[str, str],
    file_info: os.stat_result | None,
) -> OIDCSettings | None:
    """The relying party's settings from the file's ``[oidc]`` table (already under the
    reader's names) and the environment, or None when neither names an issuer.

    A client secret in a file that its group or others may read is refused; a bad value is a
    ConfigError naming the variable, or the file and table it is in.
    """
    from_env = {name: value for name, value in env.items() if name in OIDC_ENV_NAMES}
    if not table and not from_env:
        return None
    if path is not None and file_info is not None and table.get(CLIENT_SECRET):
        refuse_if_shared(
            "config file",
            path,
            file_info,
            "its [oidc] client_secret is a secret",
            f", or move the secret to {CLIENT_SECRET} in the environment",
        )
    try:
        from ..oidc import OIDCConfigError, read_oidc_settings
    except ModuleNotFoundError as exc:  # the [oidc] extra is not installed
        raise ConfigError(f"OpenID Connect login: {exc}") from None
    given = {**table, **from_env}
    if given.get(ISSUER) and not given.get(CLIENT_ID):
        raise ConfigError(
            f"{CLIENT_ID} is missing: the OpenID Provider {given[ISSUER]!r} needs this "
            "service's client id there ([oidc] client_id)"
        )
    try:
        return read_oidc_settings(given, environ={})
    except OIDCConfigError as exc:
        culprit = OIDC_NAMES.get(exc.field or "") or _named_in(str(exc))
        in_file = path is not None and culprit not in from_env and culprit in table
        raise ConfigError(f"{path}: [oidc]: {exc}" if in_file else str(exc)) from None


def _named_in(message: str) -> str | None:
    """The ``COATCHECK_OIDC_*`` name a message is about (the reader starts with it)."""
    named = [name for name in OIDC_ENV_NAMES if message.startswith(name)]
    return max(named, key=len) if named else None
