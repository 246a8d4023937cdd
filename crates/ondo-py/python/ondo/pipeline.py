"""transformers-style ``pipeline("text-generation", model=...)`` with transformers' result shapes.

- text in: ``[{"generated_text": prompt + new text}]`` (only the new text with
  ``return_full_text=False``), one dict per ``num_return_sequences``;
- chat messages in: ``generated_text`` is the conversation with the assistant's message appended
  (the new text only with ``return_full_text=False``);
- a list of inputs gives a list of such lists. Every input of a call runs in one engine batch.

Defaults come from the model's generation_config.json as transformers reads it: greedy unless
``do_sample``; sampling without settings uses transformers' temperature 1.0, top_k 50, top_p 1.0.
"""

from __future__ import annotations

import json
from typing import Any

from .llm import LLM, _is_conversation
from .sampling_params import SamplingParams

# transformers' TextGenerationPipeline default when generation_config sets no length.
DEFAULT_MAX_NEW_TOKENS = 256


def pipeline(task: str | None = None, model: str | LLM | None = None, **kwargs: Any) -> TextGenerationPipeline:
    """``pipeline("text-generation", model=...)`` (also ``pipeline(task=..., model=...)``)."""
    if task not in ("text-generation", None):
        raise ValueError(f"task must be 'text-generation' (the one ondo runs), got {task!r}")
    if model is None:
        raise ValueError("model: give a model folder, a .gguf file or a hub id")
    for ignored in ("device", "device_map", "torch_dtype", "dtype", "trust_remote_code", "framework", "use_fast",
                    "tokenizer", "revision", "token"):
        kwargs.pop(ignored, None)
    model_kwargs = kwargs.pop("model_kwargs", None) or {}
    llm = model if isinstance(model, LLM) else LLM(model, **model_kwargs)
    return TextGenerationPipeline(llm, **kwargs)


class TextGenerationPipeline:
    """Callable on a str, a list of str, one conversation or a list of conversations."""

    task = "text-generation"

    def __init__(self, llm: LLM, **generate_kwargs: Any) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._defaults = generate_kwargs
        raw = llm._engine.generation_config
        self.generation_config: dict[str, Any] = json.loads(raw) if raw else {}

    def __call__(self, text_inputs: Any, **kwargs: Any) -> list[Any]:
        kw = {**self._defaults, **kwargs}
        return_full_text = kw.pop("return_full_text", True)
        params = self._params(kw)
        if isinstance(text_inputs, str):
            return self._run_text([text_inputs], params, return_full_text)[0]
        inputs = list(text_inputs)
        if inputs and isinstance(inputs[0], dict):
            return self._run_chat([inputs], params, return_full_text)[0]
        if inputs and all(isinstance(x, str) for x in inputs):
            return self._run_text(inputs, params, return_full_text)
        if inputs and all(not isinstance(x, str) and _is_conversation(x) for x in inputs):
            return self._run_chat([list(c) for c in inputs], params, return_full_text)
        raise ValueError("text_inputs: expected a str, a list of str, a list of messages or a list of conversations")

    def _params(self, kw: dict[str, Any]) -> SamplingParams:
        gen = self.generation_config
        do_sample = kw.pop("do_sample", gen.get("do_sample", False))
        max_new = kw.pop("max_new_tokens", None) or gen.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS
        values: dict[str, Any] = {
            "max_tokens": max_new,
            "min_tokens": kw.pop("min_new_tokens", 0),
            "n": kw.pop("num_return_sequences", 1),
            "repetition_penalty": kw.pop("repetition_penalty", gen.get("repetition_penalty", 1.0)),
            "seed": kw.pop("seed", None),
        }
        stop = kw.pop("stop_strings", None)
        if stop is not None:
            values["stop"] = stop
        temperature, top_k, top_p = kw.pop("temperature", None), kw.pop("top_k", None), kw.pop("top_p", None)
        if do_sample:
            # transformers' GenerationConfig defaults where generation_config.json says nothing
            values["temperature"] = temperature if temperature is not None else gen.get("temperature", 1.0)
            values["top_k"] = top_k if top_k is not None else gen.get("top_k", 50)
            values["top_p"] = top_p if top_p is not None else gen.get("top_p", 1.0)
        else:
            values["temperature"] = 0.0
        for ignored in ("pad_token_id", "eos_token_id", "max_length", "clean_up_tokenization_spaces", "return_tensors"):
            kw.pop(ignored, None)
        if kw:
            raise TypeError(f"unexpected generation arguments: {', '.join(sorted(kw))}")
        return SamplingParams(**values)

    def _run_text(self, prompts: list[str], params: SamplingParams, full: bool) -> list[list[dict[str, Any]]]:
        outs = self.llm.generate(prompts, params)
        return [[{"generated_text": (p + o.text) if full else o.text} for o in out.outputs] for p, out in zip(prompts, outs)]

    def _run_chat(self, conversations: list[list[dict[str, Any]]], params: SamplingParams, full: bool) -> list[Any]:
        # A conversation ending with an assistant message is continued, as transformers does.
        continuing = [bool(c) and c[-1].get("role") == "assistant" for c in conversations]
        groups = [self.llm.chat(c, params, add_generation_prompt=not cont, continue_final_message=cont)[0]
                  for c, cont in zip(conversations, continuing)] if any(continuing) else \
            self.llm.chat(conversations, params)
        results = []
        for conv, cont, out in zip(conversations, continuing, groups):
            rows = []
            for o in out.outputs:
                if not full:
                    rows.append({"generated_text": o.text})
                elif cont:
                    last = dict(conv[-1], content=conv[-1]["content"] + o.text)
                    rows.append({"generated_text": [*conv[:-1], last]})
                else:
                    rows.append({"generated_text": [*conv, {"role": "assistant", "content": o.text}]})
            results.append(rows)
        return results
