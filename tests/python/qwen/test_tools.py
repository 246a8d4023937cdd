"""Tool calling and structured output with the real `openai` client against `ondo serve` on
Qwen2.5-Coder-1.5B-Instruct (run.sh's second server): a weather call with tool_choice auto and
required, streamed and not (streamed arguments arrive in pieces, equal to the
non-streamed call's); the second turn with the tool's result answers in text; bad
schemas, tools and tool choices are 400s and the server keeps serving."""

import json

import openai
import pytest
from openai import OpenAI

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def check_arguments(text: str) -> dict:
    args = json.loads(text)
    assert isinstance(args.get("city"), str) and args["city"], args
    assert set(args) <= {"city", "unit"}, args
    assert args.get("unit", "celsius") in ("celsius", "fahrenheit"), args
    return args


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_weather_call(client: OpenAI, model: str, choice: str):
    r = client.chat.completions.create(
        model=model, messages=QUESTION, tools=[WEATHER], tool_choice=choice, temperature=0, max_tokens=80
    )
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    call = c.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert "paris" in check_arguments(call.function.arguments)["city"].lower()


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_weather_call_streamed(client: OpenAI, model: str, choice: str):
    stream = client.chat.completions.create(
        model=model, messages=QUESTION, tools=[WEATHER], tool_choice=choice, temperature=0, max_tokens=80, stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for tc in delta.tool_calls or []:
            if tc.index not in calls:
                # the first delta of a call carries its id, type and name
                assert tc.id and tc.type == "function" and tc.function.name, tc
                calls[tc.index] = {"name": tc.function.name, "arguments": ""}
            calls[tc.index]["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather"
    check_arguments(calls[0]["arguments"])


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_streamed_arguments_come_in_pieces_and_equal_the_answer(client: OpenAI, model: str, choice):
    """The call's name arrives first, then its arguments as they are generated (in more than
    one chunk), and at temperature 0 they are the non-streamed call's arguments."""
    ask = dict(model=model, messages=QUESTION, tools=[WEATHER], tool_choice=choice, temperature=0, max_tokens=80)
    answer = client.chat.completions.create(**ask).choices[0].message.tool_calls[0]
    name, pieces = None, []
    for chunk in client.chat.completions.create(**ask, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            assert tc.index == 0, tc
            if tc.function.name:
                assert name is None and not pieces, "the name comes first, once"
                name = tc.function.name
            elif tc.function.arguments:
                pieces.append(tc.function.arguments)
    assert name == answer.function.name == "get_weather"
    assert len(pieces) > 1, pieces
    assert json.loads("".join(pieces)) == json.loads(answer.function.arguments)
    check_arguments("".join(pieces))


def test_second_turn_answers_with_the_result(client: OpenAI, model: str):
    first = client.chat.completions.create(
        model=model, messages=QUESTION, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=80
    )
    call = first.choices[0].message.tool_calls[0]
    messages = QUESTION + [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "unit": "celsius"})},
    ]
    # Offered the tool again (tool_choice auto), this 1.5B model calls it again, though its
    # template renders the result correctly; "none" asks for the text answer.
    second = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=60
    )
    c = second.choices[0]
    assert c.finish_reason in ("stop", "length"), c
    assert not c.message.tool_calls
    assert "18" in c.message.content, c.message.content


def test_json_schema_response_format(client: OpenAI, model: str):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population_millions": {"type": "number", "minimum": 0}},
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Give the largest city of France and its population."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        temperature=0.7,
        max_tokens=60,
    )
    v = json.loads(r.choices[0].message.content)
    assert set(v) == {"city", "population_millions"} and v["population_millions"] >= 0, v


@pytest.mark.parametrize(
    "kwargs",
    [
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}}}},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "launch_rocket"}}},
        {"tools": [{"type": "function", "function": {"description": "no name"}}]},
        {"tools": {"type": "function"}},
    ],
)
def test_bad_input_is_a_400_and_the_server_keeps_serving(client: OpenAI, model: str, kwargs: dict):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, **kwargs)
    assert e.value.status_code == 400
    err = e.value.body
    assert err["message"] and err["type"] == "invalid_request_error" and err["param"], err
    ok = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4)
    assert ok.choices[0].message.content is not None
