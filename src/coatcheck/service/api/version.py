"""The version the OpenAPI document states: the installed distribution's (read through
``importlib.metadata``, since the package root sits above the service in the layering)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    SERVICE_VERSION = version("coatcheck")
except PackageNotFoundError:  # run from a source tree that was never installed
    SERVICE_VERSION = "0+unknown"
