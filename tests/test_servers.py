"""The rule for absent servers: skipped with a how-to locally, a failure in CI."""

from __future__ import annotations

import pytest
import servers


@pytest.mark.parametrize(
    ("ci", "outcome"), [(True, pytest.fail.Exception), (False, pytest.skip.Exception)]
)
def test_a_missing_server_fails_in_ci_and_skips_elsewhere(
    ci: bool, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "IN_CI", ci)
    port = servers.free_port()  # nobody listens there
    with pytest.raises(outcome, match="start it with"):
        servers.require_server("redis", "127.0.0.1", port)
