"""How a running server picks up a changed config (`server.reload` in shipyard.yaml).

server:
  reload: {watch: true, interval_s: 2}

A server also reloads on SIGHUP and on `POST /admin/config/reload` (see `shipyard.server`).
"""

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class ReloadConfig(StrictModel):
    """Whether the server watches its files, and how often it looks."""

    watch: bool = Field(
        True,
        description="reload when shipyard.yaml, a prompt bundle or a scripted model's rules file changes "
        "(each replica checks its own files)",
    )
    interval_s: float = Field(2.0, gt=0, le=300, description="how often the files are checked (seconds)")
