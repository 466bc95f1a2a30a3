"""Gate policies per CI/CD stage (`gates:` in shipyard.yaml). Owned by the evals work."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class StagePolicy(StrictModel):
    """What a stage's gate requires."""

    suites: list[str] = Field(default_factory=list)


class GatesConfig(StrictModel):
    """`gates:` maps a stage (pre-merge, post-merge, production) to its policy."""

    pre_merge: StagePolicy | None = Field(None, alias="pre-merge")
    post_merge: StagePolicy | None = Field(None, alias="post-merge")
    production: StagePolicy | None = None
