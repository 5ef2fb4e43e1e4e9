"""Django middleware: sessions (with 503 on store failure) and CSRF, over the shared web core.

::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "coatcheck.django.middleware.SessionMiddleware",   # instead of Django's
        "django.middleware.common.CommonMiddleware",
        "coatcheck.django.middleware.CsrfMiddleware",      # instead of CsrfViewMiddleware
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        ...
    ]
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from .._sync.web.handler import RequestSession
from ..core.errors import StoreUnavailable
from ..web import caching, csrf, errors
from ..web.errors import WebError, store_unavailable
from .adapt import add_set_cookie, as_web_error, error_response, request_info
from .conf import get_config
from .store import SessionStore

_ESCAPED = "_coatcheck_escaped_error"
# Django's own names, accepted too, so ``{% csrf_token %}`` and admin forms keep working.
DJANGO_FORM_FIELD = "csrfmiddlewaretoken"
# What Django's CsrfViewMiddleware sets on a request it accepted (CsrfMiddleware.process_view).
DJANGO_CSRF_DONE = "csrf_processing_done"


class SessionMiddleware(DjangoSessionMiddleware):
    """``request.session`` kept by coatcheck.

    Differences from Django's middleware: the session is looked up lazily by the shared web
    core (a request that never uses it costs no store call; several cookies of our name are
    resolved safely); a read-only request slides the idle timeout at most once per touch
    interval; ``Set-Cookie`` is sent only when the token changes, always with
    ``Cache-Control: no-store``, which every response of a logged-in session gets too (unless
    the view is marked ``@cacheable``, :mod:`coatcheck.web.caching`);
    ``django.contrib.auth.logout`` expires the cookie (and sends ``Clear-Site-Data:
    "cookies"`` with ``COATCHECK_CLEAR_SITE_DATA``); a store failure is a 503 page or JSON
    body, never a traceback.
    """

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        engine = self.SessionStore
        if not issubclass(engine, SessionStore):
            raise ImproperlyConfigured(
                "coatcheck.django.middleware.SessionMiddleware needs "
                f"SESSION_ENGINE = 'coatcheck.django', not {settings.SESSION_ENGINE!r}"
            )
        self.store_class: type[SessionStore] = engine

    def process_request(  # type: ignore[override]  # may answer early, as middleware can
        self, request: HttpRequest
    ) -> HttpResponse | None:
        config = get_config()
        info = request_info(request, config)
        # The development-cookie handler exists only with COATCHECK_LOOPBACK_DEVELOPMENT.
        handler = config.handler if config.local_handler is None else config.handler_for(info)
        try:
            state = handler.begin(info)  # refuses dev cookies off loopback
        except WebError as error:
            return error_response(error, info)
        request.session = self.store_class(request=state, config=config)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view (or template) that hit a store failure gets the 503, not a 500."""
        error = as_web_error(exception)
        return None if error is None else error_response(error, request_info(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        escaped: WebError | None = getattr(request, _ESCAPED, None)
        if escaped is not None:  # raised in other middleware: Django made it a 500
            return error_response(escaped, request_info(request))
        store = getattr(request, "session", None)
        if not isinstance(store, SessionStore):
            return response
        match = getattr(request, "resolver_match", None)
        try:
            # Like Django: a failed request saves nothing.
            headers = store.finish(
                failed=response.status_code >= 500, view=None if match is None else match.func
            )
        except WebError as error:
            return error_response(error, request_info(request))
        if headers is None:  # the session was not used, or is not this request's to save
            return response
        _vary_on_cookie(response)  # every response that used the session, a failed one too
        for name, value in headers:
            if name == "set-cookie":
                add_set_cookie(response, value)
            elif name == "cache-control":
                response["Cache-Control"] = caching.with_no_store(response.get("Cache-Control"))
            elif name != "vary":  # added above, merged with the view's
                response[name] = value
        return response


def _vary_on_cookie(response: HttpResponse) -> None:
    """``Vary: Cookie``, merged by Django's ``patch_vary_headers`` when the response already
    varies on something (the plain case skips its parsing and joining).

    The response's few header names are looked through: a look-up of a missing one raises
    (and catches) a ``KeyError`` inside Django, which costs more."""
    headers = response.headers
    for name in headers:
        if name.lower() == "vary":
            patch_vary_headers(response, ("Cookie",))
            return
    headers["Vary"] = "Cookie"


class CsrfMiddleware(MiddlewareMixin):
    """CSRF protection for unsafe, cookie-authenticated requests (replaces Django's).

    Both layers of :mod:`coatcheck.web.csrf`: the request's origin (``Sec-Fetch-Site``,
    ``Origin``, ``Referer`` against this site and ``CSRF_TRUSTED_ORIGINS``), then, when a session
    cookie came along, the session's synchronizer token from the form field ``csrf_token`` or the
    ``X-CSRF-Token`` header (Django's ``csrfmiddlewaretoken`` and ``X-CSRFToken`` are accepted
    too). Views marked ``@csrf_exempt`` are not checked; a request without a session cookie gets
    the origin check only (login CSRF), and one authenticated by ``Authorization: Bearer`` alone
    neither (a bearer header beside the cookie changes nothing: the session still comes from the
    cookie).

    A request that passed both layers is marked the way Django's own ``CsrfViewMiddleware``
    marks a request it accepted, so views that run Django's check themselves (the admin, anything
    decorated with ``csrf_protect``) do not check it a second time against Django's CSRF cookie,
    which this setup never sets. Any other request (no session cookie, a
    ``COATCHECK_CSRF_EXEMPT_PATHS`` path, ``COATCHECK_CSRF = False``) is left unmarked: in such
    views Django's own check still runs, and refuses it without Django's cookie and token.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Any,
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if getattr(view_func, "csrf_exempt", False):
            return None
        return csrf_refusal(request)


def csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Both CSRF layers for ``request`` (see :class:`CsrfMiddleware`): the refusal, or None when
    it passes (and is marked as checked). Also run by the OIDC middleware for the logout it
    answers before any view."""
    store, state = bound_session(request, "coatcheck.django.middleware.CsrfMiddleware")
    info = state.request
    web = get_config().web
    has_cookie = bool(state.cookie_values)
    if state.exempt or not csrf.needs_origin_check(info, web, has_cookie):
        return None
    problem = csrf.origin_problem(info, web)
    if problem:
        return error_response(errors.csrf_origin(problem), info)
    if not has_cookie:
        return None  # no session to ride on: the origin was all there is to check
    try:
        expected = store.get(csrf.SESSION_KEY)
    except (StoreUnavailable, WebError) as exc:
        return error_response(as_web_error(exc) or store_unavailable(exc), info)
    if not csrf.token_matches(expected, _presented_token(request)):
        return error_response(errors.csrf_token_mismatch(), info)
    # Origin and token checked: Django's CsrfViewMiddleware.process_view (which
    # ``csrf_protect`` and every admin view run) returns at once for a request that carries
    # this attribute. Django sets it in its own ``_accept`` so that a request checked by the
    # middleware is not checked again by the decorator; it is not underscore-private but
    # not documented either, hence the tests that POST through a ``csrf_protect`` view and
    # the real admin with ``enforce_csrf_checks=True``: a Django that stops reading it
    # fails them (closed: its own check then refuses these requests, it lets none through).
    setattr(request, DJANGO_CSRF_DONE, True)
    return None


def bound_session(request: HttpRequest, needed_by: str) -> tuple[SessionStore, RequestSession]:
    """``request.session`` and the web core's request session it is bound to, or
    ``ImproperlyConfigured`` naming the middleware ``needed_by`` that needs them."""
    store = getattr(request, "session", None)
    state = store.request_state if isinstance(store, SessionStore) else None
    if not isinstance(store, SessionStore) or state is None:
        raise ImproperlyConfigured(
            f"{needed_by} needs SESSION_ENGINE = 'coatcheck.django' and "
            "coatcheck.django.middleware.SessionMiddleware before it in MIDDLEWARE"
        )
    return store, state


def _presented_token(request: HttpRequest) -> str | None:
    header = request.headers.get(csrf.HEADER) or request.META.get(settings.CSRF_HEADER_NAME)
    if header:
        return str(header)
    try:
        field = request.POST.get(csrf.FORM_FIELD) or request.POST.get(DJANGO_FORM_FIELD)
    except (UnreadablePostError, MultiPartParserError):
        return None
    return str(field) if field else None


@receiver(user_logged_out, dispatch_uid="coatcheck.django.logout")
def _logging_out(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``auth.logout()`` flushes the session next: mark it so the response expires the cookie
    as a logout (with ``Clear-Site-Data`` if ``COATCHECK_CLEAR_SITE_DATA`` is on)."""
    store = getattr(request, "session", None)
    if isinstance(store, SessionStore):
        store.mark_logout()


@receiver(got_request_exception, dispatch_uid="coatcheck.django.escaped")
def _escaped(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """A store failure raised outside a view (e.g. in another middleware) still becomes the 503:
    remember it for :meth:`SessionMiddleware.process_response`."""
    error = as_web_error(sys.exc_info()[1])
    if error is not None and request is not None:
        setattr(request, _ESCAPED, error)
