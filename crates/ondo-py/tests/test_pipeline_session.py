"""transformers' `pipeline("text-generation")` shapes and GPT4All-style chat sessions."""

from __future__ import annotations

import json

import pytest

import ondo
from ondo import LLM, SamplingParams

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def pipe(llm: LLM):
    # transformers' tutorial form; an LLM object may stand for the model, as a model object does there
    return ondo.pipeline("text-generation", model=llm)


def test_pipeline_on_messages_with_and_without_full_text(pipe, llm: LLM):
    new = pipe(MESSAGES, max_new_tokens=40, return_full_text=False)
    assert isinstance(new, list) and len(new) == 1 and set(new[0]) == {"generated_text"}
    answer = new[0]["generated_text"]
    assert isinstance(answer, str) and answer.strip()
    full = pipe(MESSAGES, max_new_tokens=40)
    conversation = full[0]["generated_text"]
    assert conversation[:2] == MESSAGES
    assert conversation[2] == {"role": "assistant", "content": answer}
    # greedy by default (no generation_config sets do_sample): the same as llm.chat at temperature 0
    assert answer == llm.chat(MESSAGES, SamplingParams(temperature=0, max_tokens=40))[0].outputs[0].text


def test_pipeline_on_text_and_lists(smollm2: str, pipe):
    by_task = ondo.pipeline(task="text-generation", model=smollm2)
    prompt = "The capital of France is"
    (row,) = by_task(prompt, max_new_tokens=12)
    assert row["generated_text"].startswith(prompt) and len(row["generated_text"]) > len(prompt)
    (new,) = pipe(prompt, max_new_tokens=12, return_full_text=False)
    assert prompt + new["generated_text"] == row["generated_text"]
    many = pipe([prompt, "한국의 수도는"], max_new_tokens=8)
    assert len(many) == 2 and all(len(r) == 1 for r in many)
    sampled = pipe(prompt, max_new_tokens=8, do_sample=True, temperature=0.9, top_k=20, num_return_sequences=3, seed=7)
    assert len(sampled) == 3 and all(r["generated_text"].startswith(prompt) for r in sampled)
    convs = pipe([MESSAGES, [{"role": "user", "content": "안녕하세요!"}]], max_new_tokens=8, return_full_text=False)
    assert len(convs) == 2 and all(isinstance(r[0]["generated_text"], str) for r in convs)


def test_pipeline_rejects_unknown_tasks_and_greedy_with_many_sequences(pipe):
    with pytest.raises(ValueError, match="task"):
        ondo.pipeline("summarization", model="x")
    with pytest.raises(ValueError, match="^n "):
        pipe("hi", num_return_sequences=2)


def test_pipeline_defaults_come_from_generation_config(smollm2_hf, tmp_path):
    # The HF folder with a generation_config.json that samples, as transformers would read it.
    folder = tmp_path / "smollm2-sampling"
    folder.mkdir()
    for f in smollm2_hf.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 7}))
    pipe = ondo.pipeline("text-generation", model=str(folder))
    p = pipe._params({})
    assert (p.temperature, p.top_p, p.top_k, p.max_tokens) == (pytest.approx(0.7), pytest.approx(0.9), 50, 7)
    assert pipe._params({"do_sample": False}).temperature == 0.0
    rows = pipe("The capital of France is", num_return_sequences=3, seed=3, return_full_text=False)
    assert len(rows) == 3 and all(0 < len(pipe.tokenizer.encode(r["generated_text"], add_special_tokens=False)) <= 8 for r in rows)
    # vLLM's LLM reads the same defaults (the engine's reading of the file)
    assert pipe.llm.get_default_sampling_params().temperature == pytest.approx(0.7)


def test_pipeline_without_generation_config_is_greedy(pipe):
    p = pipe._params({})
    assert (p.temperature, p.max_tokens) == (0.0, 256)
    s = pipe._params({"do_sample": True})
    assert (s.temperature, s.top_k, s.top_p) == (1.0, 50, 1.0)


def test_chat_session_keeps_history(llm: LLM):
    with llm.chat_session(system_prompt="You are a helpful assistant.") as s:
        first = s.generate("My name is Minji. Please remember my name.", max_tokens=40, temp=0)
        second = s.generate("What is my name?", max_tokens=40, temp=0)
    assert first.strip() and second.strip()
    assert [m["role"] for m in s.history] == ["system", "user", "assistant", "user", "assistant"]
    assert s.history[2]["content"] == first and s.history[4]["content"] == second
    # the second request's prompt is the whole conversation, first answer included ...
    assert first in s.last_output.prompt and "My name is Minji" in s.last_output.prompt
    # ... and the answer uses it
    assert "Minji" in second
    # a fresh session has no memory of it
    with llm.chat_session(system_prompt="You are a helpful assistant.") as fresh:
        alone = fresh.generate("What is my name?", max_tokens=40, temp=0)
    assert "Minji" not in alone


def test_chat_session_streams(llm: LLM):
    with llm.chat_session() as s:
        pieces = list(s.generate("Say hello in Korean.", max_tokens=20, temp=0, streaming=True))
    assert len(pieces) > 1 and s.history[-1] == {"role": "assistant", "content": "".join(pieces)}
