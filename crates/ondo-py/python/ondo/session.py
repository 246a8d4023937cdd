"""GPT4All-style chat sessions: ``with llm.chat_session(system_prompt=...) as s: s.generate(...)``.

The session keeps the conversation as chat messages and renders the whole history through the
model's chat template on every turn, so each answer sees the earlier ones.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .outputs import RequestOutput
from .sampling_params import SamplingParams


class ChatSession:
    """A conversation with history; ``generate`` answers the next user message."""

    def __init__(self, llm: Any, system_prompt: str | None = None, prompt_template: str | None = None) -> None:
        if prompt_template is not None and "{0}" not in prompt_template:
            raise ValueError("prompt_template must contain '{0}' where the user's message goes")
        self.llm = llm
        self.prompt_template = prompt_template
        self.history: list[dict[str, str]] = []
        if system_prompt:
            self.history.append({"role": "system", "content": system_prompt})
        self.last_output: RequestOutput | None = None

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 200,
        temp: float = 0.7,
        top_k: int = 40,
        top_p: float = 0.4,
        min_p: float = 0.0,
        repeat_penalty: float = 1.18,
        repeat_last_n: int = 64,
        n_batch: int = 8,
        n_predict: int | None = None,
        streaming: bool = False,
        callback: Callable[[int, str], bool] | None = None,
        seed: int | None = None,
    ) -> str | Iterator[str]:
        """GPT4All's ``generate`` (same defaults). ``repeat_last_n`` and ``n_batch`` are accepted
        for compatibility: ondo's repetition penalty covers the whole context."""
        user = self.prompt_template.format(prompt) if self.prompt_template else prompt
        params = SamplingParams(
            max_tokens=n_predict if n_predict is not None else max_tokens,
            temperature=temp,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            repetition_penalty=repeat_penalty,
            seed=seed,
        )
        self.history.append({"role": "user", "content": user})
        stream = self.llm.stream_chat(self.history, params)
        if streaming:
            return self._stream(stream, callback)
        text = "".join(self._stream(stream, callback))
        return text

    def _stream(self, stream: Any, callback: Callable[[int, str], bool] | None) -> Iterator[str]:
        pieces: list[str] = []
        try:
            for delta in stream:
                pieces.append(delta)
                yield delta
                if callback is not None and callback(0, delta) is False:
                    stream.close()
                    break
        finally:
            self.history.append({"role": "assistant", "content": "".join(pieces)})
            self.last_output = stream.output
