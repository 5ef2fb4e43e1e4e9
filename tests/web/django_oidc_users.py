"""A throw-away Django project with auth tables on in-memory SQLite, for the database work of
``coatcheck.django.oidc.OIDCBackend`` (finding and creating the user an OIDC login names):
``tests/web/test_django_oidc.py`` runs it in a child process (a process can configure Django
only once, and the other Django tests use the example project, which has no database). It
exits 0 after printing ``ok`` when every check below holds."""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="coatcheck-oidc-users-test",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "coatcheck.django"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    AUTHENTICATION_BACKENDS=[
        "django.contrib.auth.backends.ModelBackend",
        "coatcheck.django.oidc.OIDCBackend",
    ],
    SESSION_ENGINE="coatcheck.django",
    ROOT_URLCONF=__name__,
    LOGIN_URL="/oidc/login",
    COATCHECK_STORE_URL="memory://",
    COATCHECK_OIDC_ISSUER="https://id.example.com",
    COATCHECK_OIDC_CLIENT_ID="archive",
    USE_TZ=True,
)
django.setup()
urlpatterns: list[object] = []  # no views: the backend is called directly

from django.contrib.auth import authenticate  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from coatcheck.django.oidc import OIDCBackend, get_flow  # noqa: E402
from coatcheck.oidc import Identity  # noqa: E402
from coatcheck.web.errors import WebError  # noqa: E402


def identity(sub: str) -> Identity:
    return Identity.from_claims({"iss": "https://id.example.com", "sub": sub, "sid": "s-1"})


def main() -> None:
    call_command("migrate", verbosity=0)
    flow = get_flow()

    # The first login creates the user (no usable password: no password form lets them in).
    pk = flow.user_id_for(identity("grace"))
    grace = User.objects.get(username="grace")
    assert pk == str(grace.pk)
    assert not grace.has_usable_password()
    assert authenticate(None, username="grace", password="") is None
    # The next finds the same user; an existing account is the one its name names.
    assert flow.user_id_for(identity("grace")) == pk
    staff = User.objects.create_user("heidi", password="heidi-password")
    assert flow.user_id_for(identity("heidi")) == str(staff.pk)
    assert User.objects.count() == 2

    # Refused: an inactive user, and unknown users when the backend creates none.
    User.objects.filter(pk=staff.pk).update(is_active=False)
    refusals = []
    for sub in ("heidi", "ivan"):
        OIDCBackend.create_unknown_users = sub == "heidi"
        try:
            flow.user_id_for(identity(sub))
        except WebError as refused:
            refusals.append((refused.status, refused.code))
    assert refusals == [(403, "login_refused"), (403, "login_refused")], refusals
    assert not User.objects.filter(username="ivan").exists()

    # A password login never reaches the OIDC backend, nor an OIDC login the password one.
    assert authenticate(None, username="heidi", password="heidi-password") is None  # inactive
    assert authenticate(None, oidc_identity=identity("grace")) is None  # no username given
    flow.close()
    print("ok")


if __name__ == "__main__":
    main()
