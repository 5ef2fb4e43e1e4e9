"""The example's views: plain Django (``request.session``, ``django.contrib.auth``, messages),
with coatcheck's guard and CSRF token."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from coatcheck.django.adapt import HttpResponseSeeOther, error_response, request_info
from coatcheck.django.decorators import login_required
from coatcheck.web import csrf
from coatcheck.web.errors import WebError
from coatcheck.web.guards import safe_next

NOTE_MAX_CHARS = 1000
REASONS = {
    "login_required": "Please log in to continue.",
    "session_expired": "Your session has expired, please log in again.",
    "expired_idle": "Your session has expired, please log in again.",
    "expired_absolute": "Your session has expired, please log in again.",
    "reauthenticate": "Please enter your password again to continue.",
}


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Public, and never touches the session: no store call, no cookie."""
    return render(request, "demosite/index.html")


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """The form (GET) and the check (POST). Credentials come from the POST body only."""
    target = safe_next(request.POST.get("next") or request.GET.get("next"), "/me")
    if request.method == "GET":
        reason = request.GET.get("reason") or request.session.expired_reason or ""
        return _login_page(request, target, REASONS.get(reason, ""))
    # CsrfMiddleware checked the origin, and the form's token when a session cookie came
    # along. Without one (no form was fetched) the token is checked here, since the origin
    # check lets through requests that carry no Origin, Referer or Sec-Fetch-Site at all.
    presented = request.POST.get(csrf.FORM_FIELD) or request.headers.get(csrf.HEADER)
    if not csrf.token_matches(request.session.get(csrf.SESSION_KEY), presented):
        error = WebError(403, "csrf_token", "The login form expired; reload it and try again.")
        return error_response(error, request_info(request))
    user = authenticate(
        request,
        username=request.POST.get("username", ""),
        password=request.POST.get("password", ""),
    )
    if user is None:
        return _login_page(request, target, "Wrong username or password.", status=401)
    auth_login(request, user)  # cycle_key(): the pre-login session and its token are dead
    messages.success(request, f"Welcome, {user.get_username()}!")
    return HttpResponseSeeOther(target)


def _login_page(request: HttpRequest, target: str, message: str, status: int = 200) -> HttpResponse:
    context = {"next": target, "message": message}
    return render(request, "demosite/login.html", context, status=status)


@login_required
@require_GET
def me(request: HttpRequest) -> HttpResponse:
    """Protected: JSON for API clients, a page with a logout form for browsers."""
    if not request_info(request).wants_html:
        return JsonResponse(
            {
                "user": request.user.get_username(),
                "authenticated_at": request.session.authenticated_at,
                "note": request.session.get("note"),
            }
        )
    return render(request, "demosite/me.html")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Ends the session server-side; the response expires the cookie and clears site data."""
    auth_logout(request)
    return HttpResponseSeeOther("/")


@require_http_methods(["GET", "POST"])
def note(request: HttpRequest) -> HttpResponse:
    """A CSRF-protected form; saving flashes "saved" once."""
    if request.method == "POST":
        request.session["note"] = request.POST.get("note", "")[:NOTE_MAX_CHARS]
        messages.info(request, "saved")
        return HttpResponseSeeOther("/note")
    context = {"note": request.session.get("note", ""), "max_chars": NOTE_MAX_CHARS}
    return render(request, "demosite/note.html", context)


@require_GET
def hello(request: HttpRequest) -> HttpResponse:
    """Under the exempt prefix /static/: sessions are off here entirely."""
    return HttpResponse("hello\n", content_type="text/plain; charset=utf-8")


@require_GET
def counter(request: HttpRequest) -> JsonResponse:
    request.session["count"] = int(request.session.get("count", 0)) + 1
    return JsonResponse({"count": request.session["count"]})


@require_POST
def set_key(request: HttpRequest, name: str) -> JsonResponse:
    """Sets one key (scripts send the token in X-CSRF-Token); concurrent requests that set
    different keys all keep theirs."""
    request.session[name] = True
    return JsonResponse({"set": name})


@require_GET
def list_keys(request: HttpRequest) -> JsonResponse:
    """The session's own keys (internal ones, such as the CSRF token, start with ``_``)."""
    keys = request.session.keys()  # a Django session has keys() but is not iterable
    return JsonResponse({"keys": sorted(k for k in keys if not k.startswith("_"))})


@require_GET
def csrf_for_scripts(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"csrf_token": request.session.csrf_token()})
