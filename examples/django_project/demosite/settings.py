"""Settings of the coatcheck Django example.

No database: the users are a built-in list (``demosite.users``) and the sessions live in
coatcheck's store (``COATCHECK_STORE_URL``, default ``sessions.db`` next to this project).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example default; set DJANGO_SECRET_KEY anywhere but on your own machine.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "coatcheck-example-secret-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver"
).split(",")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.messages",
    "coatcheck.django",
    "demosite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "coatcheck.django.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "coatcheck.django.middleware.CsrfMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demosite.urls"
WSGI_APPLICATION = "demosite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "coatcheck.django.context_processors.csrf",
            ],
        },
    },
]

DATABASES: dict[str, dict[str, str]] = {}
AUTH_USER_MODEL = "demosite.DemoUser"
AUTHENTICATION_BACKENDS = ["demosite.users.DemoBackend"]
LOGIN_URL = "/login"

# Sessions: coatcheck's engine, and the strictest cookie that still works. Plain-http requests
# to 127.0.0.1/localhost get the development cookie instead (`session`, no Secure), which
# coatcheck serves to loopback hosts only.
SESSION_ENGINE = "coatcheck.django"
SESSION_COOKIE_NAME = "__Host-session"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_PATH = "/"
SESSION_COOKIE_DOMAIN = None
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
COATCHECK_STORE_URL = os.environ.get("COATCHECK_STORE_URL") or f"sqlite:///{BASE_DIR}/sessions.db"
COATCHECK_IDLE_TIMEOUT = "30m"
COATCHECK_ABSOLUTE_LIFETIME = "12h"
COATCHECK_LOOPBACK_DEVELOPMENT = True
COATCHECK_EXEMPT_PATHS = ["/static/"]

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

USE_TZ = True
TIME_ZONE = "UTC"
