"""The service's settings: flags over environment over the TOML file over defaults, every
variable, errors naming the key and the file, and the 0600 secret file."""

from __future__ import annotations

import base64
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest

from coatcheck.cli.firststart import prepare_first_start
from coatcheck.config import ConfigWarning
from coatcheck.core.errors import ConfigError
from coatcheck.core.tokens import decode_token_key
from coatcheck.service.secretfile import create_secret_file, read_secret_file
from coatcheck.service.settings import (
    CONFIG_FILE_ENV,
    SETTINGS,
    ServiceSettings,
    load_service_settings,
)

KEY_A = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(1, 33))).rstrip(b"=").decode()


def load(
    config: Path | None = None, env: dict[str, str] | None = None, **overrides: Any
) -> ServiceSettings:
    return load_service_settings(config, env or {}, overrides)


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coatcheck.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths (the data directory) land in the test's own directory."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("COATCHECK_")]:
        monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.store_url == "sqlite:///coatcheck-data/coatcheck.db"
    assert settings.library.store_url == settings.store_url
    assert settings.data_dir == Path("coatcheck-data")
    assert settings.secret_file == Path("coatcheck-data/secret.toml")
    assert not settings.testing and not settings.signup
    assert settings.test_users == ("alice", "bob")
    assert settings.reauth_after == 300.0
    assert settings.max_body_bytes == 65536
    assert settings.login_limit_account == (5, 300.0)
    assert settings.login_limit_ip == (30, 300.0)
    assert settings.public_url is None
    assert settings.library.cookie_name == "__Host-session"
    assert settings.library.token_key is None  # no secret file yet: nothing is created
    assert not Path("coatcheck-data").exists()


# Each setting: an environment value and what it gives, a TOML value and what it gives, a
# command-line value and what that gives.
CASES: dict[str, tuple[str, object, str, object, object, object]] = {
    "store_url": ("memory://", "memory://", '"memory://"', "memory://",
                  "sqlite:///x.db", "sqlite:///x.db"),
    "host": ("::1", "::1", '"localhost"', "localhost", "127.0.0.2", "127.0.0.2"),
    "port": ("9001", 9001, "9002", 9002, "9003", 9003),
    "data_dir": ("var/cc", Path("var/cc"), '"srv/cc"', Path("srv/cc"), "d", Path("d")),
    "secret_file": ("keys.toml", Path("keys.toml"), '"k.toml"', Path("k.toml"), "f", Path("f")),
    "testing": ("1", True, "true", True, False, False),
    "test_users": ("carol,dave", ("carol", "dave"), '["erin"]', ("erin",), "x", ("x",)),
    "signup": ("yes", True, "true", True, False, False),
    "reauth_after": ("2m", 120.0, "90", 90.0, "1h", 3600.0),
    "max_body_bytes": ("2048", 2048, "4096", 4096, 8192, 8192),
    "login_limit_account": ("3/1m", (3, 60.0), '[4, "2m"]', (4, 120.0), "6/6s", (6, 6.0)),
    "login_limit_ip": ("10/1h", (10, 3600.0), "[20, 30]", (20, 30.0), "7/7", (7, 7.0)),
    "public_url": ("https://a.example/", "https://a.example", '"http://b.example/cc"',
                   "http://b.example/cc", "https://c.example", "https://c.example"),
    "introspection_cache": ("2s", 2.0, "0", 0.0, "1.5", 1.5),
    "login": ("LOCAL", "local", '"Local"', "local", "local", "local"),  # oidc: test_serve_oidc
    "login_provider_name": ("Example ID", "Example ID", '"Acme"', "Acme", "X", "X"),
}  # fmt: skip


def test_every_setting_is_covered() -> None:
    assert CASES.keys() == SETTINGS.keys()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_setting_from_env_file_and_flag(name: str, tmp_path: Path) -> None:
    env_name = SETTINGS[name][0]
    env_value, from_env, toml_value, from_file, flag_value, from_flag = CASES[name]
    config = toml(tmp_path, f"[service]\n{name} = {toml_value}\n")
    assert getattr(load(None, {env_name: env_value}), name) == from_env
    assert getattr(load(config), name) == from_file
    assert getattr(load(config, {env_name: env_value}), name) == from_env  # env over file
    assert getattr(load(config, {env_name: env_value}, **{name: flag_value}), name) == from_flag


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = toml(tmp_path, '[service]\nport = 9000\nhost = "localhost"\nsignup = true\n')
    env = {"COATCHECK_PORT": "9100", "COATCHECK_SIGNUP": "false"}
    settings = load(config, env, port=9200)
    assert settings.port == 9200  # flag
    assert settings.signup is False  # environment over file
    assert settings.host == "localhost"  # file over default
    assert settings.config_file == config


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = toml(tmp_path, "[service]\nport = 9300\n")
    assert load(None, {CONFIG_FILE_ENV: str(config)}).port == 9300


def test_data_dir_moves_the_default_store_and_secret_file() -> None:
    settings = load(data_dir="state")
    assert settings.store_url == "sqlite:///state/coatcheck.db"
    assert settings.secret_file == Path("state/secret.toml")


@pytest.mark.parametrize("url", ["postgresql://db/x", "redis://127.0.0.1:6379/0", "memory://"])
def test_shared_stores_get_no_default_secret_file(url: str) -> None:
    assert load(store_url=url).secret_file is None


def test_sessions_table_and_environment_for_library_settings(tmp_path: Path) -> None:
    config = toml(
        tmp_path,
        '[sessions]\nidle_timeout = "10m"\nCOATCHECK_ABSOLUTE_LIFETIME = "2h"\n'
        'trusted_proxies = ["10.0.0.1"]\n',
    )
    settings = load(config, {"COATCHECK_IDLE_TIMEOUT": "5m"})
    assert settings.library.policy.idle_timeout == 300.0  # environment over file
    assert settings.library.policy.absolute_lifetime == 7200.0
    assert settings.library.trusted_proxies == ("10.0.0.1",)


def test_keys_from_environment() -> None:
    settings = load(None, {"COATCHECK_TOKEN_KEY": KEY_A, "COATCHECK_LOG_KEY": "log"})
    assert settings.library.token_key == decode_token_key(KEY_A)
    assert settings.library.log_key == b"log"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[service]\nhots = "x"\n', "[service] hots is not a service setting; did you mean host?"),
        ('[service]\nport = "eighty"\n', "[service] port must be a port number"),
        ("[service]\nport = 70000\n", "[service] port must be a port number"),
        ('[service]\ntesting = "maybe"\n', "[service] testing must be true or false"),
        ('[service]\nreauth_after = "soon"\n', "[service] reauth_after: malformed duration"),
        ('[service]\nlogin_limit_ip = "many"\n', "[service] login_limit_ip must be attempts"),
        ("[service]\nmax_body_bytes = 10\n", "[service] max_body_bytes must be at least 1024"),
        ('[service]\npublic_url = "ftp://x"\n', "[service] public_url must be"),
        ("[service]\ntest_users = []\n", "[service] test_users must name at least one user"),
        ('[service]\nstore_url = "mongodb://x"\n', "unknown store scheme 'mongodb'"),
        ('[sessions]\nidle_timout = "5m"\n', "[sessions] idle_timout is not a session setting"),
        ('[sessions]\nidle_timeout = "soon"\n', "[sessions]: COATCHECK_IDLE_TIMEOUT"),
        ('[sessions]\nstore_url = "memory://"\n', "the store is [service] store_url"),
        ("[server]\nport = 1\n", "unknown table or key 'server'"),
        ("service = 3\n", "service must be a table"),
        ("[service\n", "is not valid TOML"),
    ],
)
def test_config_file_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    config = toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(config)
    message = str(caught.value)
    assert str(config) in message or "mongodb" in message
    assert expected in message
    assert "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COATCHECK_PORT": "0"}, "COATCHECK_PORT must be a port number"),
        ({"COATCHECK_SIGNUP": "perhaps"}, "COATCHECK_SIGNUP must be true or false"),
        ({"COATCHECK_LOGIN_LIMIT_ACCOUNT": "0/5m"}, "COATCHECK_LOGIN_LIMIT_ACCOUNT must be"),
        ({"COATCHECK_IDLE_TIMEOUT": "soon"}, "COATCHECK_IDLE_TIMEOUT"),
        ({"COATCHECK_TOKEN_KEY": "short"}, "COATCHECK_TOKEN_KEY must be 32 bytes"),
    ],
)
def test_environment_errors_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load(None, env)


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--port must be a port number"):
        load(port="http")


def test_unknown_environment_name_is_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(None, {"COATCHECK_PROT": "1"})
    assert [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)] == [
        "COATCHECK_PROT is not a coatcheck setting and is ignored; did you mean COATCHECK_PORT?"
    ]


def test_loopback_gets_development_cookies_unless_https() -> None:
    assert load().development_cookies
    assert load(host="::1").development_cookies
    assert not load(host="0.0.0.0").development_cookies
    assert not load(public_url="https://sessions.example").development_cookies
    assert load(public_url="http://127.0.0.1:8000").development_cookies
    assert not load(None, {"COATCHECK_LOOPBACK_DEVELOPMENT": "false"}).development_cookies


def test_testing_refused_off_loopback_and_in_production() -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        load(testing=True, host="0.0.0.0")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COATCHECK_ENV", "production")
        with pytest.raises(ConfigError, match="production"):
            load(testing=True)


# --- the secret file -----------------------------------------------------------------------------


def test_first_start_creates_data_dir_secret_file_and_database() -> None:
    settings, created = prepare_first_start(load())
    data = Path("coatcheck-data")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    secret = data / "secret.toml"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (data / "coatcheck.db").is_file()
    assert [path for path, _ in created] == [
        "coatcheck-data/",
        "coatcheck-data/secret.toml",
        "coatcheck-data/coatcheck.db",
    ]
    keys = read_secret_file(secret)
    assert keys is not None
    assert settings.library.token_key == keys.token_key != keys.log_key
    assert settings.library.log_key == keys.log_key
    assert keys.token_key not in (data / "coatcheck.db").read_bytes()
    again, created_again = prepare_first_start(load())
    assert created_again == []
    assert again.library.token_key == keys.token_key
    assert load().library.token_key == keys.token_key  # read back by the loader too


def test_environment_keys_win_over_the_secret_file() -> None:
    prepare_first_start(load())
    settings = load(None, {"COATCHECK_TOKEN_KEY": KEY_B})
    assert settings.library.token_key == decode_token_key(KEY_B)
    keys = read_secret_file(Path("coatcheck-data/secret.toml"))
    assert keys is not None and settings.library.log_key == keys.log_key


def test_secret_file_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    assert create_secret_file(path)
    first = path.read_bytes()
    assert not create_secret_file(path)
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".s.toml")) == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_file_wider_than_0600_is_refused(tmp_path: Path, mode: int) -> None:
    prepare_first_start(load())
    secret = Path("coatcheck-data/secret.toml")
    secret.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        load()
    assert str(caught.value) == (
        f"secret file {secret} has permissions {mode:04o}, wider than 0600: it holds the token "
        f"key, so other users must not read it; run: chmod 600 {secret}"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'token_key = "{KEY_A}"\n', "lacks log_key"),
        (f'token_key = "{KEY_A}"\nlog_key = "{KEY_B}"\nextra = 1\n', "unknown key 'extra'"),
        ('token_key = "x"\nlog_key = "y"\n', "token_key must be 32 bytes"),
        ("token_key = \n", "is not valid TOML"),
    ],
)
def test_malformed_secret_file(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "secret.toml"
    path.write_text(body)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=expected) as caught:
        load(secret_file=str(path))
    assert "x" * 3 not in str(caught.value)


def test_given_secret_file_with_a_shared_store_is_used(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    create_secret_file(path)
    keys = read_secret_file(path)
    settings = load(store_url="redis://127.0.0.1:6379/0", secret_file=str(path))
    assert keys is not None and settings.library.token_key == keys.token_key
