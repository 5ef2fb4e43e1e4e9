"""The routes every coatcheck example shares (see the README)."""

from __future__ import annotations

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.index),
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("me", views.me),
    path("note", views.note),
    path("static/hello.txt", views.hello),
    path("counter", views.counter),
    path("keys", views.list_keys),
    re_path(r"^keys/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$", views.set_key),
    path("csrf", views.csrf_for_scripts),
]
