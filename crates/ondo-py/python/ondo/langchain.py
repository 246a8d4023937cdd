"""LangChain classes on the ondo engine (needs ``langchain-core``: ``pip install ondo[langchain]``).

- ``OndoLLM``: a ``langchain_core`` ``LLM`` (text in, text out). ``invoke``; ``stream`` yields the
  engine's text deltas as they come; ``batch`` runs every prompt in one engine batch;
  ``from_model_id`` mirrors ``HuggingFacePipeline.from_model_id``.
- ``ChatOndo``: a ``BaseChatModel`` with ChatOpenAI's field names (``max_tokens``,
  ``temperature``, ``top_p``, ``seed``, ``stop``); messages are rendered by the model's chat
  template.

Models are loaded once per (path, options) and shared by every instance that names them.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.llms import LLM as _LangChainLLM
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict, Field

from .llm import LLM
from .sampling_params import SamplingParams

__all__ = ["OndoLLM", "ChatOndo"]

_lock = threading.Lock()
_loaded: dict[tuple[str, tuple[tuple[str, Any], ...]], LLM] = {}


def _shared_llm(model: str, kwargs: dict[str, Any]) -> LLM:
    key = (model, tuple(sorted(kwargs.items())))
    with _lock:
        if key not in _loaded:
            _loaded[key] = LLM(model, **kwargs)
        return _loaded[key]


def _merge_stop(own: Optional[list[str]], call: Optional[list[str]]) -> Optional[list[str]]:
    stops = [*(own or []), *(call or [])]
    return stops or None


class _OndoBase:
    """What both classes share: the model, its defaults and how params are built."""

    def _llm(self) -> LLM:
        llm = getattr(self, "llm", None)
        if llm is not None:
            return llm
        return _shared_llm(self.model, dict(self.model_kwargs or {}))

    def _sampling(self, max_tokens: Optional[int], stop: Optional[list[str]], kwargs: dict[str, Any]) -> SamplingParams:
        base = self._llm().get_default_sampling_params()
        values: dict[str, Any] = {"max_tokens": max_tokens if max_tokens is not None else base.max_tokens}
        for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed", "min_p"):
            v = kwargs.pop(name, getattr(self, name, None))
            values[name] = v if v is not None else getattr(base, name)
        values["stop"] = _merge_stop(getattr(self, "stop", None), stop)
        return SamplingParams(**values)


class OndoLLM(_OndoBase, _LangChainLLM):
    """A local model as a LangChain ``LLM``: ``PromptTemplate.from_template(...) | OndoLLM(model=...)``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = ""
    """A model folder, a ``.gguf`` file or a hub id."""
    llm: Optional[LLM] = Field(default=None, exclude=True)
    """An already loaded ``ondo.LLM`` (instead of ``model``)."""
    max_new_tokens: int = 256
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    repetition_penalty: Optional[float] = None
    seed: Optional[int] = None
    stop: Optional[list[str]] = None
    model_kwargs: Optional[dict[str, Any]] = None
    """Arguments of ``ondo.LLM`` (``max_model_len``, ``kv_cache_memory``, ...)."""

    @classmethod
    def from_model_id(
        cls,
        model_id: str,
        task: str = "text-generation",
        device: Any = None,
        model_kwargs: Optional[dict[str, Any]] = None,
        pipeline_kwargs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> OndoLLM:
        """As ``HuggingFacePipeline.from_model_id``: ``pipeline_kwargs`` are generation settings."""
        if task != "text-generation":
            raise ValueError(f"task must be 'text-generation', got {task!r}")
        pk = dict(pipeline_kwargs or {})
        pk.pop("return_full_text", None)
        # transformers' generate: greedy unless do_sample; sampling defaults temperature 1, top_k 50.
        if pk.pop("do_sample", False):
            pk.setdefault("temperature", 1.0)
            pk.setdefault("top_k", 50)
        else:
            pk["temperature"] = 0.0
        fields = {k: pk.pop(k) for k in list(pk) if k in cls.model_fields}
        if pk:
            raise ValueError(f"pipeline_kwargs: unsupported keys {', '.join(sorted(pk))}")
        return cls(model=model_id, model_kwargs=model_kwargs, **fields, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "ondo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model or (self.llm.model if self.llm else ""), "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "seed": self.seed}

    def _call(self, prompt: str, stop: Optional[list[str]] = None,
              run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> str:
        params = self._sampling(self.max_new_tokens, stop, kwargs)
        return self._llm().generate([prompt], params)[0].outputs[0].text

    def _generate(self, prompts: list[str], stop: Optional[list[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> LLMResult:
        """All prompts in one engine batch (LangChain's ``batch`` lands here with every input)."""
        params = self._sampling(self.max_new_tokens, stop, kwargs)
        outs = self._llm().generate(prompts, params)
        generations = [
            [Generation(text=o.text, generation_info={"finish_reason": o.finish_reason}) for o in out.outputs]
            for out in outs
        ]
        tokens = sum(len(out.prompt_token_ids) + sum(len(o.token_ids) for o in out.outputs) for out in outs)
        return LLMResult(generations=generations, llm_output={"token_usage": {"total_tokens": tokens}})

    def _stream(self, prompt: str, stop: Optional[list[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        params = self._sampling(self.max_new_tokens, stop, kwargs)
        stream = self._llm().stream(prompt, params)
        try:
            for delta in stream:
                chunk = GenerationChunk(text=delta)
                if run_manager:
                    run_manager.on_llm_new_token(delta, chunk=chunk)
                yield chunk
        finally:
            stream.close()


def _message_dict(m: BaseMessage) -> dict[str, Any]:
    if isinstance(m, SystemMessage):
        role = "system"
    elif isinstance(m, HumanMessage):
        role = "user"
    elif isinstance(m, AIMessage):
        role = "assistant"
    elif isinstance(m, ToolMessage):
        role = "tool"
    elif isinstance(m, ChatMessage):
        role = m.role
    else:
        raise ValueError(f"messages: unsupported message type {type(m).__name__}")
    return {"role": role, "content": m.content if isinstance(m.content, str) else m.text}


class ChatOndo(_OndoBase, BaseChatModel):
    """A local chat model as LangChain's ``BaseChatModel`` (fields named like ``ChatOpenAI``'s)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = ""
    llm: Optional[LLM] = Field(default=None, exclude=True)
    max_tokens: Optional[int] = 256
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    seed: Optional[int] = None
    stop: Optional[list[str]] = None
    model_kwargs: Optional[dict[str, Any]] = None

    @property
    def _llm_type(self) -> str:
        return "ondo-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed}

    def _generate(self, messages: list[BaseMessage], stop: Optional[list[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        params = self._sampling(self.max_tokens, stop, kwargs)
        out = self._llm().chat([_message_dict(m) for m in messages], params)[0]
        o = out.outputs[0]
        usage = {"input_tokens": len(out.prompt_token_ids), "output_tokens": len(o.token_ids),
                 "total_tokens": len(out.prompt_token_ids) + len(o.token_ids)}
        msg = AIMessage(content=o.text, usage_metadata=usage,
                        response_metadata={"finish_reason": o.finish_reason, "model_name": self.model})
        return ChatResult(generations=[ChatGeneration(message=msg, generation_info={"finish_reason": o.finish_reason})])

    def _stream(self, messages: list[BaseMessage], stop: Optional[list[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        params = self._sampling(self.max_tokens, stop, kwargs)
        stream = self._llm().stream_chat([_message_dict(m) for m in messages], params)
        try:
            for delta in stream:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                if run_manager:
                    run_manager.on_llm_new_token(delta, chunk=chunk)
                yield chunk
        finally:
            stream.close()
        if stream.output is not None:
            o = stream.output.outputs[0]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata={"finish_reason": o.finish_reason}))
