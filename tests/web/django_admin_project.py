"""A throw-away Django project with the real admin, auth tables on in-memory SQLite and the
coatcheck engine on a memory store: ``tests/web/test_django_dropin.py`` runs it in a child
process (a process can configure Django only once, and the other Django tests use the example
project, which has no database and no admin). It exits 0 when every check below holds.

Its clients enforce CSRF checks as browsers would need them (``enforce_csrf_checks=True``): the
admin's views run Django's own check besides coatcheck's ``CsrfMiddleware``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import django
from django.conf import settings

# The example project's TEMPLATES (coatcheck's context processor included): the admin is tested
# with the template settings the example and docs/web/django.md use.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "django_project"))
from demosite.settings import TEMPLATES

settings.configure(
    SECRET_KEY="coatcheck-admin-test",
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.messages",
        "coatcheck.django",
    ],
    MIDDLEWARE=[
        "coatcheck.django.middleware.SessionMiddleware",
        "coatcheck.django.middleware.CsrfMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    ROOT_URLCONF=__name__,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    TEMPLATES=TEMPLATES,
    SESSION_ENGINE="coatcheck.django",
    SESSION_COOKIE_NAME="__Host-session",
    SESSION_COOKIE_SECURE=True,
    COATCHECK_STORE_URL="memory://",
    MESSAGE_STORAGE="django.contrib.messages.storage.session.SessionStorage",
    USE_TZ=True,
)
django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from coatcheck.django.admin import session_admin_urls  # noqa: E402
from coatcheck.django.conf import get_manager  # noqa: E402

urlpatterns = [
    path("admin/sessions/", session_admin_urls()),
    path("admin/", admin.site.urls),
]

PAGE = "/admin/sessions/"
ORIGIN = {"HTTP_ORIGIN": "https://testserver", "secure": True}
ELSEWHERE = {"HTTP_ORIGIN": "https://evil.example", "secure": True}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
# Django's {% csrf_token %} in the admin's templates renders coatcheck's token under this name.
ADMIN_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
DJANGO_REFUSAL = "CSRF verification failed"  # Django's own CSRF failure page
LOGIN = "/admin/login/?next=/admin/"
ADD_GROUP = "/admin/auth/group/add/"


def admin_token(client: Client, url: str) -> str:
    page = client.get(url, secure=True)
    assert page.status_code == 200, (url, page.status_code)
    match = ADMIN_TOKEN.search(page.content.decode())
    assert match is not None, page.content
    return match.group(1)


def refused_by(response: Any) -> str:
    """Who refused a request: coatcheck's error id, or Django's own CSRF check."""
    assert response.status_code == 403, response.status_code
    if response["Content-Type"].startswith("application/json"):
        return str(response.json()["error"])
    assert DJANGO_REFUSAL in response.content.decode(), response.content
    return "django"


def admin_login_and_changes(root: User) -> None:
    """The real admin under coatcheck's CSRF: its views run Django's CSRF check too, which a
    request coatcheck's middleware checked (origin and token) passes without Django's cookie."""
    credentials = {"username": "root", "password": "root-password"}
    browser = Client(enforce_csrf_checks=True)
    token = admin_token(browser, LOGIN)
    assert refused_by(browser.post(LOGIN, credentials, **ORIGIN)) == "csrf_token"
    wrong_site = browser.post(LOGIN, {**credentials, "csrfmiddlewaretoken": token}, **ELSEWHERE)
    assert refused_by(wrong_site) == "csrf_origin"
    # No session cookie: coatcheck checks the origin (login CSRF) and nothing more, so the
    # admin's own check still runs, and wants Django's cookie.
    cookieless = Client(enforce_csrf_checks=True)
    cross = cookieless.post(LOGIN, {**credentials, "csrfmiddlewaretoken": token}, **ELSEWHERE)
    assert refused_by(cross) == "csrf_origin"
    same = cookieless.post(LOGIN, {**credentials, "csrfmiddlewaretoken": token}, **ORIGIN)
    assert refused_by(same) == "django"

    logged_in = browser.post(LOGIN, {**credentials, "csrfmiddlewaretoken": token}, **ORIGIN)
    assert (logged_in.status_code, logged_in["Location"]) == (302, "/admin/"), logged_in
    assert "Site administration" in browser.get("/admin/", secure=True).content.decode()

    # A change: adding a group. Refused without the token and from another origin.
    token = admin_token(browser, ADD_GROUP)
    assert refused_by(browser.post(ADD_GROUP, {"name": "no-token"}, **ORIGIN)) == "csrf_token"
    cross = browser.post(ADD_GROUP, {"name": "cross", "csrfmiddlewaretoken": token}, **ELSEWHERE)
    assert refused_by(cross) == "csrf_origin"
    # A path exempt from coatcheck's checks is not thereby exempt from the admin's.
    with override_settings(COATCHECK_CSRF_EXEMPT_PATHS=["/admin/auth/"]):
        exempt = browser.post(ADD_GROUP, {"name": "exempt", "csrfmiddlewaretoken": token}, **ORIGIN)
        assert refused_by(exempt) == "django"
    assert not Group.objects.exists()
    added = browser.post(ADD_GROUP, {"name": "editors", "csrfmiddlewaretoken": token}, **ORIGIN)
    assert added.status_code == 302, added.status_code
    assert list(Group.objects.values_list("name", flat=True)) == ["editors"]

    # The admin's logout (a POST) ends the session.
    ended = browser.post("/admin/logout/", {"csrfmiddlewaretoken": token}, **ORIGIN)
    assert ended.status_code == 200, ended.status_code
    assert str(ended.cookies["__Host-session"]["max-age"]) == "0", "the cookie is expired"
    assert "Clear-Site-Data" not in ended, "off by default: it reaches the whole domain"
    assert get_manager().list_user(str(root.pk)) == []
    assert browser.get("/admin/", secure=True).status_code == 302


def main() -> None:
    call_command("migrate", verbosity=0)
    root = User.objects.create_superuser("root", "root@example.org", "root-password")
    clerk = User.objects.create_user("clerk", password="clerk-password", is_staff=True)
    alice = User.objects.create_user("alice", password="alice-password")
    manager = get_manager()
    made = [manager.create(str(alice.pk)) for _ in range(3)]
    tokens, ids = [token for token, _ in made], [record.public_id for _, record in made]
    bobs = manager.create("bob")[1].public_id  # a coatcheck user that is no Django user

    def live(user_id: str) -> set[str]:
        return {r.public_id for r in manager.list_user(user_id)}

    admin_login_and_changes(root)

    # Nobody logged in: the admin's login page, with the way back.
    anonymous = Client(enforce_csrf_checks=True).get(PAGE, {"user": "alice"}, secure=True)
    assert anonymous.status_code == 302, anonymous.status_code
    assert anonymous["Location"].startswith("/admin/login/?next=/admin/sessions/")

    # Staff without the permission to change users: refused.
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(clerk)
    assert staff.get(PAGE, {"user": "alice"}, secure=True).status_code == 403

    admin_client = Client(enforce_csrf_checks=True)
    admin_client.force_login(root)
    page = admin_client.get(PAGE, {"user": "alice"}, secure=True)
    html = page.content.decode()
    assert page.status_code == 200, page.status_code
    assert "no-store" in page["Cache-Control"] or "no-cache" in page["Cache-Control"]
    assert all(session_id in html for session_id in ids), html
    assert bobs not in html
    assert html.count('value="End session"') == 3
    match = TOKEN.search(html)
    assert match is not None, html
    token = match.group(1)

    # A POST without the form's token ends nothing.
    refused = admin_client.post(PAGE, {"user": "alice", "session": ids[0]}, **ORIGIN)
    assert refused.status_code == 403, refused.status_code
    assert live(str(alice.pk)) == set(ids)

    # End one session: 303 back to the list, that session gone, the others alive.
    ended = admin_client.post(
        PAGE, {"user": "alice", "session": ids[0], "csrf_token": token}, **ORIGIN
    )
    assert ended.status_code == 303, ended.status_code
    assert ended["Location"] == f"{PAGE}?user=alice"
    assert live(str(alice.pk)) == set(ids[1:])
    tombstone = manager.revocation(tokens[0])
    assert tombstone is not None and tombstone.reason == "revoked_by_admin", tombstone
    after = admin_client.get(ended["Location"], secure=True).content.decode()
    assert f"Ended session {ids[0]} of {alice.pk}." in after
    assert ids[0] not in after.replace(f"Ended session {ids[0]}", "")

    # Another user's session id under alice's name ends nothing.
    admin_client.post(PAGE, {"user": "alice", "session": bobs, "csrf_token": token}, **ORIGIN)
    assert live("bob") == {bobs}
    admin_client.post(PAGE, {"user": "alice", "session": "junk", "csrf_token": token}, **ORIGIN)
    assert live(str(alice.pk)) == set(ids[1:])

    # A coatcheck user id that is no Django user is listed too; the admin's own session is
    # marked.
    assert bobs in admin_client.get(PAGE, {"user": "bob"}, secure=True).content.decode()
    own = admin_client.get(PAGE, {"user": "root"}, secure=True).content.decode()
    assert "(your session)" in own, own

    # End all of alice's sessions.
    everything = admin_client.post(
        PAGE, {"user": "alice", "all": "1", "csrf_token": token}, **ORIGIN
    )
    assert everything.status_code == 303
    assert live(str(alice.pk)) == set()
    assert {getattr(manager.revocation(t), "reason", None) for t in tokens} == {"revoked_by_admin"}
    assert (
        "No live sessions."
        in admin_client.get(PAGE, {"user": "alice"}, secure=True).content.decode()
    )
    print("ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
