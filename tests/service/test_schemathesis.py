"""Schemathesis against ``/openapi.json`` of the service on SQLite, with an admin key: no
operation answers with a server error, and every answer has a documented status, content type
and shape. ``/v1/events`` is left out: it is an endless stream (tests/service/test_api_stores.py
covers it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from coatcheck.service.app import create_app
from coatcheck.service.settings import ServiceSettings
from service.conftest import service_keys, service_settings, uvicorn_server

EXAMPLES_PER_OPERATION = 25
KEYS: dict[str, str] = {}
ALWAYS = [not_a_server_error, content_type_conformance, response_schema_conformance]
CHECKS = {
    GenerationMode.POSITIVE: [*ALWAYS, status_code_conformance],
    GenerationMode.NEGATIVE: ALWAYS,
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The document as a real server on loopback serves it (one event loop for the store)."""
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{directory}/service.db"
    KEYS["admin"], KEYS["introspect"] = service_keys(url, directory)
    with uvicorn_server(create_app(service_settings(url, directory))) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def operations() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation but the stream, with valid inputs and, where it takes any,
    with invalid ones; read from the document of an app built and never started (no I/O)."""
    document = create_app(ServiceSettings(store_url="memory://")).openapi()
    cases = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path == "/v1/events":
                continue
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), operations())
def test_the_api_keeps_its_document(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    """Positive cases (valid by the document) must get a documented status; negative ones
    (wrong types, unknown fields, bad path parameters, control characters that make a path no
    route matches) may also meet a 404, but never a server error, and always a problem."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def conforms(case: Any) -> None:
        case.call_and_validate(
            headers={"authorization": f"Bearer {KEYS['admin']}"},
            checks=CHECKS[mode],
        )

    conforms()
