"""Async sources of the stores that have native async drivers (PostgreSQL, Redis)."""
