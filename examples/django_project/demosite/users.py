"""The built-in user list and the authentication backend that checks it."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from .models import DemoUser


def demo_users() -> dict[str, str]:
    """``alice`` / ``alice-password`` unless the environment says otherwise (read per call, so
    tests can change it)."""
    user = os.environ.get("COATCHECK_DEMO_USER", "alice")
    return {user: os.environ.get("COATCHECK_DEMO_PASSWORD", "alice-password")}


def _user(username: str, password: str) -> DemoUser:
    # Django derives the session's auth hash from this field: changing the password ends the
    # user's sessions. The leading "!" marks it as unusable for password checks.
    digest = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
    return DemoUser(username=username, password=f"!{digest}")


class DemoBackend(BaseBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> DemoUser | None:
        expected = demo_users().get(username or "")
        # Compare even for unknown names, so timing does not tell which names exist.
        matches = hmac.compare_digest((expected or "\0").encode(), (password or "").encode())
        if expected is None or not matches or username is None:
            return None
        return _user(username, expected)

    def get_user(self, user_id: Any) -> DemoUser | None:
        password = demo_users().get(str(user_id))
        return None if password is None else _user(str(user_id), password)
