"""Argument types shared by the command modules: durations and positive counts."""

from __future__ import annotations

import argparse

from ..config import parse_duration


def duration_arg(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``7d`` as seconds; argparse reports a malformed one."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
