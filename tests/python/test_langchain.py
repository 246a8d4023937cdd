"""LangChain's ChatOpenAI against `ondo serve`: invoke, stream and a `prompt | llm` chain."""

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI


@pytest.fixture(scope="module")
def llm(base_url: str, api_key: str, model: str) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0, max_tokens=24, max_retries=0)


def test_invoke(llm: ChatOpenAI):
    msg = llm.invoke("What is the capital of France?")
    assert isinstance(msg.content, str) and msg.content.strip()
    assert msg.usage_metadata["output_tokens"] > 0
    assert msg.response_metadata["finish_reason"] in ("stop", "length")


def test_stream_matches_invoke(llm: ChatOpenAI):
    question = "Name one colour of the rainbow."
    whole = llm.invoke(question).content
    pieces = [chunk.content for chunk in llm.stream(question)]
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == whole


def test_prompt_pipe_llm_chain(llm: ChatOpenAI):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a helpful geography assistant."), ("human", "What is the capital of {country}?")]
    )
    chain = prompt | llm | StrOutputParser()
    answer = chain.invoke({"country": "France"})
    assert isinstance(answer, str) and answer.strip()
    # The chain sends the rendered prompt: the same answer as the messages sent directly.
    direct = llm.invoke([("system", "You are a helpful geography assistant."), ("human", "What is the capital of France?")])
    assert answer == direct.content
    answers = chain.batch([{"country": "France"}, {"country": "Italy"}])
    assert len(answers) == 2 and all(a.strip() for a in answers)
