"""ondo: open language models on your own machine, from Python, on the Rust ondo engine.

Change one import and keep the script:

- vLLM: ``from ondo import LLM, SamplingParams`` (``RequestOutput``, ``CompletionOutput``,
  ``Logprob``, ``StructuredOutputsParams``), ``llm.generate``, ``llm.chat``,
  ``llm.get_tokenizer()``, plus ``llm.stream``;
- transformers: ``ondo.pipeline("text-generation", model=...)``;
- GPT4All: ``with llm.chat_session(system_prompt=...) as s: s.generate(..., max_tokens=...)``;
- LangChain: ``from ondo.langchain import OndoLLM, ChatOndo``.
"""

from .llm import LLM, TextStream
from .outputs import CompletionOutput, Logprob, RequestOutput
from .pipeline import TextGenerationPipeline, pipeline
from .sampling_params import GuidedDecodingParams, SamplingParams, StructuredOutputsParams
from .session import ChatSession
from .tokenizer import Tokenizer

__all__ = [
    "LLM",
    "SamplingParams",
    "StructuredOutputsParams",
    "GuidedDecodingParams",
    "RequestOutput",
    "CompletionOutput",
    "Logprob",
    "Tokenizer",
    "TextStream",
    "ChatSession",
    "pipeline",
    "TextGenerationPipeline",
]
__version__ = "0.1.0"
