"""The one wording for "install the extra": stores and web adapters whose optional dependency
is missing all say which ``pip install 'coatcheck[...]'`` brings it."""

from __future__ import annotations


def extra_hint(extra: str, needer: str, exc: ImportError) -> str:
    """``{needer}: pip install 'coatcheck[{extra}]' (No module named '...')``, one line."""
    return f"{needer}: pip install 'coatcheck[{extra}]' ({exc})"


def missing_extra(extra: str, needer: str, exc: ImportError) -> ImportError:
    """The import error to raise (``from exc``) when an adapter's framework is not installed:
    the same class and module name as ``exc``, so ``except ModuleNotFoundError`` still
    matches, with the hint as its message."""
    return type(exc)(extra_hint(extra, needer, exc), name=exc.name, path=exc.path)
