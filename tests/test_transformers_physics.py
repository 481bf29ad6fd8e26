"""Unit tests of fitting.physics.transformers: one worked example per mechanism, from the
cited transformers / PyTorch / kernel source, plus the 4.35-era optimum-benchmark sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fitting.data.registry import resolve_model
from fitting.physics.architecture import Architecture
from fitting.physics.memory import kv_bytes_per_token, weight_bytes_per_gpu
from fitting.physics.transformers import (
    attention_score_bytes,
    cublas_workspace_bytes,
    dequant_buffer_bytes,
    generate_logit_copies,
    kv_copies_at_decode,
    logits_bytes,
    mlp_intermediate_bytes,
    parse_version,
    sdpa_uses_native_gqa,
    transformers_peak_bytes,
)

DATA = Path(__file__).parent / "data" / "transformers"

LLAMA2_7B = Architecture.from_hf_config({
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000})
LLAMA3_8B = Architecture.from_hf_config({
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256})


def test_parse_version():
    assert parse_version("4.33.0.dev0") == (4, 33, 0)
    assert parse_version("v5.24") == (5, 24, 0)
    with pytest.raises(ValueError):
        parse_version("transformers")


# ----------------------------------------------------------------------------- logits
def test_generate_before_4_45_materialises_fp32_logits_of_every_prompt_position():
    # modeling_llama.py 4.35.2-4.44.2: logits = self.lm_head(hidden_states); logits = logits.float()
    B, S, V = 4, 1000, 32000
    held, transient = logits_bytes(version="4.44.2", batch_size=B, q_len=S, vocab_size=V, dtype="float16")
    assert held == B * S * V * 4            # the float32 logits
    assert transient == B * S * V * 2       # the fp16 lm_head output alive during .float()


def test_from_4_45_generate_projects_the_last_position_only():
    # 4.45.2: generate sets num_logits_to_keep=1, the model still upcasts (.float(), "TODO: remove in v4.46")
    assert logits_bytes(version="4.45.2", batch_size=4, q_len=1000, vocab_size=32000, dtype="float16") == (
        4 * 32000 * 4, 4 * 32000 * 2)
    # 4.46.3: no upcast: logits in the model dtype
    assert logits_bytes(version="4.46.3", batch_size=4, q_len=1000, vocab_size=32000, dtype="bfloat16") == (
        4 * 32000 * 2, 0.0)
    # logits_to_keep=0 turns it off (slice_logits_to_keep: 0 keeps every position)
    assert logits_bytes(version="5.24.0", batch_size=4, q_len=1000, vocab_size=32000, dtype="bfloat16",
                        logits_to_keep=0)[0] == 4 * 1000 * 32000 * 2


def test_a_forward_benchmark_keeps_every_position_in_the_model_dtype():
    assert logits_bytes(version="5.24.0", mode="forward", batch_size=2, q_len=512, vocab_size=32000,
                        dtype="bfloat16") == (2 * 512 * 32000 * 2, 0.0)
    assert logits_bytes(version="4.35.2", mode="forward", batch_size=2, q_len=512, vocab_size=32000,
                        dtype="float32") == (2 * 512 * 32000 * 4, 0.0)


def test_generate_logit_copies_follow_the_sample_loop_of_each_version():
    # 4.41.2: next_token_logits = outputs.logits[:, -1, :] (a view), no `del outputs`
    assert generate_logit_copies("4.41.2") == {"copy": 0, "copy_transient": 0, "carry": 1,
                                               "carry_prefill_logits": True}
    # 4.42.4: .clone() and del outputs
    assert generate_logit_copies("4.42.4")["carry_prefill_logits"] is False
    # 4.46.3-4.50.0: .clone().float() on model-dtype logits: the clone is alive during the cast
    assert generate_logit_copies("4.50.0")["copy_transient"] == 1
    # 4.53.3-5.24: .to(copy=True, dtype=torch.float32)
    assert generate_logit_copies("4.53.3")["copy_transient"] == 0
    # a processor that writes a new tensor keeps next_token_scores apart from next_token_logits
    assert generate_logit_copies("5.24.0", processor_copies=1)["carry"] == 2


def test_the_pre_4_42_generate_still_holds_the_prefill_logits_in_the_first_decode_step():
    a = LLAMA2_7B
    kw = dict(batch_size=1, prompt_len=2048, new_tokens=2, attn_implementation="sdpa", dtype="float16")
    old = transformers_peak_bytes(a, version="4.41.2", **kw)
    assert old.decode.logits >= 2048 * 32000 * 4            # the prefill's float32 logits are carried
    new = transformers_peak_bytes(a, version="4.42.4", **kw)
    assert new.decode.logits < 4 * 32000 * 4 + 1


# ----------------------------------------------------------------------------- attention
def test_eager_scores_are_model_dtype_plus_fp32_softmax_plus_cast():
    # eager_attention_forward: matmul(q, k^T) * scaling + mask -> softmax(dtype=float32).to(q.dtype)
    n = 2 * 32 * 4096 * 4096
    assert attention_score_bytes(batch_size=2, num_heads=32, q_len=4096, kv_len=4096, dtype="float16",
                                 attn_implementation="eager") == n * (2 + 4 + 2)
    assert attention_score_bytes(batch_size=2, num_heads=32, q_len=4096, kv_len=4096, dtype="float32",
                                 attn_implementation="eager") == n * 8


def test_sdpa_flash_and_efficient_do_not_materialise_scores_math_does():
    kw = dict(batch_size=2, num_heads=32, q_len=4096, kv_len=4096, dtype="bfloat16", attn_implementation="sdpa")
    flash = attention_score_bytes(sdpa_backend="flash", **kw)
    assert flash == attention_score_bytes(sdpa_backend="efficient", **kw) == 2 * 32 * 4096 * 4   # logsumexp
    assert attention_score_bytes(sdpa_backend="math", **kw) == 2 * 32 * 4096 * 4096 * 8
    with pytest.raises(ValueError):
        attention_score_bytes(attn_implementation="flex", **{k: v for k, v in kw.items() if k != "attn_implementation"})


def test_sdpa_native_gqa_by_version():
    # integrations/sdpa_attention.py: repeat_kv always in 4.53.3; enable_gqa without a mask from 4.55.4
    assert not sdpa_uses_native_gqa("4.53.3", has_mask=False, q_len=512)
    assert sdpa_uses_native_gqa("4.55.4", has_mask=False, q_len=512)
    assert not sdpa_uses_native_gqa("5.10.0", has_mask=True, q_len=1)
    assert sdpa_uses_native_gqa("5.24.0", has_mask=True, q_len=1)      # pack_gqa
    g = LLAMA3_8B
    kw = dict(mode="forward", batch_size=1, prompt_len=4096, attn_implementation="sdpa", dtype="bfloat16",
              use_cache=False)
    # the repeat_kv copies (2 x B x H x S x d x b) are the difference at the attention moment
    old = transformers_peak_bytes(g, version="4.53.3", **kw).prefill.moments["attention"]
    new = transformers_peak_bytes(g, version="4.55.4", **kw).prefill.moments["attention"]
    assert old - new == 2 * 1 * 32 * 4096 * 128 * 2


def test_eager_prefill_grows_with_the_square_of_the_prompt():
    kw = dict(version="4.35.2", mode="forward", batch_size=1, attn_implementation="eager", dtype="float16",
              logits_to_keep=1)
    a = LLAMA2_7B
    p1 = transformers_peak_bytes(a, prompt_len=4096, **kw).prefill
    p2 = transformers_peak_bytes(a, prompt_len=8192, **kw).prefill
    assert p1.moment == p2.moment == "attention"
    assert p2.attention / p1.attention == pytest.approx(4, rel=0.01)


# ----------------------------------------------------------------------------- KV cache
def test_kv_copies_by_version_and_cache_class():
    assert kv_copies_at_decode("4.35.2") == 2        # legacy tuples held by generate during the forward
    assert kv_copies_at_decode("4.41.2") == 2        # DynamicCache.from_legacy_cache per call
    assert kv_copies_at_decode("4.42.4") == 1        # generate creates the DynamicCache itself
    assert kv_copies_at_decode("5.24.0", "static") == 1
    assert kv_copies_at_decode("5.24.0", "offloaded") == -2
    with pytest.raises(ValueError):
        kv_copies_at_decode("5.24.0", "paged")


def test_the_4_35_decode_peak_grows_by_two_kv_caches_per_sequence():
    a = LLAMA2_7B
    kw = dict(prompt_len=256, new_tokens=512, attn_implementation="eager", dtype="float16")
    kv_seq = kv_bytes_per_token(a, dtype="float16") * (256 + 511)   # the last step holds S + N - 1 tokens
    for version, copies in (("4.35.2", 2), ("4.44.2", 1)):
        slope = (transformers_peak_bytes(a, version=version, batch_size=16, **kw).peak
                 - transformers_peak_bytes(a, version=version, batch_size=8, **kw).peak) / 8
        assert slope / kv_seq == pytest.approx(copies, rel=0.03)


def test_static_cache_holds_max_cache_len_from_the_prefill_on():
    a = LLAMA3_8B
    p = transformers_peak_bytes(a, version="5.24.0", batch_size=1, prompt_len=100, new_tokens=900,
                                cache_class="static", dtype="bfloat16")
    assert p.prefill.kv == kv_bytes_per_token(a, dtype="bfloat16") * 1000


def test_offloaded_cache_keeps_two_layers_on_the_device():
    a = LLAMA3_8B
    p = transformers_peak_bytes(a, version="5.24.0", batch_size=1, prompt_len=1000, new_tokens=2,
                                cache_class="offloaded", dtype="bfloat16")
    per_layer = kv_bytes_per_token(a, dtype="bfloat16") / a.num_layers
    assert p.prefill.kv == pytest.approx(2 * per_layer * 1000)


# ----------------------------------------------------------------------------- MLP, quantization, workspace
def test_mlp_intermediates_gated():
    assert mlp_intermediate_bytes(LLAMA2_7B, tokens=1000, dtype="float16") == 3 * 1000 * 11008 * 2
    assert mlp_intermediate_bytes(LLAMA2_7B, tokens=1000, dtype="float16", tp=2) == 3 * 1000 * 5504 * 2


def test_exllama_v1_buffers_follow_autogptq_post_init():
    # temp_state = zeros(max_input_len, max_inner_outer_dim) fp16 (act-order), temp_dq = zeros(1, max in*out) fp16
    persistent, transient = dequant_buffer_bytes(LLAMA2_7B, quantization="gptq-exllama", act_order=True)
    assert persistent == 2048 * 11008 * 2 + 4096 * 11008 * 2 and transient == 0
    longer = dequant_buffer_bytes(LLAMA2_7B, quantization="gptq-exllama", act_order=True, max_input_length=4096)[0]
    assert longer - persistent == 2048 * 11008 * 2          # scales with max_input_length
    no_act = dequant_buffer_bytes(LLAMA2_7B, quantization="gptq-exllama", act_order=False)[0]
    assert no_act == 2 + 4096 * 11008 * 2


def test_exllama_v2_scratch_follows_scratch_space_fixed():
    # temp_dq_size() + temp_fwd_size(2048, 8) = in*out*2 + 128 + out*2048*8*4 + 128, max over layers
    gate = 4096 * 11008 * 2 + 128 + 11008 * 2048 * 8 * 4 + 128
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="gptq-exllamav2")[0] == gate


def test_awq_and_bnb_dequantise_only_for_larger_inputs():
    big = 4096 * 11008
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="awq-gemm", tokens=1023)[1] == 0
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="awq-gemm", tokens=1024)[1] == big * 2
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="bnb-4bit", tokens=1, dtype="float16")[1] == 0
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="bnb-4bit", tokens=2, dtype="float16")[1] == big * 2
    # compute dtype float32 (BitsAndBytesConfig's default) + the cast to the activation dtype
    assert dequant_buffer_bytes(LLAMA2_7B, quantization="bnb-4bit", tokens=2, dtype="float16",
                                compute_dtype="float32")[1] == big * 6
    p = transformers_peak_bytes(LLAMA2_7B, version="4.35.2", mode="forward", batch_size=1, prompt_len=2048,
                                dtype="float16", quantization="awq-gemm", logits_to_keep=1)
    assert p.prefill.moments["mlp"] - transformers_peak_bytes(
        LLAMA2_7B, version="4.35.2", mode="forward", batch_size=1, prompt_len=2048, dtype="float16",
        logits_to_keep=1).prefill.moments["mlp"] == big * 2
    with pytest.raises(ValueError):
        dequant_buffer_bytes(LLAMA2_7B, quantization="hqq")


def test_cublas_workspace():
    assert cublas_workspace_bytes(compute_capability=(8, 0)) == 4096 * 1024 * 2 + 16 * 1024 * 8
    assert cublas_workspace_bytes(compute_capability=(9, 0)) == 4096 * 1024 * 8
    assert cublas_workspace_bytes(config=":4096:2") == 8 * 2**20


# ----------------------------------------------------------------------------- composition
def test_composition_parts_add_moments_compete_phases_compete():
    p = transformers_peak_bytes(LLAMA3_8B, version="5.24.0", batch_size=4, prompt_len=2048, new_tokens=64,
                                attn_implementation="eager", dtype="bfloat16")
    for ph in (p.prefill, p.decode):
        assert ph.total == pytest.approx(ph.kv + ph.logits + ph.attention + ph.hidden + ph.mlp + ph.dequant
                                         + ph.bookkeeping)
        assert ph.total == pytest.approx(max(ph.moments.values()))
        assert ph.moments[ph.moment] == pytest.approx(ph.total)
    assert p.peak == max(p.prefill.total, p.decode.total)
    assert p.activations == pytest.approx(p.peak - p.kv)
    assert transformers_peak_bytes(LLAMA3_8B, version="5.24.0", mode="forward", batch_size=1,
                                   prompt_len=16).decode is None


def test_tp_splits_heads_and_mlp_not_logits():
    kw = dict(version="5.24.0", mode="forward", batch_size=1, prompt_len=4096, dtype="bfloat16")
    one = transformers_peak_bytes(LLAMA3_8B, **kw)
    two = transformers_peak_bytes(LLAMA3_8B, tp=2, **kw)
    assert one.prefill.logits == two.prefill.logits
    assert two.prefill.kv == pytest.approx(one.prefill.kv / 2)


def test_bad_inputs():
    with pytest.raises(ValueError):
        transformers_peak_bytes(LLAMA3_8B, version="5.24.0", mode="train", batch_size=1, prompt_len=1)
    with pytest.raises(ValueError):
        transformers_peak_bytes(LLAMA3_8B, version="5.24.0", batch_size=0, prompt_len=1)
    with pytest.raises(ValueError):
        transformers_peak_bytes(LLAMA3_8B, version="5.24.0", batch_size=1, prompt_len=1, cache_class="paged")


# ----------------------------------------------------------------------------- real measurements
def test_4_35_optimum_benchmark_allocated_peaks():
    """torch.cuda.max_memory_allocated of transformers 4.35.2 on an A100 (optimum-benchmark,
    Dec 2023): exact fp16 weights + this physics at 4.35.2 within 2% at every batch size,
    forward and generate, eager, SDPA (BetterTransformer) and flash-attention-2."""
    doc = json.loads((DATA / "optimum_benchmark_4_35_alloc.json").read_text())
    archs = {}
    errors = []
    for pt in doc["points"]:
        mid = "meta-llama/Llama-2-13b-hf" if "13b" in pt["model_id"].lower() else "meta-llama/Llama-2-7b-hf"
        if mid not in archs:
            archs[mid] = resolve_model(mid).architecture
        arch = archs[mid]
        assert pt["unit"] == "MB"
        measured = pt["value"] * 1e6
        physics = transformers_peak_bytes(arch, version=parse_version(pt["framework_version"].split()[1].rstrip(";")),
                                          mode=pt["mode"], batch_size=pt["batch_size"], prompt_len=pt["input_len"],
                                          new_tokens=pt["output_len"], attn_implementation=pt["attn_implementation"],
                                          sdpa_backend="efficient", dtype="float16")
        total = weight_bytes_per_gpu(arch, dtype="float16") + physics.peak
        errors.append((total - measured) / measured)
    assert len(errors) == 33
    assert max(abs(e) for e in errors) < 0.02, errors


# ----------------------------------------------------------------------------- settings from public logs
def test_settings_from_public_log_records():
    from fitting.data.transformers_settings import transformers_settings_from_record as settings

    fa2 = settings({"framework_version": "transformers 4.35.2; torch 2.1.1", "attention_impl":
                    "flash (use_flash_attention_2=True)", "dtype_or_quant": "float16",
                    "series": "optimum-benchmark-dec2023_llama-7b_A100-80GB_fp16+fa2_fwd_alloc",
                    "measure": "optimum-benchmark forward.max_memory_allocated(MB)",
                    "notes": "13b exllamav1 bs16 max_memory_used 85422 MB"})
    assert fa2 == {"version": "4.35.2", "mode": "forward", "attn_implementation": "flash_attention_2",
                   "quantization": None, "measured": "allocated"}
    bt = settings({"framework": "Hugging Face transformers (generate via pipeline)", "model_quant": "4-bit bnb",
                   "batch_setting": "long prompt, SDPA flash kernel (BetterTransformer)",
                   "evidence": "bytes_to_giga_bytes(torch.cuda.max_memory_allocated())"})
    assert (bt["mode"], bt["attn_implementation"], bt["quantization"], bt["measured"], bt["version"]) == (
        "generate", "sdpa", "bnb-4bit", "allocated", None)
    ex = settings({"dtype_or_quant": "GPTQ 4-bit, exllamav1 kernel (fp16 activations)", "attention_impl": "eager",
                   "series": "optimum-benchmark-dec2023_llama-7b_A100-80GB_fp16+gptq+exllamav1_gen_used",
                   "measure": "generate.max_memory_used(MB): NVML device-level used memory"})
    assert (ex["quantization"], ex["mode"], ex["measured"]) == ("gptq-exllama", "generate", "nvml_used")
    assert settings({})["mode"] is None


def test_logits_upcast_follows_each_model_class():
    """4.35-4.45: LlamaForCausalLM and its kin return ``logits.float()``; OPT, GPT-2, GPT-NeoX,
    Falcon, GPTBigCode, MPT and BLOOM return lm_head's output as it is (their modeling files
    of 4.35.2, 4.43.0 and 4.45.2 read). From 4.46 no class upcasts."""
    from fitting.physics.transformers import logits_bytes, logits_upcast

    assert logits_upcast("llama") and logits_upcast("mistral") and logits_upcast("qwen2")
    assert not any(logits_upcast(t) for t in ("opt", "gpt2", "gpt_neox", "falcon", "gpt_bigcode"))
    n = 2 * 512 * 50272
    assert logits_bytes(version="4.43.0", batch_size=2, q_len=512, vocab_size=50272, dtype="float16",
                        upcast=False) == (n * 2.0, 0.0)
    assert logits_bytes(version="4.43.0", batch_size=2, q_len=512, vocab_size=50272, dtype="float16") == (
        n * 4.0, n * 2.0)
    assert logits_bytes(version="4.46.3", mode="forward", batch_size=2, q_len=512, vocab_size=50272,
                        dtype="float16") == (n * 2.0, 0.0)


def test_opt_growth_per_sequence_matches_the_docs_benchmark():
    """OPT-350m (transformers docs SDPA table, fp16, generate of 100 tokens): going from 1 to 8
    sequences of 1024 prompt tokens adds 1.44 GiB. Without the logits upcast OPT's forward does
    not make, the physics (KV + activations) adds 1.34 GiB; with the Llama upcast (and no
    generated tokens) it added 2.7 GiB."""
    from pathlib import Path

    from fitting.data.profiles import load_profiles
    from fitting.overhead.observations import build_observations

    frame = load_profiles(Path(__file__).resolve().parents[1] / "profiles").to_frame()
    t = build_observations(frame, "transformers").table
    opt = t[(t.model_id == "facebook/opt-350m") & (t.input_len == 1024)].set_index("batch_size")
    measured = opt.loc[8.0, "y_gib"] - opt.loc[1.0, "y_gib"]
    physics = (opt.loc[8.0, "kv_gib"] + opt.loc[8.0, "activations_gib"]) - (
        opt.loc[1.0, "kv_gib"] + opt.loc[1.0, "activations_gib"])
    assert measured == pytest.approx(1.44, abs=0.01)
    assert physics == pytest.approx(measured, rel=0.10)
