"""Between Django's request/response objects and the sans-I/O web core."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseRedirectBase

from ..core.errors import StoreUnavailable
from ..web.errors import WebError, store_unavailable
from ..web.guards import Redirect
from ..web.request import RequestInfo
from ..web.settings import SAFE_METHODS
from ..web.wsgi import EnvironHeaders
from .conf import Config, get_config

_INFO_ATTR = "_coatcheck_request_info"


def request_info(request: HttpRequest, config: Config | None = None) -> RequestInfo:
    """The request as the web core sees it (built once per request).

    Scheme and host come from Django (``SECURE_PROXY_SSL_HEADER``, ``ALLOWED_HOSTS`` and
    ``USE_X_FORWARDED_HOST`` apply), the rest from ``request.META``, which is the WSGI environ
    or Django's ASGI equivalent.
    """
    info: RequestInfo | None = getattr(request, _INFO_ATTR, None)
    if info is None:
        meta = request.META
        method = request.method or "GET"
        headers: Mapping[str, str] = EnvironHeaders(meta)
        if method.upper() not in SAFE_METHODS:
            # Origin checks compare against the host Django vouches for (ALLOWED_HOSTS,
            # USE_X_FORWARDED_HOST); reads need only the raw Host, and get_host() costs.
            headers = {**headers, "host": request.get_host()}
        if config is None:
            config = get_config()
        # Without SECURE_PROXY_SSL_HEADER, request.scheme is the WSGI server's
        # wsgi.url_scheme (META is the WSGI environ): read directly, as the property looks the
        # setting up in Django's lazy settings first, which costs more than the rest of this.
        # ASGI requests (no such key) ask the property.
        scheme = None if config.proxy_ssl_header else meta.get("wsgi.url_scheme")
        info = RequestInfo(
            method,
            request.path,
            scheme or request.scheme or "http",
            headers,
            meta.get("REMOTE_ADDR"),
            meta.get("QUERY_STRING", ""),
        )
        setattr(request, _INFO_ATTR, info)
    return info


def as_web_error(exc: BaseException | None) -> WebError | None:
    """The deliberate HTTP answer for a session-layer failure, or None for anything else."""
    if isinstance(exc, WebError):
        return exc
    if isinstance(exc, StoreUnavailable):
        return store_unavailable(exc)
    return None


def error_response(error: WebError, info: RequestInfo | None) -> HttpResponse:
    """``error`` rendered for a browser (HTML) or an API client (JSON), never a traceback."""
    status, headers, body = error.render(info)
    response = HttpResponse(body, status=status)
    for name, value in headers:
        if name == "set-cookie":
            add_set_cookie(response, value)
        elif name != "content-length":  # Django computes it
            response[name] = value
    return response


def redirect_response(redirect: Redirect) -> HttpResponse:
    return HttpResponseSeeOther(redirect.location)


class HttpResponseSeeOther(HttpResponseRedirectBase):
    """303: the browser follows with a GET, whatever the method was."""

    status_code = 303


def add_set_cookie(response: HttpResponse, header: str) -> None:
    """Put a ``Set-Cookie`` value built by :class:`~coatcheck.cookies.CookieSettings` into
    ``response.cookies`` (where Django, its test client and other middleware look for it)."""
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header)
    response.cookies.update(parsed)
