"""Connections a process inherited through ``fork()`` belong to its parent.

redis-py's own pool notices a fork (it compares process ids) and opens new connections in the
child; coatcheck's per-request command paths keep connections outside that pool, so they
register here instead. In a forked child every registered holder forgets what it inherited
before any code of the child can use it: two processes writing commands on one socket would
read each other's replies, which for a session store means one user's session in another's
request. No cost per command: ``os.register_at_fork`` runs once per fork.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Protocol


class Inheriting(Protocol):
    def forget_inherited(self) -> None:
        """Drop (without using) every connection made before the fork."""


_holders: weakref.WeakSet[Any] = weakref.WeakSet()
_kept: list[Any] = []  # inherited objects a child must not close (their sockets are shared)


def forget_in_child(holder: Inheriting) -> None:
    """Have ``holder.forget_inherited()`` run in every process forked from now on."""
    _holders.add(holder)


def keep(inherited: Any) -> None:
    """Keep inherited connections alive, unused, for the life of this child: collecting them
    would run their clean-up, which may talk to a socket the parent still uses."""
    _kept.append(inherited)


def detach_socket(fd: int) -> None:
    """Point an inherited socket's descriptor at ``/dev/null`` in this child.

    The parent's socket is untouched (the child only drops its own reference), and whatever
    the inherited connection object does when it is finally closed here (PostgreSQL's
    client library sends a Terminate message, which would end the parent's session with the
    server) goes nowhere.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _after_fork_in_child() -> None:
    for holder in list(_holders):
        holder.forget_inherited()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
