"""Drive the three example apps the same way: one behavioural suite, three frameworks.

Each app is loaded from its own file with ``COATCHECK_STORE_URL`` pointing at a fresh SQLite
file, and talked to over ``http://127.0.0.1`` (the loopback development cookie ``session``).
Time is injected by replacing the clock module's view of ``time``: every manager built with
the default clock then reads the test's ``FakeClock`` — the examples need no test hooks.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from coatcheck import FakeClock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Sealed variants: the same apps with COATCHECK_SESSION_MODE=sealed (the session in an
# encrypted cookie, revocations in the store). Django's engine is server-side only.
APPS = ["flask", "django", "fastapi", "flask-sealed", "fastapi-sealed"]
BASE = "http://127.0.0.1"
COOKIE = "session"
CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"')


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Site:
    """One running example app plus the test's clock."""

    def __init__(
        self, kind: str, client_factory: Any, clock: FakeClock, wsgi_app: Any = None
    ) -> None:
        self.kind = kind
        self.sealed = False
        self._factory = client_factory
        self.clock = clock
        self.wsgi_app = wsgi_app

    def raw_get(self, path: str, headers: dict[str, bytes]) -> tuple[int, bytes]:
        """GET with raw header bytes (httpx's WSGI transport refuses non-ASCII headers, so
        WSGI apps are called directly with a PEP 3333 environ)."""
        if self.wsgi_app is None:
            response = self.client().get(path, headers=headers)
            return response.status_code, response.content
        import io
        from wsgiref.util import setup_testing_defaults

        environ: dict[str, Any] = {"PATH_INFO": path, "SERVER_NAME": "127.0.0.1"}
        setup_testing_defaults(environ)
        environ["HTTP_HOST"] = "127.0.0.1"
        environ["wsgi.input"] = io.BytesIO(b"")
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value.decode("latin-1")
        status: list[str] = []
        body = b"".join(self.wsgi_app(environ, lambda s, h, *a: status.append(s)))
        return int(status[0].split()[0]), body

    def client(self) -> httpx.Client:
        """A new browser: its own cookie jar, redirects not followed."""
        client: httpx.Client = self._factory()
        return client

    def csrf_from(self, html: str) -> str:
        match = CSRF_FIELD.search(html)
        assert match, f"no csrf_token field in the page:\n{html[:500]}"
        return match.group(1) or match.group(2)

    def login(self, client: httpx.Client, next_path: str = "/me") -> httpx.Response:
        page = client.get("/login", params={"next": next_path})
        assert page.status_code == 200
        response = client.post(
            "/login",
            data={
                "username": "alice",
                "password": "alice-password",
                "next": next_path,
                "csrf_token": self.csrf_from(page.text),
            },
        )
        assert response.status_code == 303, response.text
        return response

    def csrf(self, client: httpx.Client) -> str:
        token = client.get("/csrf").json()["csrf_token"]
        assert isinstance(token, str)
        return token
