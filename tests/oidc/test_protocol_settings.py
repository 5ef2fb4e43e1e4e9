"""OIDCSettings and the COATCHECK_OIDC_* names: checked when made, one name per field."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from coatcheck.config.settings import OIDC_NAMES, read_settings
from coatcheck.oidc import OIDCConfigError, OIDCSettings, new_login_secrets, read_oidc_settings

ISSUER = "https://id.example"


def test_every_field_has_a_name_and_read_settings_knows_it() -> None:
    assert set(OIDC_NAMES) == {f.name for f in dataclasses.fields(OIDCSettings)}
    config = {name: "" for name in OIDC_NAMES.values()} | {OIDC_NAMES["issuer"]: ISSUER}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_settings(config, environ={}, strict=True)


def test_defaults_and_openid_always_requested() -> None:
    settings = OIDCSettings(issuer=ISSUER, client_id="app", scopes=("email", "email"))
    assert settings.scopes == ("openid", "email")
    assert settings.discovery_url == f"{ISSUER}/.well-known/openid-configuration"
    assert OIDCSettings(issuer=ISSUER + "/", client_id="a").discovery_url == (
        f"{ISSUER}/.well-known/openid-configuration"
    )


def test_the_client_secret_stays_out_of_the_repr() -> None:
    assert "s3cret" not in repr(OIDCSettings(issuer=ISSUER, client_id="a", client_secret="s3cret"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"issuer": "http://id.example"}, "issuer"),
        ({"issuer": "ftp://id.example"}, "issuer"),
        ({"issuer": "https://id.example?x=1"}, "issuer"),
        ({"issuer": ""}, "issuer"),
        ({"client_id": " "}, "client_id"),
        ({"scopes": "openid email"}, "scopes"),
        ({"scopes": ("open id",)}, "scopes"),
        ({"callback_path": "oidc/callback"}, "callback_path"),
        ({"ended_path": "//evil.example/x"}, "ended_path"),
        ({"ended_path": "/oidc/login"}, "ended_path"),
        ({"post_logout_path": "https://evil.example/"}, "post_logout_path"),
        ({"base_url": "app.example"}, "base_url"),
        ({"refresh_skew": -1}, "refresh_skew"),
        ({"metadata_ttl": 0}, "metadata_ttl"),
        ({"http_timeout": float("nan")}, "http_timeout"),
        ({"refresh_lease": True}, "refresh_lease"),
        ({"clock_leeway": 3600}, "clock_leeway"),
        ({"prompt_none_fallback": "yes"}, "prompt_none_fallback"),
    ],
)
def test_bad_values_name_their_field(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"issuer": ISSUER, "client_id": "app", **changes}
    with pytest.raises(OIDCConfigError, match=field) as caught:
        OIDCSettings(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_http_is_allowed_for_a_loopback_issuer_only() -> None:
    for issuer in ("http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:9000"):
        assert OIDCSettings(issuer=issuer, client_id="a").issuer == issuer


def test_read_from_a_mapping_with_durations_and_scope_lists() -> None:
    settings = read_oidc_settings(
        {
            "COATCHECK_OIDC_ISSUER": ISSUER,
            "COATCHECK_OIDC_CLIENT_ID": "app",
            "COATCHECK_OIDC_SCOPES": "email, profile offline_access",
            "COATCHECK_OIDC_REFRESH_SKEW": "1m",
            "COATCHECK_OIDC_PROMPT_NONE_FALLBACK": "false",
            "COATCHECK_OIDC_BASE_URL": "https://app.example/",
        },
        environ={"COATCHECK_OIDC_CLIENT_SECRET": "from-env"},
    )
    assert settings is not None
    assert settings.scopes == ("openid", "email", "profile", "offline_access")
    assert settings.refresh_skew == 60.0
    assert settings.prompt_none_fallback is False
    assert settings.base_url == "https://app.example"
    assert settings.client_secret == "from-env"


def test_no_issuer_means_no_oidc_and_the_environment_can_give_it() -> None:
    assert read_oidc_settings({"COATCHECK_OIDC_CLIENT_ID": "app"}, environ={}) is None
    settings = read_oidc_settings(
        {}, environ={"COATCHECK_OIDC_ISSUER": ISSUER, "COATCHECK_OIDC_CLIENT_ID": "app"}
    )
    assert settings is not None
    assert (settings.issuer, settings.client_id) == (ISSUER, "app")
    # Only the deployment's names come from the environment.
    settings = read_oidc_settings(
        {"COATCHECK_OIDC_ISSUER": ISSUER, "COATCHECK_OIDC_CLIENT_ID": "app"},
        environ={"COATCHECK_OIDC_REFRESH_SKEW": "5"},
    )
    assert settings is not None
    assert settings.refresh_skew == 30.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COATCHECK_OIDC_REFRESH_WAIT", "soon"),
        ("COATCHECK_OIDC_ISSUER", "http://id.example"),
        ("COATCHECK_OIDC_PROMPT_NONE_FALLBACK", "perhaps"),
        ("COATCHECK_OIDC_LOGIN_PATH", 7),
    ],
)
def test_bad_values_in_a_mapping_name_the_setting(name: str, value: object) -> None:
    config = {"COATCHECK_OIDC_ISSUER": ISSUER, "COATCHECK_OIDC_CLIENT_ID": "app", name: value}
    with pytest.raises(OIDCConfigError, match=name):
        read_oidc_settings(config, environ={})


def test_an_issuer_without_a_client_id_is_a_clear_error() -> None:
    with pytest.raises(OIDCConfigError, match="COATCHECK_OIDC_CLIENT_ID: required") as caught:
        read_oidc_settings({"COATCHECK_OIDC_ISSUER": ISSUER}, environ={})
    assert caught.value.field == "client_id"


def test_login_secrets_are_fresh_urlsafe_and_long() -> None:
    first, second = new_login_secrets(), new_login_secrets()
    assert len(set(first) | set(second)) == 6
    for value in first:
        assert len(value) >= 43
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_misspelt_oidc_name_gets_the_closest_one() -> None:
    with pytest.warns(UserWarning, match="did you mean COATCHECK_OIDC_ISSUER"):
        read_settings({"COATCHECK_OIDC_ISUER": ISSUER}, environ={})


@pytest.mark.parametrize("missing", ["authlib", "joserfc", "httpx"])
def test_without_the_extra_the_import_says_what_to_install(missing: str) -> None:
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "try:\n    import coatcheck.oidc\n"
        "except ModuleNotFoundError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "coatcheck.oidc needs Authlib, joserfc and httpx" in done.stdout
    assert "pip install 'coatcheck[oidc]'" in done.stdout


def test_the_protocol_docs_list_every_name_and_no_other() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "oidc.md").read_text()
    section = docs.split("### Settings", 1)[1].split("\n### ", 1)[0]
    assert set(re.findall(r"COATCHECK_OIDC_[A-Z_]+", section)) == set(OIDC_NAMES.values())
