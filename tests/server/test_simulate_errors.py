"""`shipyard simulate` names why nothing succeeded from what the server answered: a key it needs or
refuses (401), a key without the role (403), an agent it does not serve (404), no server at all; and a
`--url` it cannot use is quoted as given."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from cli_runner import invoke_cli
from click.testing import Result
from server_helpers import Served, free_port

from shipyard.server import create_key


def simulate(*args: str, api_key: str | None = None) -> Result:
    """`shipyard simulate ARGS` as a user runs it, in this process (its messages are what is checked,
    not a process of its own; SHIPYARD_API_KEY set only when `api_key` is given)."""
    env = {"COLUMNS": "400", "SHIPYARD_API_KEY": api_key or ""}
    return invoke_cli("simulate", "--rps", "20", "--duration", "2", "--seed", "1", *args, env=env)


@pytest.fixture
def keyed(serve_project: Callable[..., Served]) -> Served:
    """A loopback server that needs keys (one exists and was read)."""
    served = serve_project()
    create_key(served.state.store, "admin")
    served.state.keys.refresh()
    assert served.state.keys.enabled
    return served


def error_of(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_a_server_that_needs_a_key_says_so(keyed: Served) -> None:
    said = error_of(simulate("--agent", "support", "--url", keyed.url))
    assert f"got HTTP 401 from {keyed.url}: an API key is required" in said
    assert "pass one with --api-key KEY or set SHIPYARD_API_KEY" in said
    assert "shipyard keys create --role invoke" in said
    assert "is the server running" not in said


def test_a_key_the_server_refuses_says_so(keyed: Served) -> None:
    said = error_of(simulate("--url", keyed.url, "--api-key", "shp_0123abcd_" + "x" * 43))
    assert "HTTP 401" in said and "the API key is not valid (unknown or revoked)" in said
    assert "--api-key (or SHIPYARD_API_KEY) is not one this server knows" in said


def test_a_key_without_the_invoke_role_says_so(keyed: Served) -> None:
    reader = create_key(keyed.state.store, "read")["key"]
    said = error_of(simulate("--url", keyed.url, api_key=reader))
    assert "HTTP 403" in said and "this key has role 'read'" in said
    assert "use a key with role invoke or admin" in said


def test_an_unknown_agent_names_the_served_ones(served: Served) -> None:
    said = error_of(simulate("--agent", "nosuch", "--url", served.url))
    assert "HTTP 404" in said and "no agent named 'nosuch' (served agents: " in said and "support" in said
    assert "--agent 'nosuch' is not served there" in said


def test_no_server_keeps_the_connection_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    said = error_of(simulate("--url", url))
    assert f"is the server running at {url}?" in said and "start it with `shipyard serve`" in said


@pytest.mark.parametrize("url", ["notaurl", "localhost:8000", "ftp://127.0.0.1:8000", ""])
def test_a_url_it_cannot_use_is_quoted_as_given(url: str) -> None:
    said = error_of(simulate("--url", url))
    assert f"--url must be a server's base URL such as http://127.0.0.1:8000, got {url!r}" in said


def test_a_url_beyond_this_machine_is_quoted_as_given() -> None:
    said = error_of(simulate("--url", "http://example.com:8000"))
    assert "only sends traffic to a server on this machine, not 'http://example.com:8000'" in said


def test_a_good_key_from_the_environment_gets_answers(keyed: Served) -> None:
    invoker = create_key(keyed.state.store, "invoke")["key"]
    result = simulate("--url", keyed.url, "--duration", "1", api_key=invoker)
    assert result.exit_code == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    found = re.search(r" ok (\d+) ", last)
    assert found is not None and int(found[1]) > 0, last
