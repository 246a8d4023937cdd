"""vLLM's offline API (`from ondo import LLM, SamplingParams`) on SmolLM2-135M-Instruct Q4_1."""

from __future__ import annotations

import json
import subprocess

import pytest

from ondo import LLM, CompletionOutput, Logprob, RequestOutput, SamplingParams

KOREAN = ["안녕하세요, 제 이름은", "대한민국의 수도는", "인공지능의 미래는"]


def test_korean_best_of_returns_n_sorted_by_cumulative_logprob(llm: LLM):
    # vLLM's quickstart with best_of: 13 sequences generated, the 6 most likely returned.
    params = SamplingParams(top_k=5, top_p=1, temperature=1, n=6, best_of=13, max_tokens=64, stop=["\n\n"])
    outs = llm.generate(KOREAN, params)
    assert len(outs) == 3
    for prompt, out in zip(KOREAN, outs):
        assert isinstance(out, RequestOutput) and out.finished
        assert out.prompt == prompt and out.prompt_token_ids and out.prompt_logprobs is None
        assert [o.index for o in out.outputs] == list(range(6))
        assert all(isinstance(o, CompletionOutput) for o in out.outputs)
        cum = [o.cumulative_logprob for o in out.outputs]
        assert all(c is not None and c < 0 for c in cum)
        assert cum == sorted(cum, reverse=True)
        for o in out.outputs:
            assert o.finish_reason in ("stop", "length") and o.finished()
            assert 0 < len(o.token_ids) <= 64 and "\n\n" not in o.text


def test_prompt_forms_and_logprobs(llm: LLM):
    tok = llm.get_tokenizer()
    ids = tok.encode("The capital of France is")
    greedy = SamplingParams(temperature=0, max_tokens=8, logprobs=3, prompt_logprobs=2)
    a, b, c = llm.generate(["The capital of France is", ids, {"prompt_token_ids": ids}], greedy)
    assert a.prompt_token_ids == ids and b.prompt is None
    assert a.outputs[0].token_ids == b.outputs[0].token_ids == c.outputs[0].token_ids
    out = a.outputs[0]
    assert len(out.logprobs) == len(out.token_ids) == 8
    for tid, pos in zip(out.token_ids, out.logprobs):
        assert tid in pos and 3 <= len(pos) <= 4
        assert all(isinstance(k, int) and isinstance(v, Logprob) for k, v in pos.items())
        # greedy: the chosen token is the most likely one, rank 1
        assert pos[tid].rank == 1 and pos[tid].decoded_token == tok.decode([tid])
        assert pos[tid].logprob == max(v.logprob for v in pos.values())
    assert abs(out.cumulative_logprob - sum(p[t].logprob for t, p in zip(out.token_ids, out.logprobs))) < 1e-3
    assert a.prompt_logprobs[0] is None and len(a.prompt_logprobs) == len(ids)
    assert all(ids[i] in a.prompt_logprobs[i] for i in range(1, len(ids)))
    # one params object per prompt
    one, two = llm.generate(["a", "b"], [SamplingParams(max_tokens=2, temperature=0), SamplingParams(max_tokens=5, temperature=0)])
    assert (len(one.outputs[0].token_ids), len(two.outputs[0].token_ids)) == (2, 5)


def test_chat_renders_the_template_as_the_tokenizer_does(llm: LLM):
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
    tok = llm.get_tokenizer()
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "Answer briefly." in text
    assert tok.apply_chat_template(messages, add_generation_prompt=True) == tok.encode(text, add_special_tokens=False)
    (out,) = llm.chat(messages, SamplingParams(temperature=0, max_tokens=24))
    assert out.prompt == text and out.outputs[0].text.strip()
    # a list of conversations runs as one batch
    many = llm.chat([messages, [{"role": "user", "content": "안녕하세요!"}]], SamplingParams(temperature=0, max_tokens=8))
    assert len(many) == 2 and many[0].outputs[0].text == llm.generate(
        [{"prompt_token_ids": out.prompt_token_ids}], SamplingParams(temperature=0, max_tokens=8))[0].outputs[0].text


def test_stream_deltas_join_to_the_generated_text(llm: LLM):
    params = SamplingParams(temperature=0, max_tokens=40)
    prompt = "한국의 수도는 어디인가요? 답:"
    stream = llm.stream(prompt, params)
    pieces = list(stream)
    assert len(pieces) > 1
    whole = llm.generate(prompt, params)[0].outputs[0].text
    assert "".join(pieces) == whole == stream.output.outputs[0].text
    # no delta splits a Hangul syllable (only a length cut may leave a partial one at the very end)
    assert all("\ufffd" not in p for p in pieces[:-1])


def test_same_seed_same_text_as_ondo_generate(llm: LLM, smollm2: str, ondo_bin: str):
    prompt = "Once upon a time, in a small village,"
    params = SamplingParams(seed=1234, temperature=0.8, top_p=0.95, max_tokens=32)
    py = llm.generate([prompt], params)[0].outputs[0]
    cli = subprocess.run(
        [ondo_bin, "generate", smollm2, "--prompt", prompt, "--seed", "1234", "--temperature", "0.8",
         "--top-p", "0.95", "--max-tokens", "32", "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    rust = json.loads(cli.stdout.splitlines()[0])["outputs"][0]
    assert py.token_ids == rust["token_ids"] and py.text == rust["text"]
    # and a different seed gives a different text (the seed is what decides)
    other = llm.generate([prompt], params.replace(seed=4321))[0].outputs[0]
    assert other.token_ids != py.token_ids


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"temperature": -1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 2.0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"n": 0}, "n"),
        ({"n": 3, "best_of": 2}, "best_of"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 4, "min_tokens": 5}, "min_tokens"),
        ({"logprobs": -1}, "logprobs"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"stop": [""]}, "stop"),
        ({"stop_token_ids": [-1]}, "stop_token_ids"),
        ({"logit_bias": {1: float("inf")}}, "logit_bias"),
        ({"temperature": 0, "n": 2}, "n"),
    ],
)
def test_bad_params_raise_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError) as e:
        SamplingParams(**kwargs)
    assert str(e.value).startswith(field + " "), str(e.value)


def test_params_checked_against_the_model_at_generate(llm: LLM):
    with pytest.raises(ValueError, match="^stop_token_ids contains out-of-vocab"):
        llm.generate("hi", SamplingParams(stop_token_ids=[10**7]))
    p = SamplingParams()
    p.temperature = -2  # changed after construction: the engine checks again
    with pytest.raises(ValueError, match="temperature"):
        llm.generate("hi", p)
    with pytest.raises(ValueError, match="prompt is empty"):
        llm.generate([[]], SamplingParams())


def test_defaults_are_vllms():
    p = SamplingParams()
    assert (p.n, p.best_of, p.temperature, p.top_p, p.top_k, p.min_p, p.max_tokens) == (1, None, 1.0, 1.0, 0, 0.0, 16)
    assert (p.presence_penalty, p.frequency_penalty, p.repetition_penalty) == (0.0, 0.0, 1.0)
    assert p.skip_special_tokens and not p.ignore_eos and p.stop is None and p.logprobs is None
    assert SamplingParams(stop="\n").stop == ["\n"]


def test_missing_model_raises_file_not_found_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(FileNotFoundError) as e:
        LLM(model=str(missing))
    assert e.value.filename == str(missing) and str(missing) in str(e.value)


def test_unreadable_model_raises_os_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(OSError, match="bad.gguf"):
        LLM(model=str(bad))


def test_max_model_len_and_kv_cache_memory(smollm2: str):
    small = LLM(model=smollm2, max_model_len=24, kv_cache_memory="64MiB", show_progress=False)
    ids = small.get_tokenizer().encode("The capital of France is")
    out = small.generate([ids], SamplingParams(temperature=0, max_tokens=None, ignore_eos=True))[0].outputs[0]
    assert len(ids) + len(out.token_ids) == 24 and out.finish_reason == "length"
    with pytest.raises(ValueError, match="max_model_len=24"):
        small.generate(["word " * 40], SamplingParams())
    with pytest.raises(ValueError, match="^max_model_len must be"):
        LLM(model=smollm2, max_model_len=10**9)
    with pytest.raises(ValueError, match="^kv_cache_memory"):
        LLM(model=smollm2, kv_cache_memory="lots")
    with pytest.raises(ValueError, match="^dtype"):
        LLM(model=smollm2, dtype="float16")
