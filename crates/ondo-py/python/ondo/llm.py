"""vLLM's offline API: ``LLM(model=...)``, ``generate``, ``chat``, plus ``stream`` and
``chat_session``.

Every call submits all of its prompts to the model's one batching engine at once (the Rust
``ondo_engine`` engine thread), with the GIL released while it runs; Ctrl-C cancels them.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator, Sequence, Union

from . import _ondo
from .outputs import RequestOutput, request_output
from .sampling_params import SamplingParams
from .tokenizer import Tokenizer, messages_json

PromptType = Union[str, Sequence[int], dict]

# vLLM arguments that mean nothing on a CPU engine (accepted so scripts run unchanged).
_IGNORED = {"gpu_memory_utilization", "enforce_eager", "trust_remote_code", "swap_space", "disable_log_stats",
            "enable_prefix_caching", "quantization", "tokenizer_mode", "download_dir", "revision"}

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30}


def _bytes(field: str, v: int | str | None) -> int | None:
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"{field} must be a positive number of bytes, got {v}")
        return v
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(v))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{field} must be bytes (an int, or a size such as '4GiB'), got {v!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class LLM:
    """A model loaded from a folder, a ``.gguf`` file or a hub id, as vLLM's ``LLM``."""

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        max_model_len: int | None = None,
        kv_cache_memory: int | str | None = None,
        seed: int | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        num_threads: int | None = None,
        offline: bool | None = None,
        show_progress: bool = True,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - _IGNORED
        if unknown:
            raise TypeError(f"LLM() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        if dtype != "auto":
            raise ValueError(f"dtype must be 'auto' (weights run in the dtype they are stored in), got {dtype!r}")
        if tensor_parallel_size != 1:
            raise ValueError(f"tensor_parallel_size must be 1 on ondo, got {tensor_parallel_size}")
        if tokenizer not in (None, model):
            raise ValueError("tokenizer: ondo uses the model's own tokenizer; leave it unset")
        if seed is not None and seed < 0:
            seed %= 2**64
        if offline is None:
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        show_progress = show_progress and not os.environ.get("ONDO_NO_PROGRESS")
        self.model = os.fspath(model)
        self._engine = _ondo.Engine(
            self.model,
            max_model_len=max_model_len,
            kv_cache_memory=_bytes("kv_cache_memory", kv_cache_memory),
            seed=seed,
            threads=num_threads,
            offline=offline,
            progress=show_progress,
        )
        self._tokenizer = Tokenizer(self._engine)

    # ---- vLLM's methods ----

    def get_tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def get_default_sampling_params(self) -> SamplingParams:
        """The model's generation_config.json defaults (greedy unless it sets do_sample), else vLLM's."""
        return SamplingParams._from_engine_json(self._engine.default_params_json())

    def generate(
        self,
        prompts: PromptType | Sequence[PromptType],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[RequestOutput]:
        """Every prompt through the batching engine at once; one ``RequestOutput`` each, in order."""
        items = _prompt_list(prompts)
        params = self._params_list(sampling_params, len(items))
        return self._run(items, params, [None] * len(items))

    def chat(
        self,
        messages: Sequence[Any] | Sequence[Sequence[Any]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
        chat_template: str | None = None,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        **_: Any,
    ) -> list[RequestOutput]:
        """One conversation or a list of them, rendered by the model's chat template."""
        if chat_template is not None:
            raise ValueError("chat_template: ondo renders the model's own template; leave it unset")
        conversations = [messages] if _is_conversation(messages) else list(messages)
        texts = [self._render(c, add_generation_prompt, continue_final_message) for c in conversations]
        ids = [self._tokenizer.encode(t, add_special_tokens=False) for t in texts]
        return self._run(ids, self._params_list(sampling_params, len(ids)), texts)

    # ---- streaming ----

    def stream(self, prompt: PromptType, sampling_params: SamplingParams | None = None) -> TextStream:
        """An iterator of text deltas as the engine produces them (``n`` must be 1); afterwards
        ``.output`` is the ``RequestOutput``. Closing it (or breaking out of a ``for``) cancels."""
        params = sampling_params if sampling_params is not None else self.get_default_sampling_params()
        if params.n != 1 or (params.best_of or 1) != 1:
            raise ValueError("n and best_of must be 1 to stream")
        (item,) = _prompt_list(prompt)
        return TextStream(self._engine.stream(item, params), params, self._engine, None)

    def stream_chat(
        self, messages: Sequence[Any], sampling_params: SamplingParams | None = None
    ) -> TextStream:
        """``stream`` for one conversation, rendered by the chat template."""
        params = sampling_params if sampling_params is not None else self.get_default_sampling_params()
        if params.n != 1 or (params.best_of or 1) != 1:
            raise ValueError("n and best_of must be 1 to stream")
        text = self._render(messages, True, False)
        ids = self._tokenizer.encode(text, add_special_tokens=False)
        return TextStream(self._engine.stream(ids, params), params, self._engine, text)

    def chat_session(self, system_prompt: str | None = None, prompt_template: str | None = None) -> Any:
        """A GPT4All-style session that keeps the conversation (``with llm.chat_session() as s``)."""
        from .session import ChatSession

        return ChatSession(self, system_prompt=system_prompt, prompt_template=prompt_template)

    # ---- internals ----

    def _render(self, conversation: Sequence[Any], add_generation_prompt: bool, continue_final: bool) -> str:
        return self._engine.render_chat(messages_json(conversation), add_generation_prompt, continue_final)

    def _params_list(self, sp: Any, count: int) -> list[SamplingParams]:
        if sp is None:
            return [self.get_default_sampling_params()] * count
        if isinstance(sp, SamplingParams):
            return [sp] * count
        sp = list(sp)
        if len(sp) != count:
            raise ValueError(f"sampling_params: got {len(sp)} for {count} prompts")
        return sp

    def _run(self, items: list[Any], params: list[SamplingParams], texts: list[str | None]) -> list[RequestOutput]:
        raw = self._engine.generate(items, params)
        outs = []
        for r, p, t in zip(raw, params, texts):
            out = request_output(r, p.logprobs, p.prompt_logprobs, self._engine.token_texts)
            if t is not None:
                out.prompt = t
            outs.append(out)
        return outs

    @property
    def engine_stats(self) -> dict[str, int]:
        """The engine's counters: running/waiting/finished/aborted requests, prompt and generated tokens."""
        return self._engine.stats()

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r})"


class TextStream:
    """Text deltas of one request; ``.output`` is its ``RequestOutput`` once exhausted."""

    def __init__(self, inner: _ondo.TextStream, params: SamplingParams, engine: _ondo.Engine, prompt: str | None):
        self._inner, self._params, self._engine, self._prompt = inner, params, engine, prompt
        self.output: RequestOutput | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            _index, text = next(self._inner)
        except StopIteration:
            if self.output is None and self._inner.output_json is not None:
                out = request_output(self._inner.output_json, self._params.logprobs,
                                     self._params.prompt_logprobs, self._engine.token_texts)
                if self._prompt is not None:
                    out.prompt = self._prompt
                self.output = out
            raise
        return text

    def close(self) -> None:
        """Cancel the request."""
        self._inner.close()

    def __del__(self) -> None:
        inner = getattr(self, "_inner", None)
        if inner is not None:
            inner.close()


def _is_conversation(x: Any) -> bool:
    """One conversation (a list of messages) rather than a list of conversations."""
    seq = list(x) if not isinstance(x, (str, dict)) else [x]
    return bool(seq) and not isinstance(seq[0], (list, tuple))


def _prompt_list(prompts: Any) -> list[str | list[int]]:
    """vLLM's prompt forms: a str, token ids, ``{"prompt": ...}``/``{"prompt_token_ids": ...}``, or lists of them."""
    if isinstance(prompts, (str, dict)):
        prompts = [prompts]
    elif isinstance(prompts, Sequence) and prompts and isinstance(prompts[0], int):
        prompts = [prompts]
    out: list[str | list[int]] = []
    for p in prompts:
        if isinstance(p, dict):
            if "prompt_token_ids" in p:
                out.append(list(p["prompt_token_ids"]))
            elif "prompt" in p:
                out.append(p["prompt"])
            else:
                raise ValueError(f"prompts: expected 'prompt' or 'prompt_token_ids' in {p!r}")
        elif isinstance(p, str):
            out.append(p)
        elif isinstance(p, Sequence) and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            out.append(list(p))
        else:
            raise ValueError(f"prompts: expected str or a list of token ids, got {p!r}")
    return out
