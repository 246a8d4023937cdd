"""vLLM's ``SamplingParams``: the same fields, names and defaults, validated at construction.

The rules are not written here: construction hands the object to the engine
(``ondo._ondo.check_params``), which applies ``ondo_engine::SamplingParams::validate`` — the
same checks ``ondo generate`` and ``ondo serve`` run — and raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from . import _ondo

LogprobsMode = Literal["raw_logprobs", "processed_logprobs"]


@dataclass(kw_only=True)
class SamplingParams:
    """Sampling and stopping parameters of a request (vLLM's fields and defaults)."""

    n: int = 1
    best_of: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    logit_bias: dict[int, float] | None = None
    allowed_token_ids: list[int] | None = None
    logprobs_mode: LogprobsMode = "raw_logprobs"

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        elif self.stop is not None:
            self.stop = list(self.stop)
        if self.stop_token_ids is not None and not isinstance(self.stop_token_ids, (str, bytes)):
            self.stop_token_ids = list(self.stop_token_ids)
        _ondo.check_params(self)

    def clone(self) -> SamplingParams:
        """A deep copy (vLLM's ``SamplingParams.clone``)."""
        return copy.deepcopy(self)

    def replace(self, **changes: Any) -> SamplingParams:
        """A validated copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return SamplingParams(**values)

    @classmethod
    def from_optional(cls, **kwargs: Any) -> SamplingParams:
        """Like the constructor, but a field given as None takes its default."""
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    @classmethod
    def _from_engine_json(cls, text: str) -> SamplingParams:
        """The engine's ``SamplingParams`` JSON (model defaults) as this class."""
        raw = json.loads(text)
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in names}
        if values.get("logit_bias") == {}:
            values["logit_bias"] = None
        elif values.get("logit_bias"):
            values["logit_bias"] = {int(k): v for k, v in values["logit_bias"].items()}
        if values.get("stop") == []:
            values["stop"] = None
        if values.get("stop_token_ids") == []:
            values["stop_token_ids"] = None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
