"""Memory physics: exact facts, the seed example, parallel splits, quantization formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fitting.physics.architecture import Architecture
from fitting.physics.parameters import count_parameters, tensor_inventory
from fitting.physics.memory import (
    VLLM_SAMPLER_FP32_COPIES,
    activation_bytes,
    kv_bytes_per_token,
    kv_bytes_per_token_split,
    kv_cache_bytes,
    pp_partition,
    weight_bytes_per_gpu,
    weight_bytes_per_stage,
)
from fitting.physics.quantization import GGUF_TYPE_BITS, kv_cache_bytes_per_element, weight_format
from fitting.data.registry import load_registry
from fitting.units import BYTES_PER_GB

REG = load_registry()


def arch(model_id: str) -> Architecture:
    return REG.resolve(model_id).architecture


# ----------------------------------------------------------------------------- KV cache: exact facts
@pytest.mark.parametrize(
    "model_id,kv_dtype,expected",
    [
        ("meta-llama/Llama-3.1-8B", "auto", 131072),   # 2 x 32 layers x 8 KV heads x 128 x 2 B
        ("meta-llama/Llama-3.1-8B", "fp8", 65536),
        ("Qwen/Qwen2.5-7B", "auto", 57344),            # 2 x 28 x 4 x 128 x 2
        ("Qwen/Qwen3-14B", "auto", 163840),            # 2 x 40 x 8 x 128 x 2
        ("deepseek-ai/DeepSeek-V3", "auto", 61 * 576 * 2),  # MLA: 61 x (512 + 64) x 2
        ("mistralai/Mistral-Nemo-Base-2407", "auto", 2 * 40 * 8 * 128 * 2),  # explicit head_dim 128, not 160
        ("tiiuae/falcon-7b", "auto", 2 * 32 * 1 * 64 * 2),  # multi-query
    ],
)
def test_kv_bytes_per_token_exact(model_id, kv_dtype, expected):
    assert kv_bytes_per_token(arch(model_id), kv_cache_dtype=kv_dtype) == expected


def test_mla_kv_is_not_split_by_tp_but_gqa_is():
    v3 = arch("deepseek-ai/DeepSeek-V3")
    assert kv_bytes_per_token(v3, tp=8) == kv_bytes_per_token(v3, tp=1) == 61 * 576 * 2
    llama = arch("meta-llama/Llama-3.1-8B")
    got = kv_bytes_per_token(llama, tp=np.array([1, 2, 4, 8, 16, 32]))
    # 8 KV heads: halves up to tp=8, then one (replicated) head per GPU
    np.testing.assert_array_equal(got, [131072, 65536, 32768, 16384, 16384, 16384])


def test_seed_example_llama31_8b_fp8_kv_1024_tokens():
    kv = kv_cache_bytes(arch("meta-llama/Llama-3.1-8B"), num_tokens=1024, kv_cache_dtype="fp8")
    assert kv == 67_108_864  # = 2 x 32 x 8 x 128 x 1 B x 1024
    assert round(kv / BYTES_PER_GB, 3) == 0.067


def test_why_the_seed_0_27_gb_is_wrong():
    """The seed sized K and V with hidden_size (32 heads x 128) instead of 8 GQA KV heads."""
    a = arch("meta-llama/Llama-3.1-8B")
    seed_formula = 2 * a.num_layers * a.hidden_size * 1 * 1024  # 2 x 32 x 4096 x 1 B x 1024 tokens
    assert seed_formula == 268_435_456 and round(seed_formula / BYTES_PER_GB, 2) == 0.27
    correct = kv_cache_bytes(a, num_tokens=1024, kv_cache_dtype="fp8")
    assert seed_formula / correct == a.num_attention_heads / a.num_kv_heads == 4


def test_kv_cache_dtypes():
    a = arch("meta-llama/Llama-3.1-8B")
    elems = 2 * 32 * 8 * 128
    for kv_dtype, bits in [("float32", 32), ("float16", 16), ("bfloat16", 16), ("fp8_e4m3", 8), ("fp8_e5m2", 8),
                           ("q8_0", 8.5), ("q4_0", 4.5)]:
        assert kv_bytes_per_token(a, kv_cache_dtype=kv_dtype) == elems * bits / 8, kv_dtype
    # llama.cpp block formats: q8_0 = 32 int8 + fp16 scale = 34 B per 32; q4_0 = 16 B + fp16 = 18 B per 32
    assert kv_cache_bytes_per_element("q8_0", "float16") == 34 / 32
    assert kv_cache_bytes_per_element("q4_0", "float16") == 18 / 32
    assert kv_bytes_per_token(a, kv_cache_dtype="auto", dtype="float32") == elems * 4
    with pytest.raises(ValueError, match="kv_cache_dtype"):
        kv_bytes_per_token(a, kv_cache_dtype="int3")


def test_sliding_window_layers_capped_at_window():
    g = arch("google/gemma-2-9b")  # 21 sliding (4096) + 21 full layers, 8 KV heads x 256
    per_layer = 2 * 8 * 256 * 2
    split = kv_bytes_per_token_split(g)
    assert (split.full_layers, split.sliding_layers, split.sliding_window) == (21, 21, 4096)
    assert split.full_bytes_per_token + split.sliding_bytes_per_token == kv_bytes_per_token(g) == 42 * per_layer
    assert kv_cache_bytes(g, num_tokens=2048) == 42 * per_layer * 2048
    assert kv_cache_bytes(g, num_tokens=8192) == per_layer * (21 * 8192 + 21 * 4096)
    oss = arch("openai/gpt-oss-20b")  # window 128 on 12 of 24 layers
    assert kv_cache_bytes(oss, num_tokens=100_000) == 2 * 8 * 64 * 2 * (12 * 100_000 + 12 * 128)


def test_paged_block_rounding_and_sequences():
    a = arch("meta-llama/Llama-3.1-8B")
    assert kv_cache_bytes(a, num_tokens=17, block_size=16) == 32 * 131072
    assert kv_cache_bytes(a, num_tokens=16, block_size=16, num_seqs=3) == 3 * 16 * 131072
    got = kv_cache_bytes(a, num_tokens=np.array([1, 16, 17, 33]), block_size=16, num_seqs=2)
    np.testing.assert_array_equal(got, 2 * 131072 * np.array([16, 16, 32, 48]))


def test_kv_pipeline_stage_and_broadcasting():
    a = arch("Qwen/Qwen3-8B")  # 36 layers; pp=3 -> 12 per stage
    assert kv_bytes_per_token(a, pp=3) == kv_bytes_per_token(a) / 3
    got = kv_cache_bytes(a, num_tokens=np.array([[1024], [2048]]), tp=np.array([1, 2, 4]))
    assert got.shape == (2, 3)
    assert got[1, 2] == 2048 * kv_bytes_per_token(a, tp=4)
    assert isinstance(kv_bytes_per_token(a), float)


# ----------------------------------------------------------------------------- weights
def test_weights_bf16_equal_two_bytes_per_parameter():
    a = arch("meta-llama/Llama-3.1-8B")  # vocab 128256 is a multiple of 64: no padding
    assert weight_bytes_per_gpu(a) == 2 * 8_030_261_248
    assert weight_bytes_per_gpu(a, dtype="float32") == 4 * 8_030_261_248


def test_tp2_halves_weights_up_to_replicated_parts():
    a = arch("meta-llama/Llama-3.1-8B")
    replicated = (2 * a.num_layers + 1) * a.hidden_size * 2  # RMSNorm weights stay whole on every GPU
    w1, w2 = weight_bytes_per_gpu(a, tp=1), weight_bytes_per_gpu(a, tp=2)
    assert w2 == (w1 - replicated) / 2 + replicated
    w = weight_bytes_per_gpu(a, tp=np.array([1, 2, 4, 8]))
    np.testing.assert_allclose(w[0] / w, [1, 2, 4, 8], rtol=1e-3)


def test_kv_projection_weights_replicated_beyond_kv_heads():
    a = arch("meta-llama/Llama-3.1-8B")
    kv_proj = 2 * a.num_layers * a.hidden_size * a.head_dim * 2  # k and v with one KV head per GPU
    w8, w16 = weight_bytes_per_gpu(a, tp=8), weight_bytes_per_gpu(a, tp=16)
    # from tp 8 to 16 everything else halves again, the single KV head per GPU does not
    non_kv_8 = w8 - kv_proj - (2 * a.num_layers + 1) * a.hidden_size * 2
    assert w16 == pytest.approx(non_kv_8 / 2 + kv_proj + (2 * a.num_layers + 1) * a.hidden_size * 2)


def test_moe_weights_hold_every_expert():
    entry = REG.resolve("mistralai/Mixtral-8x7B-v0.1")
    w = weight_bytes_per_gpu(entry.architecture)
    assert w == pytest.approx(2 * entry.params_total, rel=0.01)       # 46.7B stated, all experts
    assert w > 3 * 2 * entry.params_active                           # not the 12.9B active
    v3 = REG.resolve("deepseek-ai/DeepSeek-V3")
    assert weight_bytes_per_gpu(v3.architecture, quantization="fp8-block128") == pytest.approx(
        v3.params_total * 1.0, rel=0.02)  # ~1 B/param: FP8 experts + bf16 embeddings/norms + block scales


def test_pipeline_stages_follow_vllm_partition():
    assert pp_partition(61, 4) == [15, 15, 16, 15]   # remainder to the stages before the last
    assert pp_partition(36, 3) == [12, 12, 12]
    assert pp_partition(10, 4) == [2, 3, 3, 2]
    a = arch("meta-llama/Llama-3.1-8B")
    stages = weight_bytes_per_stage(a, pp=4)
    layer = (4096 * 4096 * 2 + 4096 * 1024 * 2 + 3 * 4096 * 14336 + 2 * 4096) * 2
    embed = 128256 * 4096 * 2
    assert stages[0] == 8 * layer + embed
    assert stages[-1] == 8 * layer + embed + 4096 * 2   # LM head + final norm
    assert weight_bytes_per_gpu(a, pp=4) == max(stages)
    with pytest.raises(ValueError, match="pp"):
        weight_bytes_per_gpu(a, pp=0)


def test_tied_lm_head_is_an_extra_copy_on_the_last_stage_only_with_pp():
    a = arch("meta-llama/Llama-3.2-1B")
    embed = a.vocab_size * a.hidden_size * 2
    assert weight_bytes_per_gpu(a) == 2 * count_parameters(a).total
    s = weight_bytes_per_stage(a, pp=2)
    assert s[0] + s[1] == weight_bytes_per_gpu(a) + embed


def test_vocab_padded_to_64_as_vllm():
    g = arch("ibm-granite/granite-3.1-8b-instruct")  # vocab 49155 -> 49216 rows
    padded = Architecture.from_hf_config({**g.to_dict(), "vocab_size": 49216})
    assert weight_bytes_per_gpu(g) == weight_bytes_per_gpu(padded)
    assert weight_bytes_per_gpu(g) - 2 * count_parameters(g).total == (49216 - 49155) * 4096 * 2
    # GGUF (llama.cpp) does not pad
    assert weight_bytes_per_gpu(g, quantization="gguf:F16") < weight_bytes_per_gpu(padded, quantization="gguf:F16")


# ----------------------------------------------------------------------------- quantization formats
def test_gpt_oss_20b_mxfp4_equals_checkpoint_size():
    entry = REG.resolve("openai/gpt-oss-20b")
    stated = int(str(entry.params["checkpoint_bytes"]).split()[0].replace(",", ""))  # safetensors total_size
    assert stated == 13_761_264_768
    got = weight_bytes_per_gpu(entry.architecture, quantization=entry.native_quantization)
    assert got == pytest.approx(stated, rel=1e-4)


def test_group_quantization_overheads():
    fmt = weight_format("awq")  # int4 + (fp16 scale + int4 zero) per 128 inputs
    assert fmt.matrix_bytes(4096, 4096) * 8 / 4096**2 == 4 + 20 / 128
    gptq = weight_format("gptq-int8-g64")
    assert gptq.matrix_bytes(4096, 4096) == 4096 * 4096 + 4096 * 64 * 24 / 8 + 4096 * 4  # + int32 g_idx
    assert weight_format("gptq-int4-g-1").matrix_bytes(100, 256) == 100 * 256 / 2 + 100 * 20 / 8 + 256 * 4
    assert weight_format("mxfp4").effective_bits == 4.25
    assert weight_format("nvfp4").matrix_bytes(16, 16) == 16 * 16 / 2 + 16 * 1 + 8
    assert weight_format("bnb-nf4-dq").effective_bits == pytest.approx(4 + 8 / 64 + 32 / 64 / 256, abs=1e-5)
    assert weight_format("bnb-nf4").effective_bits == 4.5  # transformers default: no double quant
    assert weight_format("fp8-per-channel").matrix_bytes(10, 20) == 200 + 40
    assert weight_format("fp8-block128").matrix_bytes(256, 300) == 256 * 300 + 2 * 3 * 4
    assert weight_format("fp8").matrix_bytes(10, 20) == 200 + 4


def test_quantization_keeps_embeddings_and_head_in_dtype():
    a = arch("meta-llama/Llama-3.1-8B")
    head_and_embed = 2 * 128256 * 4096 * 2
    linear = sum(s.numel for s in tensor_inventory(a) if s.quantizable)
    other = 2 * count_parameters(a).total - 2 * linear
    assert other > head_and_embed
    fmt = weight_format("awq")
    expected = other + sum(fmt.matrix_bytes(s.rows, s.cols) * s.copies * len(s.layers)
                           for s in tensor_inventory(a) if s.quantizable)
    assert weight_bytes_per_gpu(a, quantization="awq") == pytest.approx(expected)
    moe = arch("openai/gpt-oss-120b")  # mxfp4 only touches expert matrices (expert biases stay bf16)
    expert_matrices = sum(s.numel for s in tensor_inventory(moe) if s.kind == "expert" and s.quantizable)
    mx = weight_bytes_per_gpu(moe, quantization="mxfp4")
    assert mx == pytest.approx(weight_bytes_per_gpu(moe) - 2 * expert_matrices + expert_matrices * 4.25 / 8)


def test_gguf_type_bits_from_block_layouts():
    # ggml block structs: bytes per block / weights per block
    layouts = {"Q8_0": (2 + 32, 32), "Q4_0": (2 + 16, 32), "Q4_1": (4 + 16, 32), "Q5_0": (2 + 4 + 16, 32),
               "Q5_1": (4 + 4 + 16, 32), "Q2_K": (16 + 64 + 4, 256), "Q3_K": (32 + 64 + 12 + 2, 256),
               "Q4_K": (4 + 12 + 128, 256), "Q5_K": (4 + 12 + 32 + 128, 256), "Q6_K": (128 + 64 + 16 + 2, 256),
               "IQ4_NL": (2 + 16, 32), "IQ4_XS": (2 + 2 + 4 + 128, 256)}
    for name, (nbytes, n) in layouts.items():
        assert GGUF_TYPE_BITS[name] == nbytes * 8 / n, name
    assert (GGUF_TYPE_BITS["Q4_0"], GGUF_TYPE_BITS["Q8_0"], GGUF_TYPE_BITS["Q6_K"]) == (4.5, 8.5, 6.5625)


def test_gguf_q4_k_m_tensor_types_match_a_published_file():
    """Tensor types of Llama-3.1-8B Q4_K_M as ollama lists them (token_embd Q4_K; blk.0/1
    attn_v and ffn_down Q6_K; attn_q/attn_k/ffn_gate/ffn_up Q4_K; norms F32)."""
    a = arch("meta-llama/Llama-3.1-8B")
    fmt = weight_format("gguf:Q4_K_M")
    specs = {s.role: s for s in tensor_inventory(a) if s.kind in ("dense", "other")}
    assert fmt.tensor_type(specs["embedding"], None, a) == "Q4_K"
    assert fmt.tensor_type(specs["lm_head"], None, a) == "Q6_K"
    for layer in (0, 1):
        assert fmt.tensor_type(specs["attn_v"], layer, a) == "Q6_K"
        assert fmt.tensor_type(specs["mlp_down"], layer, a) == "Q6_K"
    for role in ("attn_q", "attn_k", "attn_o", "mlp_gate", "mlp_up"):
        assert fmt.tensor_type(specs[role], 0, a) == "Q4_K"
    assert fmt.tensor_type(specs["norm"], 0, a) == "F32"
    # use_more_bits: layers < n/8, >= 7n/8, and every third in between
    assert [fmt.tensor_type(specs["attn_v"], i, a) for i in (4, 5, 6)] == ["Q4_K", "Q4_K", "Q6_K"]
    # single-type GGUF: every matrix at the type, vectors F32
    q8 = weight_bytes_per_gpu(a, quantization="gguf:Q8_0")
    vectors = (2 * 32 + 1) * 4096 * 4
    assert q8 == pytest.approx((8_030_261_248 - (2 * 32 + 1) * 4096) * 8.5 / 8 + vectors)


def test_gguf_fallback_for_rows_not_multiple_of_256():
    a = arch("Qwen/Qwen2.5-0.5B")  # hidden 896 = 3.5 x 256: k-quants fall back (llama.cpp)
    fmt = weight_format("gguf:Q4_K_M")
    q = next(s for s in tensor_inventory(a) if s.role == "attn_q")
    assert fmt.tensor_type(q, 10, a) == "Q5_0"


def test_free_text_quantization_maps_only_when_the_text_determines_storage():
    as_recorded = {"AWQ int4 (GEMM)": "awq-int4-g128", "GPTQ 4-bit, exllamav2 kernel": "gptq-int4-g128",
                   "bitsandbytes (nf4)": "bnb-nf4", "bitsandbytes 4-bit fp4, fp16 compute": "bnb-fp4",
                   "int8 bnb": "bnb-int8", "fp8 (ModelOpt)": "fp8-per-tensor", "mxfp4 MoE (TrtLlmMxfp4Experts)": "mxfp4",
                   "NVFP4 (MoE experts; GDN and full-attention weights BF16)": "nvfp4-experts",
                   "gguf (Q8_0)": "Q8_0", "Q4_K - Medium": "Q4_K_M", "Q2_K - Medium": "Q2_K", "q6_K": "Q6_K",
                   "IQ2_XXS - 2.0625 bpw": "IQ2_XXS"}
    for text, name in as_recorded.items():
        assert weight_format(text).name == name, text
    for text in ("EXL3 3.00bpw", "NVFP4 (ModelOpt mixed)", "gguf", "UD-Q4_K_XL", "bitsandbytes (config not seen)",
                 "compressed-tensors (WNA16, Marlin)"):
        with pytest.raises(ValueError, match="unknown weight quantization"):
            weight_format(text)


def test_unknown_quantization_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown weight quantization 'awq5'"):
        weight_bytes_per_gpu(arch("meta-llama/Llama-3.1-8B"), quantization="awq5")
    with pytest.raises(ValueError, match="unknown GGUF type"):
        weight_format("gguf:Q9_K")


# ----------------------------------------------------------------------------- activations
TINY = Architecture.from_hf_config({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 256,
                                    "vocab_size": 1000})


def test_activation_estimates_follow_their_documented_formulas():
    # vLLM: max(forward, sampler stage); forward-bound with 8 rows, sampler-bound with 2048 rows
    forward = 2048 * (2 * 64 + 3 * 256) * 2
    vllm = activation_bytes(TINY, framework="vllm", batch_size=8, seq_len=4096, max_num_batched_tokens=2048)
    assert vllm == forward
    assert activation_bytes(TINY, framework="vllm", batch_size=8, seq_len=4096, max_num_batched_tokens=2048,
                            tp=2) == 2048 * (2 * 64 + 3 * 128) * 2
    sampler = 2048 * 64 * 2 + 2048 * 1000 * (2 + 4 * VLLM_SAMPLER_FP32_COPIES)
    for tp in (1, 2, 4):  # logits are gathered to full vocabulary on every rank
        assert activation_bytes(TINY, framework="vllm", batch_size=4096, seq_len=1, max_num_batched_tokens=2048,
                                tp=tp) == sampler  # rows = min(max_num_seqs, tokens)
    assert activation_bytes(TINY, framework="vllm", batch_size=4096, seq_len=1, max_num_batched_tokens=2048,
                            sampler=False) == forward  # a pipeline stage before the last
    # the other pool frameworks keep the additive form
    assert activation_bytes(TINY, framework="sglang", batch_size=8, seq_len=4096, max_num_batched_tokens=2048) \
        == forward + 8 * 1000 * 4
    hf = activation_bytes(TINY, framework="transformers", batch_size=2, seq_len=100)
    assert hf == 200 * (2 * 64 + 3 * 256) * 2 + 2 * 100 * 1000 * 4
    assert activation_bytes(TINY, framework="transformers", batch_size=2, seq_len=100,
                            logits_all_positions=False) == 200 * (2 * 64 + 3 * 256) * 2 + 2 * 1000 * 4
    eager = activation_bytes(TINY, framework="transformers", batch_size=2, seq_len=100, attn_implementation="eager")
    assert eager - hf == 2 * 2 * 4 * 100**2 * 2
    cpp = activation_bytes(TINY, framework="llamacpp", batch_size=512, seq_len=4096)
    assert cpp == 512 * 1000 * 4 + 512 * (2 * 64 + 3 * 256) * 4 + 512 * 4096 * 4 * 4
    assert activation_bytes(TINY, framework="llamacpp", batch_size=512, seq_len=4096,
                            attn_implementation="flash") == cpp - 512 * 4096 * 4 * 4


def test_activation_broadcasting_and_scaling():
    a = arch("Qwen/Qwen3-30B-A3B")
    t = np.array([1024, 2048, 4096])
    got = activation_bytes(a, framework="vllm", batch_size=256, seq_len=4096, max_num_batched_tokens=t)
    assert got.shape == (3,) and np.all(np.diff(got) > 0)
    slope = np.diff(got) / np.diff(t)
    np.testing.assert_allclose(slope, slope[0])  # linear in the token budget
    s = np.array([512, 1024, 2048])
    eager = activation_bytes(a, framework="transformers", batch_size=1, seq_len=s, attn_implementation="eager")
    sdpa = activation_bytes(a, framework="transformers", batch_size=1, seq_len=s)
    extra = eager - sdpa
    np.testing.assert_allclose(extra[1:] / extra[:-1], 4.0)  # quadratic in prompt length
    with pytest.raises(ValueError, match="unknown framework"):
        activation_bytes(a, framework="vllm2", batch_size=1, seq_len=1)


# ----------------------------------------------------------------------------- vLLM activation vs public records
VLLM_PROFILES = Path(__file__).resolve().parents[1] / "profiles" / "public" / "vllm"

#: Public vLLM records of one model and engine settings at several tp (same token budget).
#: llm-d-planner v0.19.0 accuracy report: vLLM 0.19, H100 80GB, max_num_batched_tokens 8192 and
#: vLLM's own max_num_seqs default there (1024 on >= 70 GiB GPUs other than the A100).
TP_SERIES_V019 = {
    "Qwen/Qwen2.5-7B-Instruct": ["vllm-qwen-qwen2-5-7b-instruct-5e18c4c204",    # tp 1
                                 "vllm-qwen-qwen2-5-7b-instruct-e922906811",    # tp 2
                                 "vllm-qwen-qwen2-5-7b-instruct-7754c5a3a9"],   # tp 4
    "meta-llama/Llama-3.1-8B-Instruct": ["vllm-meta-llama-llama-3-1-8b-instruct-33e1cc15aa",   # tp 1
                                         "vllm-meta-llama-llama-3-1-8b-instruct-87693cfa2c",   # tp 2
                                         "vllm-meta-llama-llama-3-1-8b-instruct-0f5c8260ad"],  # tp 4
}
#: V0 engine (vLLM PR #10511 memory-profiling logs, same host): Meta-Llama-3-8B at tp 1 and 2.
TP_SERIES_V0 = ["vllm-meta-llama-meta-llama-3-8b-95edb09895", "vllm-meta-llama-meta-llama-3-8b-3c76dd4422"]
#: The same v0.19 report at pp > 1 (tp 1): the printed rank runs no sampler.
PP_RECORDS_V019 = {"vllm-meta-llama-llama-3-1-8b-instruct-47083f4ad3": "meta-llama/Llama-3.1-8B-Instruct",
                   "vllm-meta-llama-llama-3-1-8b-instruct-dfef885293": "meta-llama/Llama-3.1-8B-Instruct",
                   "vllm-qwen-qwen3-8b-153c2a870e": "Qwen/Qwen3-8B"}
VLLM_V1_BIG_GPU_MAX_NUM_SEQS = 1024   # EngineArgs batch defaults for >= 70 GiB GPUs (not A100)
#: first-order band: measured / physics for the current-build records (the fit absorbs the rest).
ACTIVATION_BAND = (1.0, 1.15)
FORWARD_BAND = (1.2, 1.5)  # forward stage alone (pp records): attention/MLP temporaries beyond the estimate


def _record(pid):
    return json.loads((VLLM_PROFILES / f"{pid}.json").read_text(encoding="utf-8"))


def _tp(rec):
    return int((rec.get("parallel") or {}).get("tp") or rec["gpu"].get("count") or 1)


def test_vllm_activation_peak_does_not_shrink_with_tp_in_the_public_records():
    """The data: one activation peak per model, whatever tp (so the peak is not the tp-split forward)."""
    for pids in [*TP_SERIES_V019.values(), TP_SERIES_V0]:
        recs = [_record(pid) for pid in pids]
        tps = [_tp(r) for r in recs]
        assert len(set(tps)) == len(tps) > 1, pids
        peaks = {r["measured"]["activation_peak_gib"] for r in recs}
        assert len(peaks) == 1, (pids, peaks)


@pytest.mark.parametrize("model_id", sorted(TP_SERIES_V019))
def test_vllm_activation_physics_is_tp_independent_and_matches_the_records(model_id):
    recs = [_record(pid) for pid in TP_SERIES_V019[model_id]]
    a = arch(model_id)
    got = np.array([activation_bytes(a, framework="vllm", batch_size=VLLM_V1_BIG_GPU_MAX_NUM_SEQS, seq_len=8192,
                                     max_num_batched_tokens=r["workload"]["max_num_batched_tokens"],
                                     dtype="bfloat16", tp=_tp(r)) for r in recs]) / 2**30
    np.testing.assert_allclose(got, got[0], rtol=1e-12)
    ratio = np.array([r["measured"]["activation_peak_gib"] for r in recs]) / got
    assert np.all((ratio >= ACTIVATION_BAND[0]) & (ratio <= ACTIVATION_BAND[1])), ratio
    # the tp-split forward alone would shrink with tp and undershoot: it cannot be the peak
    forward = np.array([activation_bytes(a, framework="vllm", batch_size=VLLM_V1_BIG_GPU_MAX_NUM_SEQS, seq_len=8192,
                                         max_num_batched_tokens=8192, tp=_tp(r), sampler=False) for r in recs])
    assert forward[0] > 1.4 * forward[-1] and np.all(forward / 2**30 < got)


@pytest.mark.parametrize("pid", sorted(PP_RECORDS_V019))
def test_vllm_pipeline_stage_without_sampler_shows_the_forward_term(pid):
    rec = _record(pid)
    assert rec["parallel"]["pp"] > 1 and rec["parallel"]["tp"] == 1
    a = arch(PP_RECORDS_V019[pid])
    forward = activation_bytes(a, framework="vllm", batch_size=VLLM_V1_BIG_GPU_MAX_NUM_SEQS, seq_len=8192,
                               max_num_batched_tokens=8192, sampler=False) / 2**30
    full = activation_bytes(a, framework="vllm", batch_size=VLLM_V1_BIG_GPU_MAX_NUM_SEQS, seq_len=8192,
                            max_num_batched_tokens=8192) / 2**30
    measured = rec["measured"]["activation_peak_gib"]
    assert FORWARD_BAND[0] <= measured / forward <= FORWARD_BAND[1]
    assert measured < full  # the sampler stage is what the tp=1, pp=1 records print
