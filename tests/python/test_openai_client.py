"""The real `openai` client against `ondo serve` (SmolLM2-135M-Instruct)."""

import openai
import pytest
from openai import OpenAI

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_list(client: OpenAI, model: str):
    models = client.models.list()
    assert [m.id for m in models.data] == [model]
    assert models.data[0].object == "model"


def test_chat_plain(client: OpenAI, model: str):
    r = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=24, temperature=0)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == model
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    u = r.usage
    assert 0 < u.completion_tokens <= 24
    assert u.prompt_tokens > 5
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_streaming_matches_plain(client: OpenAI, model: str):
    args = dict(model=model, messages=QUESTION, max_tokens=24, temperature=0)
    plain = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args))
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert with_choices[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == plain.choices[0].message.content
    assert not chunks[-1].choices
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    assert len({c.id for c in chunks}) == 1


def test_chat_sampling_params_and_logprobs(client: OpenAI, model: str):
    r = client.chat.completions.create(
        model=model, messages=QUESTION, max_tokens=6, temperature=0.8, top_p=0.9, seed=7, n=2,
        logprobs=True, top_logprobs=3, stop=["\n\n"], presence_penalty=0.5, frequency_penalty=0.5,
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1},
    )
    assert [c.index for c in r.choices] == [0, 1]
    for c in r.choices:
        lp = c.logprobs.content
        assert 0 < len(lp) <= 6
        assert all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in lp)


def test_streamed_logprobs_equal_the_answers(client: OpenAI, model: str):
    """Each chunk carries its tokens' logprobs; joined, they are the non-streamed answer's
    (greedy, so both runs pick the same tokens), on both endpoints."""
    chat = dict(model=model, messages=QUESTION, max_tokens=12, temperature=0, logprobs=True, top_logprobs=2)
    plain = client.chat.completions.create(**chat).choices[0].logprobs.content
    chunks = [c for c in client.chat.completions.create(**chat, stream=True) if c.choices]
    carrying = [c.choices[0].logprobs.content for c in chunks if c.choices[0].logprobs]
    assert len(carrying) > 1, "logprobs come with the chunks, not all at the end"
    streamed = [t for part in carrying for t in part]
    assert [t.model_dump() for t in streamed] == [t.model_dump() for t in plain]

    args = dict(model=model, prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2)
    whole = client.completions.create(**args).choices[0].logprobs
    joined = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in client.completions.create(**args, stream=True):
        for key, values in joined.items():
            if chunk.choices and chunk.choices[0].logprobs:
                values.extend(getattr(chunk.choices[0].logprobs, key))
    assert joined == {key: getattr(whole, key) for key in joined}


def test_completions(client: OpenAI, model: str):
    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2)
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-")
    c = r.choices[0]
    assert c.text.strip()
    assert c.finish_reason in ("stop", "length")
    assert len(c.logprobs.tokens) == r.usage.completion_tokens
    assert "".join(c.logprobs.tokens) == c.text
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completions_streaming_and_many_prompts(client: OpenAI, model: str):
    args = dict(model=model, prompt=["1, 2, 3,", "Hello, my name is"], max_tokens=6, temperature=0)
    plain = client.completions.create(**args)
    assert sorted(c.index for c in plain.choices) == [0, 1]
    texts = {0: "", 1: ""}
    finish = {}
    for chunk in client.completions.create(stream=True, **args):
        for c in chunk.choices:
            texts[c.index] += c.text
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    assert texts == {c.index: c.text for c in plain.choices}
    assert finish == {c.index: c.finish_reason for c in plain.choices}


def test_wrong_key_is_401(base_url: str, model: str):
    bad = OpenAI(base_url=base_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=model, messages=QUESTION, max_tokens=2)


def test_errors_in_openai_shape(client: OpenAI, model: str):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=QUESTION, max_tokens=2)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=QUESTION, temperature=-1)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=QUESTION, max_tokens=10**6)
    assert e.value.body["code"] == "context_length_exceeded"
