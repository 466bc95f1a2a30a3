"""Feature flags (`flags:` in shipyard.yaml). Owned by the flags work.

```yaml
flags:
  file: flags.json        # flagd flag file (JSON or YAML), relative to the project
  poll_interval_s: 1.0    # how often replicas check the file and the store's flag revision
  redis_url: null         # publish / listen for changes; SHIPYARD_REDIS_URL or REDIS_URL override
```
"""

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class FlagsConfig(StrictModel):
    """Where the project's flags live and how replicas hear about changes."""

    file: str = Field("flags.json", description="the flagd flag file, relative to the project folder")
    poll_interval_s: float = Field(
        1.0, gt=0, le=60, description="how often the file's mtime and the store's flag revision are checked"
    )
    redis_url: str | None = Field(None, description="Redis for change notices (env vars override)")
    channel: str = Field("shipyard:flags", min_length=1, description="the Redis pub/sub channel")
