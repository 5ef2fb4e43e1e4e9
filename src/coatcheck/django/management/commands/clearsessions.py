"""``manage.py clearsessions``: delete expired sessions from the coatcheck store (run from cron;
expired sessions are refused anyway, this only reclaims space)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...conf import get_manager


class Command(BaseCommand):
    help = "Delete expired sessions from the coatcheck session store."

    def handle(self, *args: Any, **options: Any) -> None:
        count = get_manager().purge()
        self.stdout.write(f"{count} expired session(s) deleted")
