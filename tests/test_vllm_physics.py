"""vLLM's memory mechanisms (:mod:`fitting.physics.vllm`) against its source and the committed profiles.

* Worked examples from the cited vLLM source (file and version in each test): the sampling
  path by version, the tensors alive at the dummy sampler's peak, the profiling batch, the
  fused-MoE workspace, the KV-sizing accounting, custom all-reduce, CUDA-graph sizes.
* Real figures: every vLLM profile under ``profiles/public/vllm`` that prints an activation
  peak and whose model resolves in the registry: the physics within 15 %, except the listed
  records, each with its reason. Starts of the V2 GPU model runner
  (``vllm/v1/worker/gpu/model_runner.py``, the default from 0.29; the parser marks the ones
  whose log says so ``engine_settings.model_runner = "v2"``) are checked with the V2 runner's
  own dummy sampler (logits only in 0.29-0.32, :func:`sampler_regime`); the 0.27+ V2 starts
  whose printed peak holds an unknown CUDA-graph estimate bound the transient from above.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd
import pytest

from fitting.data.frameworks import default_dtype, vllm_defaults
from fitting.data.gpus import gpu_info
from fitting.data.registry import resolve_model
from fitting.data.vllm_settings import vllm_settings_from_record
from fitting.overhead.observations import _exclude_cold_with_warm_twin
from fitting.physics.towers import max_image_tokens
from fitting.physics.quantization import dtype_bytes, normalize_dtype
from fitting.physics.vllm import (
    printed_activation_includes_graph_estimate,
    printed_activation_physics_bytes,
    COLD_COMPILE_EXCESS_MAX_GIB,
    ACCOUNTING_REGIMES,
    FORWARD_HIDDEN_COPIES,
    SAMPLER_REGIMES,
    accounting_regime,
    activation_peak_parts,
    cold_compile_in_profile_window,
    cuda_graph_capture_sizes,
    cuda_graph_mode,
    custom_allreduce_enabled,
    default_engine,
    default_model_runner,
    forward_activation_bytes,
    max_num_batched_tokens_from_encoder_budget,
    v0_multimodal_profile_num_seqs,
    moe_workspace_bytes,
    moe_workspace_persistent,
    padded_vocab_size,
    parse_version,
    profile_run_num_seqs,
    runner_state_bytes,
    sampler_fp32_copies,
    sampler_leftover_bytes,
    sampler_peak_bytes,
    sampler_regime,
)

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "profiles" / "public" / "vllm"
GIB = 2**30
TOLERANCE = 0.15


# --------------------------------------------------------------------------- versions and regimes

def test_parse_version_and_default_engine():
    assert parse_version("0.10.1.1") == (0, 10, 1)
    assert parse_version("v0.26.1rc1.dev1177+ga9a17e709") == (0, 26, 1)
    assert parse_version("0.8.5 (DAS/DTK build)") == (0, 8, 5)
    assert parse_version("Gilded Gnosis fork") is None and parse_version(None) is None
    # V1 is the default engine from 0.8.0 (VLLM_USE_V1); V0 before
    assert default_engine("0.7.3") == "v0" and default_engine("0.8.0") == "v1" and default_engine(None) is None


def test_sampler_regime_follows_topk_topp_sampler_by_version():
    # vllm/v1/sample/ops/topk_topp_sampler.py::TopKTopPSampler.__init__ and apply_top_k_top_p
    assert sampler_regime("0.6.4", "v0") == "v0_sort"
    assert sampler_regime("0.8.5", engine="v0") == "v0_sort"  # V0 engine in a V1-era release
    assert sampler_regime("0.8.3") == "v1_sort"  # pip: no flashinfer
    assert sampler_regime("0.8.3", flashinfer="0.2.1.post2") == "v1_flashinfer_probs"  # "0.2.1.post2" < "0.2.3"
    assert sampler_regime("0.8.5", flashinfer="0.2.5") == "v1_sort"  # 0.8.x falls back for >= 0.2.3
    assert sampler_regime("0.9.0", flashinfer="0.2.5") == "v1_flashinfer"  # 0.9-0.11: on when installed
    assert sampler_regime("0.11.0", flashinfer=True) == "v1_flashinfer"
    assert sampler_regime("0.11.0") == "v1_sort"
    assert sampler_regime("0.12.0", flashinfer=None) == "v1_sort"  # opt-in from 0.12
    assert sampler_regime("0.15.0") == sampler_regime("0.16.0") == "v1_sort"
    assert sampler_regime("0.17.0") == sampler_regime("0.19.0") == "v1_triton"
    assert sampler_regime("0.17.0", num_seqs=4) == "v1_sort"  # Triton only for >= 8 rows
    assert sampler_regime(None) == "v1_triton"


def test_flashinfer_sampler_default_and_the_v2_runner():
    # vllm/envs.py: VLLM_USE_FLASHINFER_SAMPLER defaults to None (opt-in) in 0.20.0, True from 0.21.0
    assert sampler_regime("0.20.0") == "v1_triton" and sampler_regime("0.21.0") == "v1_flashinfer"
    assert sampler_regime("0.21.0", flashinfer=False) == "v1_triton"  # the log says it fell back
    # config/vllm.py::use_v2_model_runner: the V2 runner by default from 0.29 (0.24-0.28 for some models)
    assert default_model_runner("0.28.0") == "v1" and default_model_runner("0.29.0") == "v2"
    assert default_model_runner("0.7.3") is None and default_model_runner(None) is None
    assert sampler_regime("0.27.1", model_runner="v2") == "v2_logits"
    # gpu/model_runner.py::_dummy_sampler_run: logits only up to 0.32; from 0.33 a second pass with
    # SamplingParams.for_sampler_warmup() (top-k/top-p through FlashInfer, or Triton without it)
    assert sampler_regime("0.32.0") == "v2_logits"
    assert sampler_regime("0.33.0") == sampler_regime("0.34.0") == "v1_flashinfer"
    assert sampler_regime("0.34.0", flashinfer=False) == "v2_triton"
    assert sampler_regime("0.34.0", model_runner="v1", flashinfer=False) == "v1_triton"
    assert SAMPLER_REGIMES["v2_logits"].fp32_copies == 0.0
    # logits only: N x V_pad x b; the Triton warm-up pass: one fp32 copy plus the kernel's buffer rows
    assert sampler_peak_bytes(256, 151936, regime="v2_logits") == 256 * 151936 * 2
    assert sampler_peak_bytes(256, 151936, regime="v2_triton") == 256 * 151936 * (2 + 4) + 132 * 151936 * 4


def test_sampler_tensors_at_the_peak_sort_path():
    # Sort path (V0 sampler.py::_apply_top_k_top_p, V1 topk_topp_sampler.py <= 0.16): alive at
    # the sort: bf16 logits [N, V_pad], their fp32 copy (Sampler.forward logits.to(float32)),
    # torch.sort's values (fp32) and indices (int64), and PyTorch's segmented-sort scratch
    # (SortStable.cu::segmented_sort_pairs: int64 reverse indices + cub's alternate key/value
    # buffers). Qwen3-14B, V = 151936 (a multiple of 64), N = 1024.
    N, V = 1024, 151936
    per_element = 2 + 4 + (4 + 8) + (8 + 4 + 8)
    assert per_element == 38  # the "about 9.5 x N x V x 4 B"
    assert sampler_peak_bytes(N, V, "0.16.0") == N * V * per_element
    assert sampler_peak_bytes(N, V, engine="v0") == N * V * per_element
    # fewer than 128 rows: segmented_sort_pairs_by_full_sort (two int2 arrays, keys out, cub
    # alternates) instead of reverse indices + cub alternates: 12 bytes more per element
    assert sampler_peak_bytes(64, V, "0.16.0") == 64 * V * (per_element + 12)
    assert sampler_fp32_copies("v1_sort", 1024) == SAMPLER_REGIMES["v1_sort"].fp32_copies == 9.0


def test_sampler_tensors_at_the_peak_triton_and_flashinfer():
    # 0.17+: topk_topp_triton.py filters the fp32 logits in place; then softmax probs and
    # random_sample's exponential noise: 2 + 4 + 4 + 4 bytes per element, plus the kernel's
    # cached buffer of min(next_pow2(min(num_sms, N)), num_sms) rows of V fp32.
    N, V = 1024, 151936
    assert sampler_peak_bytes(N, V, "0.17.0", num_sms=132) == N * V * 14 + 132 * V * 4
    assert sampler_peak_bytes(100, V, "0.17.0", num_sms=132) == 100 * V * 14 + 128 * V * 4
    # FlashInfer (0.9-0.11): fp32 logits + top_k_mask_logits output + softmax probs
    assert sampler_peak_bytes(N, V, "0.10.2", flashinfer=True) == N * V * 14
    # float32 models: the logits leave the LM head in float32
    assert sampler_peak_bytes(N, V, "0.16.0", logits_dtype_bytes=4) == N * V * 40
    # the fitted multiplier replaces the regime's
    assert sampler_peak_bytes(N, V, "0.17.0", fp32_copies=4.0, num_sms=132) == N * V * (2 + 16) + 132 * V * 4


def test_vocab_padding_of_the_lm_head():
    # vocab_parallel_embedding.py: pad_vocab_size(vocab, 64), the padded logits are gathered
    assert padded_vocab_size(32001) == 32064 and padded_vocab_size(32000) == 32000
    assert padded_vocab_size(50257, tp=1) == 50304
    assert sampler_peak_bytes(256, 32001, "0.16.0") == 256 * 32064 * 2 + 256 * 32001 * 36


def test_profile_batch_and_what_the_forward_leaves():
    # V1 gpu_model_runner.py::_dummy_run: num_reqs = min(max_num_seqs, num_tokens)
    assert profile_run_num_seqs(1024, 8192) == 1024 and profile_run_num_seqs(256, 100) == 100
    assert profile_run_num_seqs(256, 8192, "v0") == 256  # V0: one group per max_num_seqs
    arch = resolve_model("meta-llama/Llama-3.1-8B").architecture
    h = arch.hidden_size
    # 0.9.2+: profile_run keeps hidden_states [T, h] and last_hidden_states [N, h]; the sampler
    # run adds torch.rand_like of the latter
    assert sampler_leftover_bytes(arch, 8192, 1024, "0.19.0") == (8192 + 2 * 1024) * h * 2
    # 0.8.x: _dummy_run returned only hidden_states[logit_indices]
    assert sampler_leftover_bytes(arch, 8192, 1024, "0.8.5") == 2 * 1024 * h * 2
    assert sampler_leftover_bytes(arch, 8192, 256, engine="v0") == (8192 + 256) * h * 2
    # V2 runner: hidden_states [T, h] and the indexed copy hidden_states[logits_indices] [N, h]
    assert sampler_leftover_bytes(arch, 8192, 1024, "0.30.0") == (8192 + 1024) * h * 2
    assert sampler_leftover_bytes(arch, 8192, 1024, "0.27.1", model_runner="v2") == (8192 + 1024) * h * 2


def test_forward_working_set_of_one_layer():
    arch = resolve_model("meta-llama/Llama-3.1-8B").architecture
    h, inter = arch.hidden_size, arch.intermediate_size
    # gated MLP: gate/up output (2 I) + activation (I) beside the hidden-width copies
    assert forward_activation_bytes(arch, 8192) == 8192 * (FORWARD_HIDDEN_COPIES * h + 3 * inter) * 2
    assert forward_activation_bytes(arch, 8192, tp=2) == 8192 * (FORWARD_HIDDEN_COPIES * h + 3 * inter / 2) * 2


def test_fused_moe_workspace():
    # fused_moe.py::TritonExperts.workspace_shapes (0.13-0.19): (M, k, max(I, h)) and (M, k, max(2I, h))
    arch = resolve_model("Qwen/Qwen3-30B-A3B").architecture  # k 8, I 768, h 2048
    assert moe_workspace_bytes(arch, 8192) == 8192 * 8 * (2048 + 2048) * 2
    assert moe_workspace_persistent(arch, "0.19.0") and not moe_workspace_persistent(arch, "0.12.0")
    assert not moe_workspace_persistent(arch, "0.19.0", quantization="mxfp4")
    dense = resolve_model("meta-llama/Llama-3.1-8B").architecture
    assert moe_workspace_bytes(dense, 8192) == 0.0 and not moe_workspace_persistent(dense, "0.19.0")


def test_accounting_regimes_by_version():
    # worker.py (V0) / gpu_worker.py (V1) / utils memory_profiling
    assert accounting_regime("0.5.5") == accounting_regime("0.6.3") == "free_memory_diff"
    assert accounting_regime("0.6.4") == "peak_torch_plus_non_torch"
    assert accounting_regime("0.6.5") == accounting_regime("0.10.2") == "profile_increase"
    assert accounting_regime("0.11.0") == accounting_regime("0.19.0") == "profile_increase_after_dist_init"
    assert accounting_regime("0.20.0") == accounting_regime("0.34.0") == "cuda_graph_estimate_subtracted"
    assert accounting_regime(None) is None
    assert set(ACCOUNTING_REGIMES) >= {accounting_regime(v) for v in ("0.5.0", "0.6.4", "0.7.0", "0.12.0", "0.21.0")}


def test_custom_allreduce_rules():
    # custom_all_reduce.py::CustomAllreduce.__init__
    assert not custom_allreduce_enabled(1)
    assert custom_allreduce_enabled(2, interconnect="pcie")  # 2 GPUs need no full NVLink
    assert not custom_allreduce_enabled(4, interconnect="pcie")  # > 2 PCIe-only GPUs
    assert custom_allreduce_enabled(4, interconnect="nvlink")
    assert not custom_allreduce_enabled(3) and not custom_allreduce_enabled(16, version="0.19.0")
    assert custom_allreduce_enabled(16, version="0.27.1")  # _SUPPORTED_WORLD_SIZES gains 16
    assert not custom_allreduce_enabled(2, p2p=False) and not custom_allreduce_enabled(8, same_node=False)
    assert not custom_allreduce_enabled(8, disable_custom_all_reduce=True)


def test_cuda_graph_capture_sizes():
    # V1 0.12+ (config/vllm.py): max = min(2 max_num_seqs, 512, mbt); step 8 below 256, 16 above
    sizes = cuda_graph_capture_sizes(1024, 8192, "0.19.0")
    assert sizes[:4] == [1, 2, 4, 8] and sizes[-2:] == [496, 512] and len(sizes) == 3 + 31 + 17
    assert cuda_graph_capture_sizes(128, 8192, "0.19.0")[-1] == 256
    assert cuda_graph_capture_sizes(64, 100, "0.19.0")[-1] == 96  # capped by the token budget
    assert cuda_graph_capture_sizes(128, 8192, "0.19.0", num_speculative_tokens=1)[-1] == 512
    # V1 0.10-0.11: [1, 2, 4] + range(8, min(2 max_num_seqs, 512) + 1, 8)
    assert cuda_graph_capture_sizes(256, 8192, "0.10.2") == [1, 2, 4] + list(range(8, 513, 8))
    assert cuda_graph_capture_sizes(64, 8192, "0.11.0")[-1] == 128
    # V1 0.8-0.9: up to 512 whatever max_num_seqs; V0: up to the padded max_num_seqs
    assert cuda_graph_capture_sizes(16, 8192, "0.8.5")[-1] == 512
    assert cuda_graph_capture_sizes(256, 8192, "0.6.4", engine="v0") == [1, 2, 4] + list(range(8, 257, 8))
    assert cuda_graph_capture_sizes(100, 8192, "0.6.4", engine="v0")[-1] == 104
    assert cuda_graph_capture_sizes(1024, 8192, "0.19.0", enforce_eager=True) == []
    assert cuda_graph_mode("0.10.2") == "piecewise" and cuda_graph_mode("0.11.0") == "full_and_piecewise"
    assert cuda_graph_mode("0.6.4", "v0") == "v0" and cuda_graph_mode("0.19.0", enforce_eager=True) == "none"


def test_token_budget_from_the_printed_encoder_budget():
    # compute_mm_encoder_budget: B = max(max_num_batched_tokens, t) and K <= B // t, so K >= 2 gives B
    assert max_num_batched_tokens_from_encoder_budget(16384, 5) == 16384
    assert max_num_batched_tokens_from_encoder_budget(8192, 3, "v1 (Model Runner V2)") == 8192
    assert max_num_batched_tokens_from_encoder_budget(153600, 1) is None  # B may be one item's tokens
    assert max_num_batched_tokens_from_encoder_budget(None, 5) is None
    assert max_num_batched_tokens_from_encoder_budget(16384, 5, "v0") is None
    line = ("(EngineCore pid=22228) INFO 08-06 20:11:51 [gpu_model_runner.py:6396] Encoder cache will be initialized "
            "with a budget of 8192 tokens, and profiled with 3 video items of the maximum feature size.")
    st = vllm_settings_from_record({"evidence": line})
    assert (st["encoder_budget_tokens"], st["encoder_items_profiled"], st["encoder_modality"]) == (8192, 3, "video")
    st = vllm_settings_from_record({"notes": "Encoder cache budget 16384 tokens, 5 image items profiled."})
    assert (st["encoder_budget_tokens"], st["encoder_items_profiled"]) == (16384, 5)
    both = vllm_settings_from_record({"evidence": line, "notes": "Encoder cache budget 16384 tokens, 5 image items "
                                                                  "profiled."})
    assert both["encoder_budget_tokens"] is None  # two different budgets: neither is kept
    assert vllm_settings_from_record({"notes": "no such line"})["encoder_budget_tokens"] is None


def test_v0_multimodal_profile_batch():
    # worker/model_runner.py::profile_run (0.8.2): min(max_num_seqs, T // max_mm_tokens), at least 1
    qwen_vl = resolve_model("Qwen/Qwen2.5-VL-7B-Instruct").architecture
    llava = resolve_model("llava-hf/llava-1.5-7b-hf").architecture
    assert max_image_tokens(qwen_vl) == 16384  # 12845056 / 28^2 (vLLM's largest Qwen2.5-VL image)
    assert max_image_tokens(llava) == 576  # (336 / 14)^2, the class token dropped
    assert max_image_tokens(resolve_model("llava-hf/llava-v1.6-mistral-7b-hf").architecture) is None
    assert v0_multimodal_profile_num_seqs(256, 5120, 16384) == 1
    assert v0_multimodal_profile_num_seqs(256, 5120, 576) == 8 and v0_multimodal_profile_num_seqs(4, 5120, 576) == 4
    v0 = activation_peak_parts(llava, max_num_seqs=256, max_num_batched_tokens=5120, version="0.8.2", engine="v0")
    assert v0.num_seqs == 8
    # V1 profiles its encoder apart and keeps min(max_num_seqs, T) rows for the sampler
    v1 = activation_peak_parts(llava, max_num_seqs=256, max_num_batched_tokens=5120, version="0.10.2")
    assert v1.num_seqs == 256


# --------------------------------------------------------------------------- the committed profiles

#: Records outside 15 %, each with the reason (the source's or the data's).
EXCEPTIONS = {
    "vllm-qwen-qwen2-5-32b-instruct-cba09d5a7e": (
        "V0 0.7.1 at tp 2 (vllm#15815): driver and worker both print 1.26 GiB, the forward of the 10,000-token "
        "profile batch (physics 1.25); the driver's sort sampler at 256 rows (physics 1.38 + 0.10 left over) "
        "would exceed it, so V0's sampler peak at tp > 1 is below the tp-1 rule that matches the tp-1 V0 "
        "records to 1 % (unresolved)"),
    "vllm-qwen3-8-27b-k4-exl3-quant-of-qwen-qwen3-5332dc4b16": (
        "fork build (flagged, out of the fit) serving an EXL3 quant of a hybrid Gated-DeltaNet model: its linear-"
        "attention forward workspace is not modelled (0.30 vs 2.33 GiB printed)"),
    "vllm-qwen-qwen3-coder-30b-a3b-instruct-eff1e55c9c": (
        "vLLM 0.26.1rc1.dev156 source build with uncommitted changes ('.d20260731', flagged patched_build, "
        "out of the fit): 0.23 GiB printed vs 0.17 GiB of forward physics at N=16, a 0.06 GiB gap on a "
        "build whose contents are unknown"),
    "vllm-opengvlab-internvl3-78b-c1387ab0ac": (
        "multimodal: vLLM 0.6.6's profile run also encodes dummy images through the InternViT-6B tower; the "
        "physics models the language model's forward only (1.50 vs 15.73 GiB printed)"),
    "vllm-qwen-qwen2-5-vl-3b-instruct-fc7502ee67": (
        "multimodal (resolvable since issue 16): vLLM's profile run also encodes dummy images through the "
        "vision tower (ViT 32 blocks, hidden 1280) and merges them into the prompt; the physics models the "
        "language model's forward only (2.64 GiB vs 4.06 GiB printed)"),
    "vllm-meta-llama-meta-llama-3-8b-35a5358cba": (
        "vllm#12330, version and batch settings not stated: 9.37 GiB is 7.6x the sampler + "
        "forward of the V0 defaults (256 / 8192), which give 1.23 GiB; the same model and "
        "defaults print 1.26 GiB in vllm#10511 (vllm-meta-llama-meta-llama-3-8b-95edb09895)"),
    "vllm-deepseek-ai-deepseek-v2-5-c68f9485bf": (
        "V0 0.8.3, tp 8 x pp 2, a rank without the sampler: the forward of MLA (Triton MLA "
        "prefill decompresses K/V) and fused MoE (cache3 = T x k x h) is only counted to first "
        "order here (-26 %)"),
    "vllm-deepseek-ai-deepseek-coder-v2-lite-instr-f5f12536bf": (
        "V0 at tp 8, rank, version and max_model_len not stated: V0 gathers the logits to the "
        "driver rank only (platforms/interface.py::use_all_gather is False for V0; "
        "worker/model_runner.py returns before sampling when not is_driver_worker), so the "
        "printed 0.36 GiB, below the 0.93 GiB of the sampler alone, is another rank's forward, "
        "whose token budget depends on the unstated max_model_len"),
    "vllm-facebook-opt-6-7b-33d1783598": (
        "cpu_offload_gb=1: offloaded parameters are copied onto the GPU inside the forward "
        "(model_executor/models/utils.py::maybe_offload_to_cpu, functional_call with a device "
        "state dict), so they count in the torch peak; not modelled"),
    "vllm-facebook-opt-6-7b-3a427e1183": (
        "cpu_offload_gb=2: offloaded parameters are copied onto the GPU inside the forward "
        "(model_executor/models/utils.py::maybe_offload_to_cpu); not modelled"),
    "vllm-facebook-opt-6-7b-c0a0523a7e": (
        "version, max_num_seqs and GPU (15.77 GiB, V100-class) not stated (figures quoted in a "
        "third-party estimator's comments): the V0 defaults (256 rows, 38 B per logit element) "
        "give +24 %; 31.7 B per element were printed, as a PyTorch sort without the full-size "
        "reverse-index scratch would give"),
    "vllm-qwen-qwen3-8b-redhatai-qwen3-8b-speculat-55adfbb653": (
        "speculative decoding (EAGLE-3 draft): _dummy_sampler_run also runs the rejection "
        "sampler and the drafter's forward; not modelled"),
    "vllm-qwen-qwen3-8b-redhatai-qwen3-8b-speculat-ec228e75df": (
        "speculative decoding (EAGLE-3 draft): _dummy_sampler_run also runs the rejection "
        "sampler and the drafter's forward; not modelled"),
}

EXCEPTIONS["vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-8aba82786d"] = (
    "the same model eager at 16 / 512 (0.29, V2): printed 0.04 GiB (to 0.01) against 0.01 GiB of transient "
    "physics (a 0.06 GiB peak less the 0.04 GiB fused-MoE workspace the run keeps): a 0.03 GiB difference on a "
    "tiny figure (the fit keeps this start)")

#: Version read from a record's notes where the profile has none (the sampler regime needs it).
VERSION_FROM_NOTES = {
    "vllm-qwen3-8b-fp8-local-98c3c8ec4c": "0.11.0",  # notes: "gpu_worker.py:391, ~v0.11"
}


def _settings(d: dict, arch) -> dict:
    """The start-up's settings: as printed, else vLLM's defaults for its version and GPU."""
    w, g, par = d.get("workload") or {}, d.get("gpu") or {}, d.get("parallel") or {}
    version = d.get("framework_version") or VERSION_FROM_NOTES.get(d["profile_id"])
    engine = d.get("engine")
    engine = None if not engine else ("v0" if engine == "v0" else "v1")
    gmem, gname = g.get("memory_gib"), g.get("name")
    if gmem is None and gname:
        try:
            gmem = gpu_info(gname).usable_gib
        except (KeyError, ValueError):
            gmem = None
    max_model_len = w.get("max_model_len") or arch.max_position_embeddings
    dflt = vllm_defaults(version, engine=engine, gpu_name=gname, gpu_memory_gib=gmem, max_model_len=max_model_len,
                         multimodal=bool((arch.extra or {}).get("multimodal_towers")))
    prec = d.get("precision") or {}
    dtype = normalize_dtype(prec.get("dtype")) or default_dtype(arch, "vllm")
    prov = d.get("provenance") or {}
    text = vllm_settings_from_record({"evidence": prov.get("evidence"),
                                      "notes": " | ".join(filter(None, (prov.get("notes"), d.get("measurement_notes"))))})
    # a V1 multimodal start that profiled two or more items printed its token budget
    mbt = w.get("max_num_batched_tokens") or max_num_batched_tokens_from_encoder_budget(
        text["encoder_budget_tokens"], text["encoder_items_profiled"], engine or "v1")
    return {"max_num_seqs": w.get("max_num_seqs") or dflt["max_num_seqs"],
                "max_num_batched_tokens": mbt or dflt["max_num_batched_tokens"],
                "version": version, "engine": engine, "dtype_bytes": dtype_bytes(dtype), "tp": par.get("tp") or 1,
                # a pipeline-parallel record prints a stage without the sampler (rank 0)
                "last_stage": (par.get("pp") or 1) == 1, "quantization": prec.get("quantization"),
                # the runner its log names ("Using V2 Model Runner"), else the version's default
                "model_runner": (d.get("engine_settings") or {}).get("model_runner")}


def _activation_records():
    out = []
    for path in sorted(PUBLIC.glob("*.json")):
        d = json.loads(path.read_text())
        measured = d["measured"].get("activation_peak_gib")
        model_id = d["model"].get("id")
        if measured is None or not model_id:
            continue
        eng = d.get("engine_settings") or {}
        if printed_activation_includes_graph_estimate(d.get("framework_version")) and not eng.get("enforce_eager"):
            # 0.27+ prints the transient torch peak plus the CUDA-graph estimate
            if eng.get("cuda_graph_estimate_gib") is None:
                GRAPH_ESTIMATE_UNKNOWN.append((d["profile_id"], measured, d))
                continue
            measured = measured - eng["cuda_graph_estimate_gib"]
        try:
            arch = resolve_model(model_id).architecture
        except (KeyError, LookupError):
            continue
        if arch is None:
            continue
        parts = activation_peak_parts(arch, **_settings(d, arch))
        if cold_compile_in_profile_window(d.get("framework_version"), engine=d.get("engine"),
                                          enforce_eager=bool(eng.get("enforce_eager")),
                                          compile_cache=eng.get("compile_cache")):
            # its peak may hold the compiler's temporaries on top of the activations
            COLD_COMPILE.add(d["profile_id"])
        out.append((d["profile_id"], measured, parts))
    return out


def physics_figure(parts, version) -> float:
    """What vLLM prints, from the physics, GiB (fitting.physics.vllm.printed_activation_physics_bytes)."""
    return printed_activation_physics_bytes(parts, version) / GIB


#: 0.27+ records with CUDA graphs whose log states no graph estimate: the printed peak holds an
#: unknown estimate, so the activation physics cannot be checked on them
GRAPH_ESTIMATE_UNKNOWN: list = []
#: ids of the starts whose log shows a cold torch.compile (engine_settings.compile_cache "cold")
COLD_COMPILE: set = set()
RECORDS = _activation_records()
VERSION_OF = {json.loads(p.read_text())["profile_id"]: json.loads(p.read_text()).get("framework_version")
              for p in sorted(PUBLIC.glob("*.json"))}
#: cold starts whose printed peak exceeds the physics beyond the tolerance: GiB of excess
COLD_COMPILE_EXCESS = {pid: m - physics_figure(p, VERSION_OF[pid]) for pid, m, p in RECORDS
                       if pid in COLD_COMPILE and physics_figure(p, VERSION_OF[pid]) / m - 1 < -TOLERANCE}


def test_enough_profiles_are_checked():
    assert len(RECORDS) >= 30


@pytest.mark.parametrize("profile_id,measured,parts", RECORDS, ids=[r[0] for r in RECORDS])
def test_activation_peak_matches_the_printed_one(profile_id, measured, parts):
    err = physics_figure(parts, VERSION_OF[profile_id]) / measured - 1
    if profile_id in EXCEPTIONS:
        assert abs(err) > TOLERANCE, f"{profile_id} is now within {TOLERANCE:.0%}: drop it from EXCEPTIONS"
        return
    if profile_id in COLD_COMPILE and err < -TOLERANCE:
        # a cold torch.compile's temporaries raise the printed peak (vllm#54122): the physics is
        # then a lower bound, and the excess within what the estimator allows a first start
        excess = measured - physics_figure(parts, VERSION_OF[profile_id])
        assert 0 < excess <= COLD_COMPILE_EXCESS_MAX_GIB, (profile_id, excess)
        return
    assert abs(err) <= TOLERANCE, (
        f"{profile_id}: physics {parts.peak / GIB:.2f} GiB (forward {parts.forward / GIB:.2f}, sampler "
        f"{parts.sampler / GIB:.2f} + {parts.leftover / GIB:.2f}, {parts.regime}, N={parts.num_seqs}) vs "
        f"printed {measured:.2f} GiB ({err:+.1%})")


def test_exceptions_are_profiles_that_exist():
    ids = {r[0] for r in RECORDS}
    assert set(EXCEPTIONS) <= ids


def test_v2_model_runner_text_start_and_upper_bounds():
    """The V2 runner (default from 0.29) profiles a forward that skips attention and, up to
    0.32, a dummy sampler on the logits alone (vllm/v1/worker/gpu/model_runner.py
    ``profile_run`` / ``_dummy_sampler_run``, gpu/sample/sampler.py). Qwen2.5-1.5B on 0.30
    printed a 0.12 GiB transient: the V2 physics gives 0.13, the V1 runner's sampler 0.59.
    Two Qwen2.5-0.5B starts on 0.27.1 that their logs name V2 print 0.25 and 0.31 GiB with an
    unknown CUDA-graph estimate inside: the V2 transient must lie below, the V1 form (0.59,
    0.60) cannot."""
    by_id = {pid: (m, p) for pid, m, p in RECORDS}
    m, p = by_id["vllm-qwen-qwen2-5-1-5b-instruct-e463691c6a"]
    assert p.regime == "v2_logits" and abs(p.peak / GIB / m - 1) <= TOLERANCE
    bounded = {pid: (m, d) for pid, m, d in GRAPH_ESTIMATE_UNKNOWN
               if (d.get("engine_settings") or {}).get("model_runner") == "v2"}
    qwen = [pid for pid in bounded if pid.startswith("vllm-qwen-qwen2-5-0-5b")]
    assert len(qwen) == 2
    for pid in qwen:
        printed, d = bounded[pid]
        arch = resolve_model(d["model"]["id"]).architecture
        st = _settings(d, arch)
        v2 = activation_peak_parts(arch, **st)
        v1 = activation_peak_parts(arch, **{**st, "model_runner": "v1"})
        assert v2.regime == "v2_logits" and v2.peak / GIB <= printed < v1.peak / GIB, (pid, v2.peak / GIB, printed)


def test_printed_peak_holds_the_graph_estimate_from_027():
    """0.27+ prints transient torch peak + CUDA-graph estimate as 'peak activation'.

    Gemma-4 26B FP8 on an L40S, vLLM 0.29, same settings, two attention backends: TRITON_ATTN
    prints 1.73 GiB with an estimate of 0.50 GiB, FLASHINFER 4.05 GiB with 2.82 GiB. Less the
    estimates, both are the same 1.23 GiB transient peak of the profile run."""
    by_id = {pid: m for pid, m, _ in RECORDS}
    triton = by_id["vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-3b52be9c6b"]
    flashinfer = by_id["vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-1c898c2d29"]
    assert abs(triton - flashinfer) < 0.02
    assert printed_activation_includes_graph_estimate("0.27.1")
    assert not printed_activation_includes_graph_estimate("0.26.0")


def test_unknown_graph_estimates_are_few():
    # records whose 0.27+ log prints no estimate cannot be checked; they are listed, not guessed
    assert len(GRAPH_ESTIMATE_UNKNOWN) <= 8


def test_cold_compile_starts():
    """The compile-cache state is read from the logs for 53 starts (45 cold, 8 warm). Most cold
    starts print what the physics gives (Llama-3.1-8B-Instruct on 0.19: 1.89 GiB cold and warm);
    those that print more are all cold, Gemma-4 on 0.29 (all nine compiled starts, fresh pods
    compiling for 38-59 s) and one of two cold Qwen2.5-3B starts, and their excess is within
    COLD_COMPILE_EXCESS_MAX_GIB. No warm or eager start shows such an excess."""
    assert len(COLD_COMPILE) >= 35
    gemma4 = {pid for pid in COLD_COMPILE_EXCESS if "gemma-4" in pid}
    assert len(gemma4) == 9
    assert 0.4 < min(COLD_COMPILE_EXCESS.values()) and max(COLD_COMPILE_EXCESS.values()) <= COLD_COMPILE_EXCESS_MAX_GIB
    # the largest excess sets the bound the estimator applies to a first start (to 0.1 GiB)
    assert COLD_COMPILE_EXCESS_MAX_GIB - max(COLD_COMPILE_EXCESS.values()) < 0.1
    by_id = {pid: (m, p) for pid, m, p in RECORDS}
    # the same model eager on 0.29 (16 / 512) prints 0.04 GiB: no compile, no excess
    m, p = by_id["vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-8aba82786d"]
    assert m < 0.1 and physics_figure(p, "0.29.0") < 0.1


def test_cold_and_warm_starts_of_the_same_settings():
    """gemma-2-9b-it on vLLM 0.20.1 (RTX PRO 6000, 0.35 x G, 32 sequences, 8,192 tokens), the same
    command twice: the first start compiles (19.0 s) and gets 13.87 GiB of KV cache, the second
    loads the compiled graph (4.1 s) and gets 14.85 GiB. Same weights and CUDA-graph pool: the
    0.98 GiB is the cold compile's excess, within COLD_COMPILE_EXCESS_MAX_GIB. Llama-3.1-8B on
    0.19 (H100) prints the same 58.11 GiB pool and 1.89 GiB peak cold and warm."""
    def load(pid):
        return json.loads((PUBLIC / f"{pid}.json").read_text())
    cold, warm = load("vllm-google-gemma-2-9b-it-04afc731e8"), load("vllm-google-gemma-2-9b-it-b8596bba54")
    assert cold["engine_settings"]["compile_cache"] == "cold" and warm["engine_settings"]["compile_cache"] == "warm"
    for key in ("workload", "parallel", "precision", "framework_version"):
        assert cold[key] == warm[key]
    assert cold["engine_settings"]["gpu_memory_utilization"] == warm["engine_settings"]["gpu_memory_utilization"]
    assert cold["measured"]["weights_gib"] == warm["measured"]["weights_gib"]
    assert cold["measured"]["cuda_graph_gib"] == warm["measured"]["cuda_graph_gib"]
    excess = warm["measured"]["kv_cache_gib"] - cold["measured"]["kv_cache_gib"]
    assert abs(excess - 0.98) < 1e-9 and excess <= COLD_COMPILE_EXCESS_MAX_GIB
    llama = [load(p.stem) for p in PUBLIC.glob("vllm-meta-llama-llama-3-1-8b-instruct-*.json")]
    states = {d["engine_settings"].get("compile_cache") for d in llama
              if d["measured"].get("activation_peak_gib") == 1.89 and d["measured"].get("kv_cache_gib") == 58.11}
    assert states >= {"cold", "warm"}


def test_the_fit_leaves_out_only_the_cold_starts_whose_excess_shows():
    from fitting.data.profiles import load_profiles
    from fitting.overhead.observations import build_observations
    frame = load_profiles(ROOT / "profiles", strict=False).to_frame()
    obs = build_observations(frame[frame["framework"] == "vllm"], "vllm")
    reasons = {e["profile_id"]: e["reason"] for e in obs.excluded if "cold torch.compile" in e["reason"]}
    # the cold gemma-2 start prints no activation peak: its warm twin shows the excess
    twin = "vllm-google-gemma-2-9b-it-04afc731e8"
    assert "0.98 GiB above its warm twin's" in reasons.pop(twin)
    assert set(reasons) == set(COLD_COMPILE_EXCESS)
    assert set(reasons) <= COLD_COMPILE
    kept = set(obs.table["profile_id"])
    assert "vllm-google-gemma-2-9b-it-b8596bba54" in kept  # the warm twin
    # a cold start without a visible excess or a warmer twin stays in
    assert COLD_COMPILE - set(COLD_COMPILE_EXCESS) - {twin} & kept


def test_a_cold_start_is_left_out_only_beside_a_smaller_warm_twin():
    """Simulated frame (not measurements): the same command cold and warm, non-KV 1.00 GiB
    apart, 0.03 GiB apart (run-to-run noise), and a cold start whose settings differ."""
    base = {"model_id": "m", "framework_version": "0.20.1", "tp": 1, "max_num_seqs": 32}
    frame = pd.DataFrame([{**base, "compile_cache": "cold"}, {**base, "compile_cache": "warm"},
                          {**base, "compile_cache": "cold", "framework_version": "0.19.0"}])
    for gap, expect in ((1.00, True), (0.03, False)):
        reason = [None, None, None]
        _exclude_cold_with_warm_twin(frame, reason, np.array([20.0 + gap, 20.0, 25.0]))
        assert (reason[0] is not None) is expect and reason[1] is None and reason[2] is None
    already = ["other reason", None, None]
    _exclude_cold_with_warm_twin(frame, already, np.array([21.0, 20.0, 25.0]))
    assert already[0] == "other reason"


def test_summary_of_errors():
    errs = [abs(physics_figure(p, VERSION_OF[pid]) / m - 1) for pid, m, p in RECORDS
            if pid not in EXCEPTIONS and pid not in COLD_COMPILE_EXCESS]
    assert median(errs) < 0.05 and max(errs) <= TOLERANCE


def test_sampler_jump_between_016_and_017_on_the_same_settings():
    # Qwen3-14B, H100, same defaults: 5.64 GiB at 0.15 / 0.16, 2.23 GiB at 0.17 / 0.18
    by_id = {pid: (m, p) for pid, m, p in RECORDS}
    old = by_id["vllm-qwen-qwen3-14b-ca19e5233f"]
    new = by_id["vllm-qwen-qwen3-14b-f47d41d188"]
    assert old[1].regime == "v1_sort" and new[1].regime == "v1_triton"
    measured_ratio = old[0] / new[0]
    physics_ratio = old[1].peak / new[1].peak
    assert abs(physics_ratio / measured_ratio - 1) < 0.03


def test_activation_does_not_depend_on_tp_for_dense_models():
    # Qwen2.5-7B at tp 1 / 2 / 4 prints 2.21 GiB each time (vLLM 0.19): the sampler stage, with
    # all-gathered logits, is the peak
    ids = ["vllm-qwen-qwen2-5-7b-instruct-5e18c4c204", "vllm-qwen-qwen2-5-7b-instruct-e922906811",
           "vllm-qwen-qwen2-5-7b-instruct-7754c5a3a9"]
    by_id = {pid: p for pid, _, p in RECORDS}
    peaks = {by_id[i].peak for i in ids}
    assert len(peaks) == 1


# --------------------------------------------------------------------------- V2 runner state

def test_v2_runner_state_from_source():
    """``PenaltiesState`` (vllm/v1/worker/gpu/sample/penalties.py, 0.24-0.34) keeps
    ``output_bin_counts`` [max_num_reqs, V] int32 and ``prompt_bin_mask`` [max_num_reqs,
    ceil(V / 32)] int32 on the GPU; vLLM counts them as non-KV memory from 0.27
    (``total_consumed`` in vllm/utils/mem_utils.py)."""
    V = 128256  # Llama-3.1
    expected = 1024 * (V + 4008) * 4  # ceil(128256 / 32) = 4008
    assert runner_state_bytes(V, 1024, "0.34.0") == expected
    assert runner_state_bytes(V, 1024, "0.29.0") == expected  # V2 the default from 0.29
    assert runner_state_bytes(V, 256, "0.27.1", model_runner="v2") == expected / 4  # opt-in V2, counted
    assert runner_state_bytes(V, 1024, "0.28.0") == 0.0  # the V1 runner has no such tensor
    assert runner_state_bytes(V, 1024, "0.34.0", model_runner="v1") == 0.0
    assert runner_state_bytes(V, 1024, "0.26.0", model_runner="v2") == 0.0  # present, but not counted
    assert runner_state_bytes(V, 1024, "0.7.3") == 0.0 and runner_state_bytes(V, 1024, None) == 0.0


def _loaded_and_consumed(d):
    """'Model loading took X GiB' and 'Actual usage is Y GiB for consumed memory' of a log."""
    import re
    ev = d["provenance"].get("evidence") or ""
    m1 = re.search(r"Model loading took ([\d.]+) GiB", ev)
    m2 = re.search(r"Actual usage is ([\d.]+) GiB for consumed memory", ev)
    return (float(m1.group(1)), float(m2.group(1))) if m1 and m2 else None


def test_v2_runner_state_is_inside_the_consumed_memory():
    """Every V2 start that prints both its weight load and its consumed memory (weights +
    everything else allocated since the start-up snapshot) leaves room for the runner state:
    consumed - loaded >= the state (less 0.01 GiB of print rounding). Gemma-4 (V = 262,144):
    0.44 GiB at 16 sequences, 0.63-0.92 at 256, 2.13 at 451 and 2.29 at 512; the state is 0.02,
    0.26, 0.46 and 0.53 GiB."""
    checked = 0
    for path in sorted(PUBLIC.glob("*.json")):
        d = json.loads(path.read_text())
        figs = _loaded_and_consumed(d)
        if figs is None or not d["model"].get("id"):
            continue
        runner = (d.get("engine_settings") or {}).get("model_runner")
        version = d.get("framework_version")
        if (runner or default_model_runner(version)) != "v2":
            continue
        arch = resolve_model(d["model"]["id"]).architecture
        st = _settings(d, arch)
        state = runner_state_bytes(arch.vocab_size, st["max_num_seqs"], version, model_runner=runner) / GIB
        loaded, consumed = figs
        assert state > 0, d["profile_id"]
        assert consumed - loaded >= state - 0.01, (d["profile_id"], consumed - loaded, state)
        checked += 1
    assert checked >= 12


def test_v2_runner_state_enters_the_vllm_specs_exactly():
    """The state is a feature of the vLLM specs added as it is (no parameter): 0 on 0.28's V1 runner."""
    import numpy as np

    from fitting.overhead.specs import build_features, get_spec

    arch = resolve_model("meta-llama/Llama-3.1-8B-Instruct").architecture
    new = build_features(arch, framework="vllm", batch_size=1024, max_num_batched_tokens=8192,
                         framework_version="0.34.0")
    old = build_features(arch, framework="vllm", batch_size=1024, max_num_batched_tokens=8192,
                         framework_version="0.28.0")
    assert float(new["runner_state_gib"]) == pytest.approx(1024 * (128256 + 4008) * 4 / GIB)
    assert float(old["runner_state_gib"]) == 0.0
    for name in ("vllm", "vllm_fabric"):
        spec = get_spec(name)
        p = np.array([prm.start for prm in spec.params])
        without = {**new, "runner_state_gib": np.zeros_like(new["runner_state_gib"])}
        diff = float(spec.evaluate(new, p) - spec.evaluate(without, p))
        assert diff == pytest.approx(float(new["runner_state_gib"]))


def test_persistent_moe_workspace_explains_the_consumed_memory_growth():
    """Gemma-4 26B-A4B FP8 on 0.29 (V2): the consumed memory (weights + everything still
    allocated after the profile run) beyond the weight load grows with the token budget, 0.44
    GiB at 16 / 512, 0.63-0.92 at 256 / 2,048, 2.13-2.29 at 451-512 / 16,384. The fused-MoE
    workspace outlives the forward from 0.13 (moe_workspace_persistent: 88 KiB per token for
    this model) and the V2 sampling state stays allocated (runner_state_bytes): less both, the
    rest is flat (non-torch memory), while without the workspace it grows by more than 1 GiB."""
    import numpy as np

    rest, without = [], []
    for path in sorted(PUBLIC.glob("vllm-redhatai-gemma-4-26b-a4b-it-fp8-dynamic-*.json")):
        d = json.loads(path.read_text())
        figs = _loaded_and_consumed(d)
        if figs is None:
            continue
        arch = resolve_model(d["model"]["id"]).architecture
        st = _settings(d, arch)
        state = runner_state_bytes(arch.vocab_size, st["max_num_seqs"], d["framework_version"],
                                   model_runner="v2") / GIB
        work = moe_workspace_bytes(arch, st["max_num_batched_tokens"]) / GIB
        grown = figs[1] - figs[0]
        rest.append(grown - state - work)
        without.append(grown - state)
    assert len(rest) >= 10
    assert np.ptp(without) > 1.0 and np.ptp(rest) < 0.35
    assert 0.1 < min(rest) and max(rest) < 0.6
