"""The `shipyard` command line: Typer commands, one module per command group."""

from __future__ import annotations

import gc

# Each module registers its commands on `app` when imported; no garbage collection walks the modules
# and classes meanwhile (they live as long as the process).
_collecting = gc.isenabled()
gc.disable()
try:
    from shipyard.cli import cache as _cache  # noqa: F401  (cache show/clear)
    from shipyard.cli import ci as _ci  # noqa: F401  (ci run/init, approve, checklist)
    from shipyard.cli import core as _core  # noqa: F401  (init, run, versions, version)
    from shipyard.cli import cost as _cost  # noqa: F401  (cost report)
    from shipyard.cli import demo as _demo  # noqa: F401
    from shipyard.cli import evals as _evals  # noqa: F401  (eval run/compare/import, gate, gate approve)
    from shipyard.cli import flags as _flags  # noqa: F401  (flags list/get/set/enable/disable/rollout)
    from shipyard.cli import guardrails as _guardrails  # noqa: F401  (guardrails scan/check)
    from shipyard.cli import incidents as _incidents  # noqa: F401  (incidents list/show/triage/promote)
    from shipyard.cli import mock_llm as _mock_llm  # noqa: F401
    from shipyard.cli import prompts as _prompts  # noqa: F401
    from shipyard.cli import redteam as _redteam  # noqa: F401  (redteam generate)
    from shipyard.cli import rollout as _rollout  # noqa: F401  (deploy, rollout ..., experiment ...)
    from shipyard.cli import routing as _routing  # noqa: F401  (routing evaluate/fit)
    from shipyard.cli import serve as _serve  # noqa: F401  (serve, keys, alerts, traces)
    from shipyard.cli import shadow as _shadow  # noqa: F401  (shadow replay against a candidate)
    from shipyard.cli import simulate as _simulate  # noqa: F401
    from shipyard.cli import store as _store  # noqa: F401  (store dead-letters list/show/retry)
    from shipyard.cli._app import app, own_process, settle
finally:
    if _collecting:
        gc.enable()


def main() -> None:
    """The `shipyard` command."""
    own_process()
    try:
        app()
    finally:
        settle()  # on again if no command ran (`--help`, a usage error), for a caller that goes on
        # the process ends here: the interpreter's last collections would walk every object it
        # built (a fifth of a short command's CPU) only to free them as the process exits anyway
        gc.freeze()


__all__ = ["app", "main"]
