"""vLLM's result classes: ``RequestOutput``, ``CompletionOutput`` and ``Logprob``.

They are built from the engine's ``RequestOutput`` JSON (the form ``ondo generate --json``
prints). Logprobs are ``list[dict[int, Logprob]]``: per token, the top ``logprobs`` entries plus
the chosen token. ``rank`` is the entry's place among the top entries (1 = most likely); the
chosen token, when it is not among them, has ``rank=None`` (its exact rank is not computed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


PositionLogprobs = dict[int, Logprob]


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[PositionLogprobs] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: list[PositionLogprobs | None] | None
    outputs: list[CompletionOutput]
    finished: bool


def _position(raw: dict[str, float], top: int, texts: Callable[[int], str]) -> PositionLogprobs:
    entries = sorted(((int(k), v) for k, v in raw.items()), key=lambda kv: -kv[1])
    return {tid: Logprob(lp, i + 1 if i < top else None, texts(tid)) for i, (tid, lp) in enumerate(entries)}


def _token_texts(raw: dict[str, Any], decode_many: Callable[[list[int]], list[str]]) -> Callable[[int], str]:
    """One call to the tokenizer for every token id any logprob map names."""
    ids: set[int] = set()
    for o in raw["outputs"]:
        for pos in o.get("logprobs") or []:
            ids.update(int(k) for k in pos)
    for pos in raw.get("prompt_logprobs") or []:
        if pos:
            ids.update(int(k) for k in pos)
    order = sorted(ids)
    table = dict(zip(order, decode_many(order))) if order else {}
    return lambda tid: table.get(tid, "")


def request_output(
    text: str, logprobs: int | None, prompt_logprobs: int | None, decode_many: Callable[[list[int]], list[str]]
) -> RequestOutput:
    """A ``RequestOutput`` from the engine's JSON; ``logprobs``/``prompt_logprobs`` are what was asked."""
    raw = json.loads(text)
    texts = _token_texts(raw, decode_many) if (logprobs is not None or prompt_logprobs is not None) else (lambda _: "")
    outputs = [
        CompletionOutput(
            index=o["index"],
            text=o["text"],
            token_ids=o["token_ids"],
            cumulative_logprob=o.get("cumulative_logprob"),
            logprobs=None
            if o.get("logprobs") is None
            else [_position(pos, logprobs or 0, texts) for pos in o["logprobs"]],
            finish_reason=o.get("finish_reason"),
            stop_reason=o.get("stop_reason"),
        )
        for o in raw["outputs"]
    ]
    plp = raw.get("prompt_logprobs")
    return RequestOutput(
        request_id=raw.get("request_id", ""),
        prompt=raw.get("prompt"),
        prompt_token_ids=raw["prompt_token_ids"],
        prompt_logprobs=None
        if plp is None
        else [None if pos is None else _position(pos, prompt_logprobs or 0, texts) for pos in plp],
        outputs=outputs,
        finished=raw.get("finished", True),
    )
