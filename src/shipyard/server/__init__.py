"""The ASGI server: gateway routes, admin API, dashboard, `/metrics`, health, and the journal.

A lazy face (`shipyard._lazy`): `shipyard serve` checks its config, store, Redis and port before the
app's modules (routes, dashboard, metrics) load, so a start that fails does so at once."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.server._app import ROUTES, create_app
    from shipyard.server._auth import ROLES, KeyRing, create_key, hash_key, new_key
    from shipyard.server._connections import uvicorn_config
    from shipyard.server._dead_letters import DeadLetterSink, dead_letter_folder, read_dead_letter_files
    from shipyard.server._guard import is_loopback
    from shipyard.server._journal import Journal, decode_record, encode, read_journal
    from shipyard.server._preflight import StartupError, bind_socket, check_redis, configured_redis
    from shipyard.server._rollout_api import require_gate
    from shipyard.server._serve import serve
    from shipyard.server._state import ServerState
    from shipyard.server._steps import RECORD_STEPS

__all__ = [
    "RECORD_STEPS",
    "ROLES",
    "ROUTES",
    "DeadLetterSink",
    "Journal",
    "KeyRing",
    "ServerState",
    "StartupError",
    "bind_socket",
    "check_redis",
    "configured_redis",
    "create_app",
    "create_key",
    "dead_letter_folder",
    "decode_record",
    "encode",
    "hash_key",
    "is_loopback",
    "new_key",
    "read_dead_letter_files",
    "read_journal",
    "require_gate",
    "serve",
    "uvicorn_config",
]

if not TYPE_CHECKING:  # mypy sees no __getattr__, so a misspelt import is still an error
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
