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
class StructuredOutputsParams:
    """vLLM's structured outputs: set exactly one of ``json`` (a JSON schema, as a dict or its
    JSON text), ``json_object``, ``regex``, ``choice`` or ``grammar`` (llguidance's Lark).

    The engine checks which are set when the ``SamplingParams`` is made, and compiles the
    constraint when a request is submitted: a schema it cannot follow raises ``ValueError``
    naming the keyword. vLLM's tuning options that ondo does not have raise ``ValueError``.
    """

    json: str | dict[str, Any] | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    disable_fallback: bool = False
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: str | None = None
    structural_tag: str | None = None

    def __post_init__(self) -> None:
        if self.choice is not None and not isinstance(self.choice, str):
            self.choice = list(self.choice)
        for name in ("disable_any_whitespace", "disable_additional_properties", "whitespace_pattern", "structural_tag"):
            if getattr(self, name) not in (None, False):
                raise ValueError(f"StructuredOutputsParams.{name} is not supported by ondo")


# vLLM's name before v0.12 (``SamplingParams(guided_decoding=GuidedDecodingParams(...))``).
GuidedDecodingParams = StructuredOutputsParams


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
    structured_outputs: StructuredOutputsParams | dict[str, Any] | None = None
    # the older name of ``structured_outputs``
    guided_decoding: StructuredOutputsParams | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.guided_decoding is not None:
            if self.structured_outputs not in (None, self.guided_decoding):
                raise ValueError("give structured_outputs or guided_decoding (its older name), not both")
            self.structured_outputs = self.guided_decoding
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
