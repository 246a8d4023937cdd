"""The model's tokenizer with the methods scripts call on transformers' tokenizers."""

from __future__ import annotations

import json
from typing import Any, Sequence

from . import _ondo

Message = dict[str, Any]


def messages_json(conversation: Sequence[Any]) -> str:
    """A conversation (dicts, or objects with ``role``/``content``) as the engine's JSON."""
    out = []
    for m in conversation:
        if isinstance(m, dict):
            out.append(m)
        elif hasattr(m, "role") and hasattr(m, "content"):
            out.append({"role": m.role, "content": m.content})
        else:
            raise ValueError(f"messages: expected dicts with 'role' and 'content', got {m!r}")
    return json.dumps(out, ensure_ascii=False)


class Tokenizer:
    """``llm.get_tokenizer()``: encode, decode and the chat template."""

    def __init__(self, engine: _ondo.Engine) -> None:
        self._engine = engine

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._engine.encode(text, add_special_tokens)

    def decode(self, token_ids: Sequence[int] | int, skip_special_tokens: bool = False) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        return self._engine.decode(ids, skip_special_tokens)

    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(s, skip_special_tokens) for s in sequences]

    def __call__(self, text: str | list[str], add_special_tokens: bool = True) -> dict[str, Any]:
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in text]}

    def apply_chat_template(
        self,
        conversation: Sequence[Any],
        tokenize: bool = True,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        **_: Any,
    ) -> str | list[int]:
        """transformers' defaults: ids unless ``tokenize=False``; no assistant header unless asked."""
        text = self._engine.render_chat(messages_json(conversation), add_generation_prompt, continue_final_message)
        if not tokenize:
            return text
        # The template wrote the special tokens: none are added again (no double BOS).
        return self.encode(text, add_special_tokens=False)

    @property
    def chat_template(self) -> str | None:
        return self._engine.chat_template

    @property
    def eos_token_id(self) -> int | None:
        return self._engine.eos_token_id

    @property
    def bos_token_id(self) -> int | None:
        return self._engine.bos_token_id

    @property
    def pad_token_id(self) -> int | None:
        return self._engine.pad_token_id

    @property
    def eos_token(self) -> str | None:
        return self._engine.eos_token

    @property
    def bos_token(self) -> str | None:
        return self._engine.bos_token

    @property
    def vocab_size(self) -> int:
        return self._engine.vocab_size

    def __len__(self) -> int:
        return self._engine.vocab_size
