"""A provider for the OpenFeature Python SDK, so code that uses OpenFeature reads Shipyard's flags.

```python
from openfeature import api
from shipyard.flags import FlagStore, ShipyardProvider

api.set_provider(ShipyardProvider(FlagStore.from_file("flags.json")))
api.get_client().get_boolean_value("new_refund_flow", False, EvaluationContext("user-42"))
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

from shipyard.flags._evaluator import EvaluationDetails, FlagStore
from shipyard.flags._model import FlagSet

_SCALAR_META = (bool, int, float, str)


class ShipyardProvider(AbstractProvider):
    """Resolves OpenFeature flags from a `FlagStore`; emits PROVIDER_CONFIGURATION_CHANGED when the
    store's flag set changes.

    Args:
        store: the flag store (kept current by a `FlagSync`, or changed through `FlagAdmin`).
    """

    def __init__(self, store: FlagStore) -> None:
        super().__init__()
        self.store = store
        store.on_change(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="shipyard")

    def _changed(self, flag_set: FlagSet) -> None:
        if hasattr(self, "_on_emit"):
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=sorted(flag_set.flags), message=f"revision {flag_set.revision}"
                )
            )

    def _resolve(
        self, key: str, default: Any, ctx: EvaluationContext | None, kind: str
    ) -> FlagResolutionDetails[Any]:
        data: dict[str, Any] = dict(ctx.attributes) if ctx is not None else {}
        if ctx is not None and ctx.targeting_key is not None:
            data["targetingKey"] = ctx.targeting_key
        d: EvaluationDetails = self.store.evaluate(key, default, data, kind=kind)
        meta = {k: v for k, v in self.store.metadata(key).items() if isinstance(v, _SCALAR_META)}
        return FlagResolutionDetails(
            value=d.value,
            error_code=OFErrorCode(d.error_code.value) if d.error_code else None,
            error_message=d.error_message,
            reason=d.reason.value,
            variant=d.variant,
            flag_metadata=meta,
        )

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, "boolean")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, "string")

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, "integer")

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        details = self._resolve(flag_key, default_value, evaluation_context, "number")
        if details.error_code is None:
            details.value = float(details.value)
        return details

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, "object")
