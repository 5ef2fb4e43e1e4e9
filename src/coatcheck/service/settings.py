"""What one ``coatcheck serve`` process is configured with (docs/serve.md lists each setting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The service's settings: where it listens, its store, its limits, and the library's own
    settings (policy, cookie, keys, trusted proxies) in ``library``."""

    host: str = "127.0.0.1"
    port: int = 8000
    store_url: str = "sqlite:///coatcheck-data/coatcheck.db"
    data_dir: Path = Path("coatcheck-data")
    secret_file: Path | None = None
    testing: bool = False
    test_users: tuple[str, ...] = ("alice", "bob")
    signup: bool = False
    reauth_after: float = 300.0
    max_body_bytes: int = 65536
    login_limit_account: tuple[int, float] = (5, 300.0)
    login_limit_ip: tuple[int, float] = (30, 300.0)
    library: Settings = field(default_factory=Settings)
    public_url: str | None = None
