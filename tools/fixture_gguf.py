"""GGUF twins of the tiny checkpoints, for tools/make_fixtures.py: the same weights and
vocabulary written with the `gguf` package in the layout llama.cpp's converter gives each
architecture (its tensor names and metadata keys, Gemma's norm `+1`, GPT-2's Conv1D matrices
transposed to [out, in] with the tied head written out, GPT-NeoX's per-head q/k/v rows reordered
to q, k, v). All tensors float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import torch


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).contiguous().numpy()


def _gemma2_tensors(state: dict, cfg: dict) -> dict:
    out = {"token_embd.weight": state["model.embed_tokens.weight"],
           "output_norm.weight": state["model.norm.weight"] + 1}
    parts = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        "post_feedforward_layernorm": "post_ffw_norm",
    }
    for i in range(cfg["num_hidden_layers"]):
        for hf, g in parts.items():
            w = state[f"model.layers.{i}.{hf}.weight"]
            out[f"blk.{i}.{g}.weight"] = w + 1 if "norm" in g else w
    return out


def _gpt2_tensors(state: dict, cfg: dict) -> dict:
    out = {"token_embd.weight": state["transformer.wte.weight"],
           "position_embd.weight": state["transformer.wpe.weight"],
           "output_norm.weight": state["transformer.ln_f.weight"],
           "output_norm.bias": state["transformer.ln_f.bias"],
           # llama.cpp writes the tied head out as its own tensor
           "output.weight": state["transformer.wte.weight"]}
    parts = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output",
             "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
    for i in range(cfg["n_layer"]):
        for hf, g in parts.items():
            w = state[f"transformer.h.{i}.{hf}.weight"]
            out[f"blk.{i}.{g}.weight"] = w if w.dim() == 1 else w.t()  # Conv1D [in, out] -> [out, in]
            out[f"blk.{i}.{g}.bias"] = state[f"transformer.h.{i}.{hf}.bias"]
    return out


def _gptneox_tensors(state: dict, cfg: dict) -> dict:
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = h // heads
    out = {"token_embd.weight": state["gpt_neox.embed_in.weight"],
           "output_norm.weight": state["gpt_neox.final_layer_norm.weight"],
           "output_norm.bias": state["gpt_neox.final_layer_norm.bias"],
           "output.weight": state.get("embed_out.weight", state.get("lm_head.weight"))}
    parts = {"input_layernorm": "attn_norm", "attention.query_key_value": "attn_qkv",
             "attention.dense": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.dense_h_to_4h": "ffn_up", "mlp.dense_4h_to_h": "ffn_down"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, g in parts.items():
            for kind in ("weight", "bias"):
                t = state[f"gpt_neox.layers.{i}.{hf}.{kind}"]
                if g == "attn_qkv":  # [heads, 3, head_dim, ...] -> [3, heads, head_dim, ...]
                    t = t.reshape(heads, 3, hd, *t.shape[1:]).transpose(0, 1).reshape(t.shape)
                out[f"blk.{i}.{g}.{kind}"] = t
    return out


def _phi3_tensors(state: dict, cfg: dict) -> dict:
    rs = cfg["rope_scaling"]
    out = {"token_embd.weight": state["model.embed_tokens.weight"],
           "output_norm.weight": state["model.norm.weight"],
           "output.weight": state["lm_head.weight"],
           "rope_factors_short.weight": torch.tensor(rs["short_factor"]),
           "rope_factors_long.weight": torch.tensor(rs["long_factor"])}
    parts = {"input_layernorm": "attn_norm", "self_attn.qkv_proj": "attn_qkv", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, g in parts.items():
            out[f"blk.{i}.{g}.weight"] = state[f"model.layers.{i}.{hf}.weight"]
    return out


def _exaone_tensors(state: dict, cfg: dict) -> dict:
    import math
    # output.weight is written even when tied: llama.cpp (c392e50) refuses an exaone file without it.
    embed = state["model.embed_tokens.weight"]
    out = {"token_embd.weight": embed, "output_norm.weight": state["model.norm.weight"],
           "output.weight": embed if cfg["tie_word_embeddings"] else state["lm_head.weight"]}
    parts = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, g in parts.items():
            out[f"blk.{i}.{g}.weight"] = state[f"model.layers.{i}.{hf}.weight"]
    # llama3 rope scaling as llama.cpp's converter stores it: one divisor per rotary pair
    rs = cfg["rope_scaling"]
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    orig, factor = rs["original_max_position_embeddings"], rs["factor"]
    low_wl, high_wl = orig / rs["low_freq_factor"], orig / rs["high_freq_factor"]
    divisors = []
    for i in range(hd // 2):
        freq = 1.0 / cfg["rope_theta"] ** (2 * i / hd)
        wl = 2 * math.pi / freq
        if wl < high_wl:
            divisors.append(1.0)
        elif wl > low_wl:
            divisors.append(factor)
        else:
            smooth = (orig / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
            divisors.append(1.0 / ((1 - smooth) / factor + smooth))
    out["rope_freqs.weight"] = torch.tensor(divisors)
    return out


def _metadata(w: gguf.GGUFWriter, arch: str, cfg: dict) -> None:
    if arch == "gemma2":
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_block_count(cfg["num_hidden_layers"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_head_count(cfg["num_attention_heads"])
        w.add_head_count_kv(cfg["num_key_value_heads"])
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
        w.add_rope_freq_base(cfg.get("rope_parameters", {}).get("rope_theta", 10000.0))
        w.add_attn_logit_softcapping(cfg["attn_logit_softcapping"])
        w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        w.add_sliding_window(cfg["sliding_window"])
    elif arch == "gpt2":
        w.add_context_length(cfg["n_positions"])
        w.add_embedding_length(cfg["n_embd"])
        w.add_block_count(cfg["n_layer"])
        w.add_feed_forward_length(cfg.get("n_inner") or 4 * cfg["n_embd"])
        w.add_head_count(cfg["n_head"])
        w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
    elif arch == "gptneox":
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        rp = cfg.get("rope_parameters") or {}
        pct = rp.get("partial_rotary_factor", cfg.get("rotary_pct"))
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_block_count(cfg["num_hidden_layers"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_rope_dimension_count(int(pct * hd))
        w.add_rope_freq_base(float(rp.get("rope_theta", cfg.get("rotary_emb_base", 10000))))
        w.add_head_count(cfg["num_attention_heads"])
        w.add_parallel_residual(cfg["use_parallel_residual"])
        w.add_layer_norm_eps(cfg["layer_norm_eps"])
    elif arch == "exaone":
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        w.add_context_length(cfg["max_position_embeddings"])
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_block_count(cfg["num_hidden_layers"])
        w.add_head_count(cfg["num_attention_heads"])
        w.add_head_count_kv(cfg["num_key_value_heads"])
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(hd)
        w.add_rope_freq_base(cfg["rope_theta"])
    elif arch == "phi3":
        import math
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        orig, ctx = cfg["original_max_position_embeddings"], cfg["max_position_embeddings"]
        factor = ctx / orig
        w.add_context_length(ctx)
        w.add_rope_scaling_orig_ctx_len(orig)
        w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0)
        w.add_embedding_length(cfg["hidden_size"])
        w.add_feed_forward_length(cfg["intermediate_size"])
        w.add_block_count(cfg["num_hidden_layers"])
        w.add_head_count(cfg["num_attention_heads"])
        w.add_head_count_kv(cfg["num_key_value_heads"])
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        w.add_rope_dimension_count(hd)
        w.add_rope_freq_base(cfg["rope_theta"])
        w.add_sliding_window(cfg["sliding_window"])
    else:
        raise ValueError(arch)


def _vocab(w: gguf.GGUFWriter, folder: Path, bos_id: int, eos_id: int, add_bos: bool) -> None:
    tj = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = tj["model"]
    vocab = dict(model["vocab"])
    specials = {a["id"]: a["content"] for a in tj["added_tokens"]}
    for i, s in specials.items():
        vocab[s] = i
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    types = []
    if model.get("byte_fallback"):  # SentencePiece-style: llama tokenizer model with scores
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        scores = []
        for i, s in enumerate(tokens):
            if i in specials:
                types.append(gguf.TokenType.UNKNOWN if s == "<unk>" else gguf.TokenType.CONTROL)
                scores.append(0.0)
            elif s.startswith("<0x") and len(s) == 6:
                types.append(gguf.TokenType.BYTE)
                scores.append(0.0)
            else:
                types.append(gguf.TokenType.NORMAL)
                scores.append(-float(i))  # later pieces merge later, as BPE merge ranks
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_unk_token_id(vocab["<unk>"])
    else:
        w.add_tokenizer_model("gpt2")
        pre = tj["pre_tokenizer"]
        digits = pre.get("type") == "Sequence" and pre["pretokenizers"][0]["type"] == "Digits"
        w.add_tokenizer_pre("exaone" if digits else "gpt-2")
        types = [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(len(tokens))]
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        w.add_token_list(tokens)
        w.add_token_merges(merges)
    w.add_token_types(types)
    w.add_bos_token_id(bos_id)
    w.add_eos_token_id(eos_id)
    w.add_add_bos_token(add_bos)


def write_gguf(folder: Path, arch: str, cfg: dict, state: dict, bos_id: int, eos_id: int, add_bos: bool,
               chat_template: str | None) -> Path:
    """Write `folder/model.gguf` from the model's state dict (HF names, tied head included)."""
    tensors = {"gemma2": _gemma2_tensors, "gpt2": _gpt2_tensors, "gptneox": _gptneox_tensors,
               "phi3": _phi3_tensors, "exaone": _exaone_tensors}[arch](state, cfg)
    path = folder / "model.gguf"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(folder.name)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    _metadata(w, arch, cfg)
    _vocab(w, folder, bos_id, eos_id, add_bos)
    if chat_template:
        w.add_chat_template(chat_template)
    for name, t in sorted(tensors.items()):
        w.add_tensor(name, _np(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
