"""The hand-written OpenAPI document is true: every route is in it, and schemathesis finds no server error."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from server_helpers import HTTP, free_port, run_in_thread
from starlette.routing import Route

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.server import ROUTES, create_app
from shipyard.server._openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document(["support"]))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("openapi")
    copy_project(root)
    app = create_app(load_config(root / "shipyard.yaml"), log_stream=io.StringIO())
    port = free_port()
    server, thread = run_in_thread(app, port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


def test_every_route_is_documented() -> None:
    doc = openapi_document(["support"])
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {(r.path, m) for r in ROUTES if isinstance(r, Route) for m in (r.methods or []) if m != "HEAD"}
    assert served == documented


def test_the_served_document_is_the_written_one(base_url: str) -> None:
    assert HTTP.get(base_url + "/openapi.json").json() == openapi_document(["support"])


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url)
    assert response.status_code < 500 or (
        response.status_code in (502, 504) and case.path.startswith("/v1/")
    ), f"{case.method} {case.path} answered {response.status_code}: {response.text[:300]}"
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        response.json()  # every JSON answer parses, errors included
