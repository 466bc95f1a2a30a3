"""Changing flags: the small API the CLI and the admin API both call.

With a shared store (`shared`, what `shipyard serve` and the CLI of a project use), every change is
read-modify-compare-and-set against the store's flag set, retried on a conflict, so changes made
through different replicas at once never lose one another (flags/_shared.py); the new set is then
written to this machine's flag file (best effort), installed in the local store, and a notice
carrying only the revision is published on Redis, so every replica re-reads the store at once.

Without one (a bare `--file`), a change reads the flag file under a lock, validates the whole
result, bumps the revision, writes the file atomically and publishes the whole set to Redis.
"""

from __future__ import annotations

import fcntl
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shipyard.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.flags._model import (
    FlagDefinition,
    FlagSet,
    load_flag_file,
    parse_flag,
    parse_flag_set,
    write_flag_file,
)
from shipyard.flags._shared import SharedFlags, content_digest
from shipyard.flags._sync import CHANNEL, publish_flag_set, publish_notice

if TYPE_CHECKING:
    from shipyard.flags._evaluator import FlagStore
    from shipyard.flags._killswitch import KillDecision

T = TypeVar("T")
log = logging.getLogger("shipyard.flags")


class FlagValueError(ShipyardError):
    """A flag change was refused (a percentage outside 0-100, a flag without an on/off pair, ...)."""


def on_off_variants(flag: FlagDefinition) -> tuple[str, str]:
    """The (on, off) variant names of a flag: "on"/"off" if present, else the true/false variants."""
    names = flag.variants
    on = "on" if "on" in names else next((n for n, v in names.items() if v is True), None)
    off = "off" if "off" in names else next((n for n, v in names.items() if v is False), None)
    if on is None or off is None or on == off:
        raise FlagValueError(
            f"flag {flag.name!r} has no on/off variant pair (variants: {', '.join(names)})",
            hint='give it variants "on" and "off" (or a true and a false variant) to roll it out',
        )
    return on, off


def rollout_targeting(on: str, off: str, percent: float) -> dict[str, Any]:
    """A `fractional` split sending `percent` of targeting keys to `on`. Whole percentages use
    weights out of 100, others out of 10000 (0.01% steps); the `on` variant is listed first, so
    raising the percentage never moves a key that already had it."""
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not math.isfinite(percent):
        raise FlagValueError(f"the rollout percentage must be a number, got {percent!r}")
    if not 0 <= percent <= 100:
        raise FlagValueError(
            f"the rollout percentage must be between 0 and 100, got {percent:g}",
            hint="for example: shipyard flags rollout new_refund_flow 10",
        )
    if float(percent).is_integer():
        weight, total = int(percent), 100
    else:
        weight, total = round(percent * 100), 10000
    return {"fractional": [[on, weight], [off, total - weight]]}


def rollout_percent(flag: FlagDefinition) -> float | None:
    """The percentage a flag's targeting sends to its on variant, if it is a plain rollout split."""
    t = flag.targeting or {}
    frac = t.get("fractional") if len(t) == 1 else None
    if (
        not isinstance(frac, list)
        or len(frac) != 2
        or not all(isinstance(x, list) and len(x) == 2 for x in frac)
    ):
        return None
    try:
        on, _off = on_off_variants(flag)
    except FlagValueError:
        return None
    weights = {x[0]: x[1] for x in frac}
    total = sum(w for w in weights.values() if isinstance(w, int | float))
    if on not in weights or not total:
        return None
    return 100.0 * weights[on] / total


class FlagAdmin:
    """List and change the flags of a flag file.

    Args:
        file: the flag file (JSON, or YAML for .yaml/.yml); created on the first `set` if missing.
        redis_url: publish each change there (optional).
        store: a local store to update at once with each change (optional).
        channel: the Redis channel.
        shared: the flag set in the project's store: the truth every change goes to (optional).
        actor: who makes the changes, kept with each stored revision (api, cli, kill_switch, ...).
    """

    def __init__(
        self,
        file: Path | str,
        *,
        redis_url: str | None = None,
        store: FlagStore | None = None,
        channel: str = CHANNEL,
        shared: SharedFlags | None = None,
        actor: str = "api",
    ) -> None:
        self.file = Path(file)
        self.redis_url = redis_url
        self.store = store
        self.channel = channel
        self.shared = shared
        self.actor = actor
        self.published: int | None = None  # listeners reached by the last publish

    # reading -------------------------------------------------------------------------------------
    def flag_set(self) -> FlagSet:
        if self.shared is not None:
            return self.shared.current()
        if not self.file.exists():
            return FlagSet()
        return load_flag_file(self.file)

    def list(self) -> list[FlagDefinition]:
        """Every flag, by name."""
        return sorted(self.flag_set().flags.values(), key=lambda f: f.name)

    def get(self, name: str) -> FlagDefinition:
        return self._find(self.flag_set(), name)

    def _find(self, fs: FlagSet, name: str) -> FlagDefinition:
        flag = fs.flags.get(name)
        if flag is None:
            known = ", ".join(sorted(fs.flags)) or "none"
            raise NotFoundError(f"no flag named {name!r} in {self.file} (flags: {known})")
        return flag

    # changing ------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.file.with_name(f".{self.file.name}.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two admins at once: the second waits, then re-reads
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _change(self, edit: Callable[[FlagSet], tuple[FlagSet, T]]) -> T:
        if self.shared is not None:
            return self._change_shared(self.shared, edit)
        with self._locked():
            current = self.flag_set()
            changed, result = edit(current)
            # re-validate the whole set: a flag may refer to $evaluators, names must stay unique
            data = changed.with_revision(current.revision + 1).to_json()
            new = parse_flag_set(data, str(self.file))
            write_flag_file(new, self.file)
        if self.store is not None:
            self.store.replace(new)
        if self.redis_url:
            self.published = publish_flag_set(new, self.redis_url, channel=self.channel)
        return result

    def _change_shared(self, shared: SharedFlags, edit: Callable[[FlagSet], tuple[FlagSet, T]]) -> T:
        new, result = shared.change(edit, actor=self.actor, source=str(self.file), file_digest=content_digest)
        self._export(new)
        if self.store is not None and new.revision > self.store.revision:
            self.store.replace(new)  # a notice may have brought a later revision already
        self.published = None
        if self.redis_url:
            try:
                self.published = publish_notice(new.revision, self.redis_url, channel=self.channel)
            except Exception as e:  # the change is stored; the others catch up by their poll
                log.warning("flags: could not publish revision %d on redis (%s)", new.revision, e)
        return result

    def _export(self, flag_set: FlagSet) -> None:
        """Write the stored set to this machine's flag file (its content counts as seen by the
        store, so it is never imported back); a file that cannot be written is only logged."""
        try:
            with self._locked():
                write_flag_file(flag_set, self.file)
        except OSError as e:
            log.warning(
                "flags: revision %d is stored but %s could not be written (%s)",
                flag_set.revision,
                self.file,
                e,
            )

    def set(self, name: str, definition: Mapping[str, Any]) -> FlagDefinition:
        """Create or replace a flag with a flagd definition (validated; errors give `flags.NAME.field`)."""

        def edit(fs: FlagSet) -> tuple[FlagSet, FlagDefinition]:
            flag = parse_flag(name, dict(definition), fs.evaluators)
            return fs.with_flag(flag), flag

        return self._change(edit)

    def update(self, name: str, change: Callable[[FlagDefinition], FlagDefinition]) -> FlagDefinition:
        """Change an existing flag with a function of its current definition."""

        def edit(fs: FlagSet) -> tuple[FlagSet, FlagDefinition]:
            flag = change(self._find(fs, name))
            try:
                flag = parse_flag(name, flag.to_json(), fs.evaluators)
            except ConfigError as e:
                raise FlagValueError(f"flag {name!r}: " + "; ".join(e.problems)) from None
            return fs.with_flag(flag), flag

        return self._change(edit)

    def enable(self, name: str, *, variant: str | None = None) -> FlagDefinition:
        """Set the flag's state to ENABLED; with `variant`, also make it the default variant."""

        def change(f: FlagDefinition) -> FlagDefinition:
            if variant is not None and variant not in f.variants:
                raise FlagValueError(
                    f"{variant!r} is not a variant of flag {name!r} (variants: {', '.join(f.variants)})"
                )
            meta = {k: v for k, v in f.metadata.items() if k != "killSwitchTripped"}
            return f.replace(state="ENABLED", default_variant=variant or f.default_variant, metadata=meta)

        return self.update(name, change)

    def disable(self, name: str, *, decision: KillDecision | None = None) -> FlagDefinition:
        """Set the flag's state to DISABLED (callers get their code default); a kill switch passes
        its decision, which is kept in the flag's metadata as `killSwitchTripped`."""

        def change(f: FlagDefinition) -> FlagDefinition:
            meta = dict(f.metadata)
            if decision is not None:
                meta["killSwitchTripped"] = decision.to_dict()
            return f.replace(state="DISABLED", metadata=meta)

        return self.update(name, change)

    def rollout(self, name: str, percent: float) -> FlagDefinition:
        """Serve the flag's "on" variant to `percent` of targeting keys (sticky), the rest "off".
        Replaces the flag's targeting and enables it."""

        def change(f: FlagDefinition) -> FlagDefinition:
            on, off = on_off_variants(f)
            return f.replace(state="ENABLED", targeting=rollout_targeting(on, off, percent))

        return self.update(name, change)

    def delete(self, name: str) -> FlagDefinition:
        """Remove a flag."""

        def edit(fs: FlagSet) -> tuple[FlagSet, FlagDefinition]:
            flag = self._find(fs, name)
            rest = {n: f for n, f in fs.flags.items() if n != name}
            return FlagSet(rest, fs.evaluators, fs.metadata), flag

        return self._change(edit)
