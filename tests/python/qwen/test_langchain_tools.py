"""LangChain's `bind_tools` and `with_structured_output` (ChatOpenAI) against `ondo serve` on
Qwen2.5-Coder-1.5B-Instruct."""

import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"18 degrees in {city}"


class Capital(BaseModel):
    """The capital city of a country."""

    country: str = Field(description="The country")
    capital: str = Field(description="Its capital city")


@pytest.fixture(scope="module")
def llm(base_url: str, api_key: str, model: str) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0, max_tokens=80, max_retries=0)


def test_bind_tools(llm: ChatOpenAI):
    msg = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Seoul?")
    assert msg.tool_calls, msg
    call = msg.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str), call
    assert get_weather.invoke(call["args"])


def test_bind_tools_auto(llm: ChatOpenAI):
    msg = llm.bind_tools([get_weather]).invoke("What is the weather in Seoul?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather", msg


def test_with_structured_output(llm: ChatOpenAI):
    answer = llm.with_structured_output(Capital).invoke("What is the capital of France?")
    assert isinstance(answer, Capital)
    assert answer.capital.strip() and answer.country.strip()
