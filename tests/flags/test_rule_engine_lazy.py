"""The flag rule engine (`_jsonlogic`, `_flagd_ops` and its murmur hash) loads with the first flag that
has targeting: the flag store of a project without flags, or with flags without rules, does without."""

from __future__ import annotations

import subprocess
import sys
import textwrap

ENGINE = ("shipyard.flags._jsonlogic", "shipyard.flags._flagd_ops", "shipyard.flags._fractional", "mmh3")


def test_the_rule_engine_loads_with_the_first_targeting_rule() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from shipyard.flags import FlagStore, Reason, parse_flag_set, project_flags

        def loaded():
            return [m for m in {ENGINE!r} if m in sys.modules]

        store = FlagStore()
        plain = {{"state": "ENABLED", "variants": {{"on": True, "off": False}}, "defaultVariant": "off"}}
        store.replace(parse_flag_set({{"flags": {{"plain": plain}}}}))
        assert store.evaluate("plain", True).reason == Reason.STATIC
        assert loaded() == [], loaded()
        split = {{**plain, "targeting": {{"fractional": [["on", 50], ["off", 50]]}}}}
        store.replace(parse_flag_set({{"flags": {{"plain": plain, "split": split}}}}))
        assert loaded() == list({ENGINE!r}), loaded()
        assert store.evaluate("split", False, {{"targetingKey": "someone"}}).reason == Reason.SPLIT
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
