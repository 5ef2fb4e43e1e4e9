"""The pytest plugin, run for real: fresh pytest sessions (pytester) that get the fixtures from
the ``pytest11`` entry point alone, with no conftest of ours in sight."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

FIXTURES_TEST = """
import asyncio
import os
import warnings

import pytest
from flask import Flask, request

from coatcheck import AsyncSessionManager, FakeClock, SessionManager
from coatcheck.testing import TestingNotAllowed, ensure_testing_allowed
from coatcheck.web import asgi, wsgi

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient


def test_nothing_is_enabled_by_loading_the_plugin():
    assert "COATCHECK_TESTING" not in os.environ
    with pytest.raises(TestingNotAllowed):
        ensure_testing_allowed()


def test_clock_and_managers(
    coatcheck_clock, coatcheck_memory_manager, coatcheck_async_memory_manager
):
    assert isinstance(coatcheck_clock, FakeClock)
    assert isinstance(coatcheck_memory_manager, SessionManager)
    assert isinstance(coatcheck_async_memory_manager, AsyncSessionManager)
    assert coatcheck_memory_manager.clock is coatcheck_clock
    assert coatcheck_async_memory_manager.clock is coatcheck_clock


def test_login_a_flask_client(coatcheck_login, coatcheck_memory_manager, coatcheck_clock):
    app = Flask(__name__)

    @app.get("/me")
    def me():
        return {"user": request.environ[wsgi.ENVIRON_KEY].user_id}

    app.wsgi_app = wsgi.SessionMiddleware(app.wsgi_app, coatcheck_memory_manager)
    client = app.test_client()
    coatcheck_login(client, "alice")  # the default manager is coatcheck_memory_manager
    assert client.get("/me").json == {"user": "alice"}
    coatcheck_clock.advance(coatcheck_memory_manager.policy.idle_timeout + 1)
    assert client.get("/me").json == {"user": None}


def test_login_a_starlette_client(coatcheck_login, coatcheck_async_memory_manager):
    async def me(req):
        state = await req.scope[asgi.SCOPE_KEY].load()
        return JSONResponse({"user": state.user_id})

    app = Starlette(routes=[Route("/me", me)])
    app = asgi.SessionMiddleware(app, coatcheck_async_memory_manager)
    client = TestClient(app, base_url="https://testserver")
    coatcheck_login(client, "bob")  # the only memory manager this test uses: the async one
    assert client.get("/me").json() == {"user": "bob"}
    coatcheck_login(client, "carol", manager=coatcheck_async_memory_manager)
    assert client.get("/me").json() == {"user": "carol"}


def test_alogin(coatcheck_alogin, coatcheck_async_memory_manager):
    class Client:  # any httpx-shaped client
        import httpx
        cookies = httpx.Cookies()
        base_url = "https://testserver"

    token = asyncio.run(coatcheck_alogin(Client(), "carol"))
    loaded = asyncio.run(coatcheck_async_memory_manager.load(token))
    assert loaded.user_id == "carol"


def test_login_refused_in_production(coatcheck_login, monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(TestingNotAllowed, match="APP_ENV"):
        coatcheck_login(object(), "alice")


def test_testing_enabled_fixture(coatcheck_testing_enabled):
    assert os.environ["COATCHECK_TESTING"] == "1"
    ensure_testing_allowed(bind_host="127.0.0.1")
"""


@pytest.fixture(autouse=True)
def no_outer_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COATCHECK_TESTING", raising=False)


def test_entry_point_fixtures_in_a_fresh_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ccplugin_fixtures=FIXTURES_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)
    assert "COATCHECK_TESTING" not in os.environ


def test_fixtures_come_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ccplugin_uses="def test_it(coatcheck_login):\n    pass\n")
    result = pytester.runpytest("-p", "no:coatcheck")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'coatcheck_login' not found*"])
    assert pytester.runpytest().ret == pytest.ExitCode.OK


def test_policy_can_be_overridden_in_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import pytest\nfrom coatcheck import Policy\n\n"
        "@pytest.fixture\ndef coatcheck_policy():\n"
        "    return Policy(idle_timeout=90, touch_interval=0)\n"
    )
    pytester.makepyfile(
        test_ccplugin_policy="def test_it(coatcheck_memory_manager):\n"
        "    assert coatcheck_memory_manager.policy.idle_timeout == 90\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_ini_option_enables_for_the_run_and_restores(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncoatcheck_testing = true\n")
    pytester.makepyfile(
        test_ccplugin_ini="import os\n\n"
        "def test_it():\n    assert os.environ['COATCHECK_TESTING'] == '1'\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert "COATCHECK_TESTING" not in os.environ


def test_ini_option_is_a_usage_error_in_production(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COATCHECK_ENV", "production")
    pytester.makeini("[pytest]\ncoatcheck_testing = true\n")
    pytester.makepyfile(test_ccplugin_ini="def test_it():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*COATCHECK_ENV is 'production'*"])
    assert "COATCHECK_TESTING" not in os.environ


DJANGO_TEST = """
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-" + "x" * 40,
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.http import JsonResponse
from django.test import Client
from django.urls import path

from coatcheck.web import wsgi

HANDLER = {}


def me(request):
    # The shared core the Django adapter is built on, driven straight from a plain view.
    state = HANDLER["handler"].begin(wsgi.request_from_environ(request.META))
    return JsonResponse({"user": state.user_id})


urlpatterns = [path("me", me)]


def test_django_client(coatcheck_login, coatcheck_memory_manager):
    HANDLER["handler"] = wsgi.SessionHandler(coatcheck_memory_manager)
    client = Client()
    assert client.get("/me").json() == {"user": None}
    coatcheck_login(client, "dora")
    assert client.get("/me").json() == {"user": "dora"}
"""


def test_django_test_client_end_to_end(pytester: pytest.Pytester) -> None:
    """In its own interpreter: Django settings are process-global and other suites configure
    their own."""
    pytester.makepyfile(test_ccplugin_django=DJANGO_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
