"""The user model: one class, no table (the users are a built-in list, see ``users.py``)."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class DemoUser(AbstractBaseUser):
    """A user of the built-in list; built in memory, never saved."""

    username = models.CharField(max_length=150, primary_key=True)
    last_login = None  # nothing to write at login: there is no database
    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        managed = False
