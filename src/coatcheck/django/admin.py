"""A Django admin page of one user's coatcheck sessions, with a button that ends each one.

Sessions are not Django models, so the page is not a ``ModelAdmin``: it is one view, inside
the admin's look and its staff login, added to the URLs next to the admin::

    # urls.py
    from django.contrib import admin
    from coatcheck.django.admin import session_admin_urls

    urlpatterns = [
        path("admin/sessions/", session_admin_urls()),  # before "admin/"
        path("admin/", admin.site.urls),
    ]

``/admin/sessions/?user=alice`` lists the live sessions of the user whose user name (or
primary key) is ``alice``. Staff who may change users (``<app>.change_<user model>``) see it and
can end one session (:meth:`SessionManager.revoke_session`) or all of them; either leaves the
tombstone ``revoked_by_admin``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers

from ..web import csrf
from .conf import get_manager
from .store import SessionStore

# Why a session ended, for the manager's event log (its tombstone says revoked_by_admin).
REVOKED_BY_ADMIN = "admin_page"
URL_NAME = "user_sessions"
NAMESPACE = "coatcheck_admin"


def session_admin_urls(site: admin.AdminSite | None = None) -> tuple[list[Any], str, str]:
    """What ``path("admin/sessions/", ...)`` includes: the page, in the namespace
    ``coatcheck_admin`` (``reverse("coatcheck_admin:user_sessions")``), under ``site``'s
    login and look (the default admin site unless given)."""
    chosen = site or admin.site

    def view(request: HttpRequest) -> HttpResponse:
        response = user_sessions(request, chosen)
        add_never_cache_headers(response)
        return response

    return [path("", view, name=URL_NAME)], NAMESPACE, NAMESPACE


def user_sessions(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    """GET: the user's live sessions. POST: end one (``session=<id>``) or all (``all``),
    then back to the list (303)."""
    if not site.has_permission(request):  # an active staff member, as every admin page asks
        login = reverse("admin:login", current_app=site.name)
        return redirect_to_login(request.get_full_path(), login)
    has_perm = getattr(request.user, "has_perm", None)  # not every user model has one
    if has_perm is None or not has_perm(_change_user_permission()):
        raise PermissionDenied
    query = (request.POST.get("user") or request.GET.get("user") or "").strip()
    user = _find_user(query)
    user_id = str(user.pk) if user is not None else query
    if request.method == "POST":
        return _revoke(request, user_id, query)
    manager = get_manager()
    current = _current_session_id(request)
    sessions = [
        {**_with_datetimes(record.summary()), "current": record.public_id == current}
        for record in (manager.list_user(user_id) if user_id else [])
    ]
    context = {
        **site.each_context(request),
        "title": f"Sessions of {user_id}" if user_id else "Sessions of a user",
        "query": query,
        "user_id": user_id,
        "known_user": user,
        "sessions": sessions,
    }
    return TemplateResponse(request, "coatcheck/admin/user_sessions.html", context)


def _revoke(request: HttpRequest, user_id: str, query: str) -> HttpResponse:
    """The page's own CSRF check, so it holds whichever CSRF middleware the project runs:
    the session's synchronizer token must come back in the form."""
    session = request.session
    expected = session.get(csrf.SESSION_KEY) if isinstance(session, SessionStore) else None
    if not user_id or not csrf.token_matches(expected, request.POST.get(csrf.FORM_FIELD)):
        raise PermissionDenied("CSRF token missing or incorrect")
    manager = get_manager()
    if "all" in request.POST:
        count = manager.revoke_user(user_id, reason=REVOKED_BY_ADMIN)
        messages.success(request, f"Ended {count} session(s) of {user_id}.")
    else:
        public_id = request.POST.get("session", "").strip().lower()
        # Only a session this page lists is ended. Not through revoke_session(user_id=...):
        # that is the user's own act (its tombstone says revoked_by_user); this one is staff's.
        listed = {record.public_id for record in manager.list_user(user_id)}
        ended = public_id in listed and manager.revoke_session(public_id, reason=REVOKED_BY_ADMIN)
        if ended:
            messages.success(request, f"Ended session {public_id} of {user_id}.")
        else:
            messages.warning(request, f"{user_id} has no live session {public_id!r}.")
    response = HttpResponseRedirect(f"{request.path}?{urlencode({'user': query})}")
    response.status_code = 303  # after a POST: the browser GETs the list
    return response


def _with_datetimes(summary: dict[str, Any]) -> dict[str, Any]:
    """Epoch seconds as aware datetimes, which Django's ``date`` filter shows in the current
    time zone like every other admin page."""
    return {
        key: datetime.fromtimestamp(value, UTC)
        if key.endswith("_at") and value is not None
        else value
        for key, value in summary.items()
    }


def _change_user_permission() -> str:
    opts = get_user_model()._meta
    return f"{opts.app_label}.change_{opts.model_name}"


def _find_user(query: str) -> Any:
    """The Django user named ``query`` (user name first, then primary key), or None: a
    coatcheck user id need not be a Django user (sessions made by scripts, deleted users)."""
    if not query:
        return None
    model = get_user_model()
    users = model._default_manager
    by_name: dict[str, str] = {str(model.USERNAME_FIELD): query}
    try:
        return users.get(**by_name)
    except (model.DoesNotExist, ValueError, ValidationError):
        pass
    try:
        return users.get(pk=query)
    except (model.DoesNotExist, ValueError, ValidationError):
        return None


def _current_session_id(request: HttpRequest) -> str | None:
    """The public id of the admin's own session, marked in the list (ending it logs out)."""
    session = request.session
    if not isinstance(session, SessionStore):
        return None
    record = session.core.record
    return None if record is None else record.public_id
