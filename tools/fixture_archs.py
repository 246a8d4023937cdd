"""The tiny checkpoints of the architectures added after the first ones (Gemma 2, GPT-2,
GPT-NeoX, Phi-3), for tools/make_fixtures.py: their specs, their tokenizers, the extra prompts they
are tested on (code and a 200-token prompt besides English and Korean), and the old-checkpoint
naming GPT-2's hub files use. The GGUF twins are written by tools/fixture_gguf.py.

Imported by make_fixtures.py; not run on its own.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

CODE_PROMPT = (
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
    "for i in range(10):\n    print(i, fib(i))\n"
)

# Long enough for at least 200 tokens with every tokenizer here (checked when building).
LONG_PROMPT = (
    "Once upon a time there was a small robot who lived in a quiet village by the sea. "
    "Every morning it walked to the market, counted the boats, and wrote the numbers 12, 345 "
    "and 6789 in a little book. The farmer on the hill watched it and laughed, because the "
    "robot never missed a day, not even when the wind was cold and the sky stayed grey. "
    "안녕하세요. 오늘은 날씨가 좋네요. "
    "In the evening the robot cooked rice and soup, read a book about fish, and asked the cat "
    "why the sun rises in the east."
)
LONG_MIN_TOKENS = 200

GEMMA2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def gpt2_style_tokenizer(corpus: list[str], vocab_size: int, specials: list[str], digits: bool = False) -> Tokenizer:
    """Byte-level BPE with GPT-2's own pre-tokenizer (ByteLevel with its regex; with `digits`
    every digit split off first, as EXAONE's), no BOS added; specials appended after the trained
    vocabulary."""
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) if digits else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(specials),
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_special_tokens(specials)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    return tok


def make_tokenizer(kind: str, vocab_size: int, corpus: list[str]):
    """(Tokenizer, tokenizer_config, eos ids, bos id) for the kinds defined here, else None."""
    if kind == "gpt2":
        tok = gpt2_style_tokenizer(corpus, vocab_size, ["<|endoftext|>"])
        eot = tok.token_to_id("<|endoftext|>")
        # as GPT-2's hub tokenizer_config: decode removes spaces before punctuation
        cfg = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "clean_up_tokenization_spaces": True}
        return tok, cfg, [eot], eot
    if kind == "neox":
        tok = gpt2_style_tokenizer(corpus, vocab_size, ["<|endoftext|>", "<|sep|>", "<|unused0|>"])
        eot = tok.token_to_id("<|endoftext|>")
        cfg = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
        return tok, cfg, [eot], eot
    if kind == "exaone":
        specials = ["[PAD]", "[BOS]", "[|endofturn|]", "[|system|]", "[|user|]", "[|assistant|]"]
        tok = gpt2_style_tokenizer(corpus, vocab_size, specials, digits=True)
        cfg = {"bos_token": "[BOS]", "eos_token": "[|endofturn|]", "pad_token": "[PAD]"}
        return tok, cfg, [tok.token_to_id("[|endofturn|]")], tok.token_to_id("[BOS]")
    return None


EXAONE_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "[|system|]{{ message['content'] }}[|endofturn|]\n"
    "{% elif message['role'] == 'user' %}[|user|]{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}[|assistant|]{{ message['content'] }}[|endofturn|]\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}[|assistant|]{% endif %}"
)


NEW_SPECS = {
    "gemma2": {
        "tokenizer": "spm",
        "vocab_size": 512,
        "chat_template": ("tokenizer_config", GEMMA2_CHAT_TEMPLATE),
        "config_by_transformers": True,
        "extra_prompts": True,
        "gguf": "gemma2",
        # as gemma3: (1 + w) norms around 2, scaled tied embeddings kept small
        "init": {"norm_mean": 1.0, "embed_std": 0.15, "max_f32_error": 2e-5},
        "config": {
            "architectures": ["Gemma2ForCausalLM"],
            "model_type": "gemma2",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,  # not hidden / heads = 8
            "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "sliding_window": 8,  # layers 0 and 2 slide, layer 1 is full attention
            # = head_dim as in gemma-2-2b/9b: llama.cpp's GGUF has no key for it
            "query_pre_attn_scalar": 16,
            "attn_logit_softcapping": 4.0,  # small enough to bite on random weights
            "final_logit_softcapping": 8.0,
            "attention_bias": False,
            "tie_word_embeddings": True,
        },
    },
    "gpt2": {
        "tokenizer": "gpt2",
        "vocab_size": 448,
        "chat_template": None,
        "extra_prompts": True,
        "gguf": "gpt2",
        # hub-style old checkpoint: no `transformer.` prefix, attn.bias / attn.masked_bias buffers
        "old_checkpoint_names": True,
        "config": {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_inner": None,
            "n_positions": 512,
            "n_ctx": 512,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "tie_word_embeddings": True,
        },
    },
    "gptneox": {
        "tokenizer": "neox",
        "vocab_size": 480,
        "chat_template": None,
        "extra_prompts": True,
        "gguf": "gptneox",
        "config": {
            "architectures": ["GPTNeoXForCausalLM"],
            "model_type": "gpt_neox",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,  # head_dim 16, rotary over the first 4 dims
            "hidden_act": "gelu",
            "rotary_pct": 0.25,
            "rotary_emb_base": 10000,
            "max_position_embeddings": 512,
            "layer_norm_eps": 1e-5,
            "use_parallel_residual": True,
            "attention_bias": True,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            "tie_word_embeddings": False,
        },
    },
    # EXAONE 3.5's modeling code is remote code (not in transformers 5.23); its math is Llama's, so
    # the model and goldens are transformers' LlamaForCausalLM, and the folder is then rewritten
    # with EXAONE's config keys and tensor names (to_exaone).
    "exaone": {
        "tokenizer": "exaone",
        "vocab_size": 448,
        "chat_template": ("tokenizer_config", EXAONE_CHAT_TEMPLATE),
        "extra_prompts": True,
        "gguf": "exaone",
        "as_exaone": True,
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 6,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": True,
        },
    },
    "phi3": {
        "tokenizer": "spm",
        "vocab_size": 512,
        "chat_template": None,
        "extra_prompts": True,
        "gguf": "phi3",
        "config": {
            "architectures": ["Phi3ForCausalLM"],
            "model_type": "phi3",
            "pad_token_id": 0,  # the default 32000 is outside this vocabulary
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,  # head_dim 16: 8 rotary pairs
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 1024,
            # the 200+-token prompt is past it (long factors), every other prompt stays within it
            # for all its greedy steps (short factors)
            "original_max_position_embeddings": 128,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "rope_scaling": {
                "type": "longrope",
                "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
                "long_factor": [1.2, 1.9, 3.0, 4.6, 7.0, 10.5, 15.0, 21.0],
            },
            "sliding_window": 64,  # smaller than the long prompt
            "attention_bias": False,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "tie_word_embeddings": False,
        },
    },
}


def old_checkpoint_state(state: dict[str, torch.Tensor], n_layer: int, n_ctx: int) -> dict[str, torch.Tensor]:
    """GPT-2's hub files: names without `transformer.`, tied head left out, and the causal-mask
    buffers old transformers versions saved (a loader must ignore them; kept at 32x32 here
    instead of n_ctx x n_ctx to keep the fixture small)."""
    out = {k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"}
    n = min(n_ctx, 32)
    mask = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    for i in range(n_layer):
        out[f"h.{i}.attn.bias"] = mask.clone()
        out[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    return out


def allowed_unexpected(spec: dict) -> tuple[str, ...]:
    """Checkpoint keys transformers may report as unexpected for this spec."""
    return (".attn.bias", ".attn.masked_bias") if spec.get("old_checkpoint_names") else ()


def prompts_for(spec: dict, base: list[str]) -> list[str]:
    return base + [CODE_PROMPT, LONG_PROMPT] if spec.get("extra_prompts") else base


def check_config(folder, spec_cfg: dict) -> None:
    """transformers reads config.json the way the spec meant it (the specials under test)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(str(folder))
    t = spec_cfg["model_type"]
    if t == "gemma2":
        assert c.layer_types == ["sliding_attention", "full_attention", "sliding_attention"], c.layer_types
        for k in ("sliding_window", "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"):
            assert getattr(c, k) == spec_cfg[k], (k, getattr(c, k))
    elif t == "gpt_neox":
        assert c.rope_parameters["partial_rotary_factor"] == spec_cfg["rotary_pct"], c.rope_parameters
        assert c.use_parallel_residual is True
    elif t == "phi3":
        rp = c.rope_parameters
        assert rp["rope_type"] == "longrope" and rp["long_factor"] == spec_cfg["rope_scaling"]["long_factor"], rp
        assert c.original_max_position_embeddings == spec_cfg["original_max_position_embeddings"]
        assert c.sliding_window == spec_cfg["sliding_window"]
    elif t == "llama":
        assert c.rope_parameters["rope_type"] == spec_cfg["rope_scaling"]["rope_type"], c.rope_parameters
        assert c.num_key_value_heads < c.num_attention_heads
    elif t == "gpt2":
        assert c.n_embd == spec_cfg["n_embd"] and c.activation_function == "gelu_new"


EXAONE_NAMES = {
    "input_layernorm": "ln_1", "self_attn.q_proj": "attn.attention.q_proj",
    "self_attn.k_proj": "attn.attention.k_proj", "self_attn.v_proj": "attn.attention.v_proj",
    "self_attn.o_proj": "attn.attention.out_proj", "post_attention_layernorm": "ln_2",
    "mlp.gate_proj": "mlp.c_fc_0", "mlp.up_proj": "mlp.c_fc_1", "mlp.down_proj": "mlp.c_proj",
}


def to_exaone(folder, cfg: dict, state: dict) -> dict:
    """Rewrite a Llama fixture folder as an EXAONE 3.5 checkpoint: config.json with EXAONE's keys
    and the state with its tensor names (returned, for saving)."""
    import json

    ex = {
        "architectures": ["ExaoneForCausalLM"], "model_type": "exaone",
        "activation_function": cfg["hidden_act"], "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"], "num_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"], "num_key_value_heads": cfg["num_key_value_heads"],
        "layer_norm_epsilon": cfg["rms_norm_eps"], "max_position_embeddings": cfg["max_position_embeddings"],
        "rope_theta": cfg["rope_theta"], "rope_scaling": cfg["rope_scaling"],
        "tie_word_embeddings": cfg["tie_word_embeddings"], "vocab_size": cfg["vocab_size"],
        "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"],
        "torch_dtype": cfg["torch_dtype"], "use_cache": True,
    }
    (folder / "config.json").write_text(json.dumps(dict(sorted(ex.items())), indent=2) + "\n", encoding="utf-8")
    out = {}
    for k, v in state.items():
        if k == "model.embed_tokens.weight":
            out["transformer.wte.weight"] = v
        elif k == "model.norm.weight":
            out["transformer.ln_f.weight"] = v
        elif k == "lm_head.weight":
            out[k] = v
        else:
            _, _, i, rest = k.split(".", 3)
            part = rest.removesuffix(".weight")
            out[f"transformer.h.{i}.{EXAONE_NAMES[part]}.weight"] = v
    return out
