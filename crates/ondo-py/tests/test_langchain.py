"""LangChain on the engine: `PromptTemplate | OndoLLM`, a two-step chain, `ChatOndo`."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installed (pip install ondo[langchain])")

from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import PromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from ondo import SamplingParams  # noqa: E402
from ondo.langchain import ChatOndo, OndoLLM  # noqa: E402


@pytest.fixture(scope="module")
def llm(smollm2: str) -> OndoLLM:
    return OndoLLM(model=smollm2, max_new_tokens=40, temperature=0)


def test_prompt_template_pipe_llm_invoke_and_stream(llm: OndoLLM):
    prompt = PromptTemplate.from_template("### 질문: {question}### 답변:")
    chain = prompt | llm
    question = {"question": "한국의 수도는 어디인가요?"}
    text = chain.invoke(question)
    assert isinstance(text, str) and text.strip()
    chunks = list(chain.stream(question))
    assert len(chunks) > 1
    assert "".join(chunks) == text


def test_batch_runs_through_the_engine_and_matches_invoke(llm: OndoLLM):
    prompt = PromptTemplate.from_template("Q: {q}\nA:")
    chain = prompt | llm
    qs = [{"q": "What is 2+2?"}, {"q": "Name a colour."}, {"q": "대한민국의 수도는?"}]
    before = llm._llm().engine_stats["requests_finished"]
    batch = chain.batch(qs)
    assert llm._llm().engine_stats["requests_finished"] - before == 3
    assert batch == [chain.invoke(q) for q in qs]


def test_two_step_chain_feeds_the_first_answer_to_the_second(llm: OndoLLM):
    first = PromptTemplate.from_template("Write a one-line title for a story about {topic}.\nTitle:")
    second = PromptTemplate.from_template("Write the first sentence of a story titled \"{title}\".\nStory:")
    seen: list[str] = []

    def keep(title: str) -> dict[str, str]:
        seen.append(title)
        return {"title": title.strip()}

    chain = first | llm | StrOutputParser() | RunnableLambda(keep) | second | llm | StrOutputParser()
    story = chain.invoke({"topic": "a lighthouse"})
    assert story.strip()
    title = (first | llm).invoke({"topic": "a lighthouse"})
    assert seen == [title]
    assert story == llm.invoke(second.format(title=title.strip()))


def test_from_model_id_mirrors_hugging_face_pipeline(smollm2: str, llm: OndoLLM):
    hf_style = OndoLLM.from_model_id(
        model_id=smollm2, task="text-generation", pipeline_kwargs={"max_new_tokens": 40, "do_sample": False}
    )
    assert hf_style.invoke("The capital of France is") == llm.invoke("The capital of France is")
    # as transformers' generate: greedy unless do_sample, which samples with top_k 50 by default
    greedy = OndoLLM.from_model_id(model_id=smollm2, task="text-generation", pipeline_kwargs={"max_new_tokens": 40})
    assert greedy.temperature == 0.0 and greedy.invoke("The capital of France is") == llm.invoke("The capital of France is")
    sampled = OndoLLM.from_model_id(model_id=smollm2, pipeline_kwargs={"do_sample": True, "temperature": 0.7})
    assert (sampled.temperature, sampled.top_k) == (0.7, 50)
    with pytest.raises(ValueError, match="task"):
        OndoLLM.from_model_id(model_id=smollm2, task="summarization")


def test_chat_ondo_with_openai_style_messages(smollm2: str):
    chat = ChatOndo(model=smollm2, max_tokens=40, temperature=0)
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who won the world series in 2020?"},
    ]
    msg = chat.invoke(messages)
    assert isinstance(msg, AIMessage) and msg.content.strip()
    assert msg.usage_metadata["output_tokens"] > 0
    assert msg.response_metadata["finish_reason"] in ("stop", "length")
    # the model's chat template, as ondo.LLM.chat renders it
    direct = chat._llm().chat(messages, SamplingParams(temperature=0, max_tokens=40))[0].outputs[0].text
    assert msg.content == direct
    # tuples and message objects are the same conversation
    assert chat.invoke([("system", messages[0]["content"]), ("human", messages[1]["content"])]).content == direct
    pieces = [c.content for c in chat.stream(messages)]
    assert len([p for p in pieces if p]) > 1 and "".join(pieces) == direct
    answers = chat.batch([messages, [("human", "안녕하세요!")]])
    assert answers[0].content == direct and answers[1].content.strip()
