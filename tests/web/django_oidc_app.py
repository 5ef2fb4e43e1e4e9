"""The views, URLs and authentication backend of the Django OIDC tests
(tests/web/test_django_oidc.py), loaded by Django itself (``ROOT_URLCONF``,
``AUTHENTICATION_BACKENDS``) once the example project is set up.

The example's user model has no table, so the backend (an ``OIDCBackend`` subclass) names a
``DemoUser`` for whoever the provider vouches for, as a project's backend finds or creates
its user (the default backend's own database work: tests/web/django_oidc_users.py)."""

from __future__ import annotations

from typing import Any

from demosite.models import DemoUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from oidc.apps import digest, page_html, whoami

from coatcheck.django.decorators import login_required
from coatcheck.django.oidc import OIDCBackend, access_token
from coatcheck.oidc import Identity

BACKEND = f"{__name__}.DemoOIDCBackend"


class DemoOIDCBackend(OIDCBackend):
    """The example's users, who live in no table: the provider's user of that name."""

    def user_for(self, username: str, identity: Identity) -> DemoUser | None:
        return DemoUser(username=username, password="!oidc")

    def get_user(self, user_id: Any) -> DemoUser | None:
        return DemoUser(username=str(user_id), password="!oidc")


def me(request: HttpRequest) -> HttpResponse:
    """Who is logged in: the coatcheck session's user, Django's ``request.user`` and digests
    of the access token (in the session, and through ``access_token(request)``)."""
    session: Any = request.session
    user = request.user
    return JsonResponse(
        {
            **whoami(session.user_id, session),
            "helper": digest(access_token(request)),
            "django_user": user.get_username() if user.is_authenticated else None,
        }
    )


def csrf(request: HttpRequest) -> HttpResponse:
    session: Any = request.session
    return JsonResponse({"csrf": session.csrf_token()})


def page(request: HttpRequest) -> HttpResponse:
    session: Any = request.session
    user = request.user.get_username() if request.user.is_authenticated else None
    return HttpResponse(page_html(user, session.csrf_token() if user else ""))


urlpatterns = [
    path("", me),
    path("echo", me),
    path("guarded", login_required(me)),
    path("csrf", csrf),
    path("page", page),
]
