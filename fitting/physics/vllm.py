"""vLLM's own memory mechanisms, read in its source, with the vLLM version as an input.

Pure functions: counts and bytes in, bytes (or lists, or regime names) out. The version is
a string as printed (``"0.19.0"``, ``"v0.26.1rc1.dev1177+ga9a17e709"``) or a tuple; every
rule names the file and the version range where it was read. Sources were read in the
released wheels (``pip download --no-deps vllm==X.Y.Z``) of 0.4.3, 0.5.0, 0.5.5, 0.6.0,
0.6.2-0.6.6, 0.7.0, 0.7.2, 0.7.3, 0.8.0-0.8.5, 0.9.0, 0.9.2, 0.10.0-0.10.2, 0.11.0-0.34.0
(not every patch release): a range "0.9.2-0.11.0" means "seen in every release read in that
range", and the first version of a change is the first release read that has it.

What vLLM calls the **activation peak** (``torch peak memory increase``, ``PyTorch
activation peak memory``, "A GiB for peak activation") is PyTorch's
``allocated_bytes.all.peak`` during ``profile_run`` minus what was allocated when the
profiling began (``vllm/utils/mem_utils.py::memory_profiling`` resets the peak counter
first; ``vllm/worker/worker.py`` in V0). ``profile_run`` (``vllm/v1/worker/
gpu_model_runner.py``; V0 ``vllm/worker/model_runner.py``) runs, in order,

1. the multimodal encoder on its dummy batch (multimodal models only; its outputs stay in
   the encoder cache until the end of the profile),
2. a dummy forward of ``max_num_batched_tokens`` tokens (:func:`profile_run_num_seqs`
   requests), without CUDA graphs,
3. on the last pipeline stage only, a dummy sampler run on the last token of each request:
   ``compute_logits`` gives ``[N, V_pad]`` logits in the model dtype (all-gathered, so
   **not** divided by ``tp``), then the sampler with ``temperature=0.5``, ``top_p=0.9``,
   ``top_k=V-1`` (V1, every release 0.8.0-0.33.0; V0: ``top_p=0.99``, ``top_k=V-1``).

so the peak is ``max(encoder, forward, sampler + what the forward left allocated)``
(:func:`activation_peak_bytes`). The sampler's temporaries are multiples of
``N x V x 4`` bytes whose count depends on the sampling path (:func:`sampler_regime`):
PyTorch's sort (V0, V1 up to 0.16), FlashInfer (V1 0.8-0.11 when installed, opt-in from
0.12), or the Triton top-k/top-p kernel (V1 from 0.17). See :data:`SAMPLER_REGIMES`.

From 0.27 the printed "peak activation" is the transient torch peak plus the CUDA-graph
estimate (:func:`printed_activation_includes_graph_estimate`).

The **V2 model runner** (``vllm/v1/worker/gpu/model_runner.py``, the default from 0.29:
:func:`default_model_runner`) runs the dummy forward with ``skip_attn=True`` and its own
dummy sampler (``gpu/sample/sampler.py``): in 0.29-0.32 on the logits alone (the dummy
requests keep the default sampling state: no fp32 copy, no top-k/top-p), from 0.33 followed
by a warm-up pass with every sampling feature on (:data:`SAMPLER_REGIMES` ``v2_logits``,
``v1_flashinfer`` / ``v2_triton``). Text-only V2 starts agree: Qwen2.5-1.5B (0.30) printed a
0.12 GiB transient (physics 0.13, the V1 form 0.59), and two Qwen2.5-0.5B starts (0.27.1, V2
by their own log) printed 0.25 and 0.31 GiB including a CUDA-graph estimate, below the V1
form's 0.59-0.60. Not explained: google/gemma-4-26B-A4B FP8 on an L40S (0.29, language model
only) shows a transient of 1.22-1.31 GiB at 256 sequences / 2,048 tokens and 0.89-1.24 GiB at
451-512 / 16,384 with CUDA graphs, 0.04 GiB eager at 16 / 512, where the V2 physics gives
0.3-1.9 GiB rising with the batch.

The FlashInfer top-k/top-p sampler is on by default from 0.21
(:data:`FLASHINFER_SAMPLER_DEFAULT_FROM`): V1-runner starts from then on take the
``v1_flashinfer`` path unless their log says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .architecture import Architecture
from .memory import VOCAB_PADDING, kv_bytes_per_layer
from .parameters import mlp_is_gated
from .towers import max_image_tokens

__all__ = [
    "ACCOUNTING_REGIMES",
    "DEFAULT_NUM_SMS",
    "FORWARD_HIDDEN_COPIES",
    "FORWARD_MLP_COPIES",
    "FUSED_MOE_CHUNK_TOKENS",
    "SAMPLER_REGIMES",
    "TRITON_SAMPLER_MIN_ROWS",
    "VLLM_NEWEST_VERIFIED",
    "ActivationParts",
    "KVPoolLayout",
    "SamplerRegime",
    "accounting_regime",
    "printed_activation_includes_graph_estimate",
    "printed_activation_physics_bytes",
    "graphs_in_pool_budget",
    "activation_peak_bytes",
    "activation_peak_parts",
    "cuda_graph_capture_sizes",
    "cuda_graph_mode",
    "custom_allreduce_enabled",
    "default_engine",
    "default_model_runner",
    "COLD_COMPILE_EXCESS_MAX_GIB",
    "COMPILE_CACHE_STATES",
    "cold_compile_in_profile_window",
    "normalize_compile_cache",
    "FLASHINFER_SAMPLER_DEFAULT_FROM",
    "V2_RUNNER_DEFAULT_FROM",
    "V2_SAMPLER_WARMUP_FROM",
    "forward_activation_bytes",
    "max_num_batched_tokens_from_encoder_budget",
    "v0_multimodal_profile_num_seqs",
    "moe_workspace_bytes",
    "moe_workspace_persistent",
    "padded_vocab_size",
    "parse_version",
    "profile_run_num_seqs",
    "PERSISTENT_BUFFERS_COUNTED_FROM",
    "runner_state_bytes",
    "sampler_fp32_copies",
    "sampler_leftover_bytes",
    "sampler_peak_bytes",
    "sampler_regime",
    "in_flight_tokens",
    "vllm_hybrid_kv_layout",
    "vllm_max_concurrency",
    "vllm_pool_tokens",
]

#: Newest vLLM release whose source these rules were checked against.
VLLM_NEWEST_VERIFIED = (0, 34, 0)

#: ``apply_top_k_top_p`` (0.17+) uses the Triton kernel only for ``logits.shape[0] >= 8``;
#: smaller batches take the PyTorch sort path (``vllm/v1/sample/ops/topk_topp_sampler.py``).
TRITON_SAMPLER_MIN_ROWS = 8

#: Streaming multiprocessors of an H100 SXM, the default for the Triton sampler's buffer
#: (``num_compute_units`` rows at most); pass the GPU's own count where known.
DEFAULT_NUM_SMS = 132

#: Forward pass, per token: copies of the hidden width alive at the MLP's peak. Counted in
#: the source: the residual stream in and out, the attention output and residual a
#: piecewise-compiled graph receives (held by the caller until it returns) = 4, plus the
#: normed MLP input alive while the gate/up GEMM writes its output = 5. The count of 4 puts
#: the three forward-only pipeline stages of the 0.19 records 14-22 % low, 5 within 12 %; a
#: first-order count, the fit's starting value.
FORWARD_HIDDEN_COPIES = 5.0

#: Forward pass, per token: copies of the (tp-split) MLP width alive at its peak: the fused
#: gate/up GEMM output (2) and the activation output (1); 2 for non-gated MLPs (up + act).
FORWARD_MLP_COPIES = 3.0


# ----------------------------------------------------------------------------- versions
_VERSION_RE = re.compile(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(version) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a vLLM version as printed, or None.

    Accepts ``"0.10.1.1"``, ``"v0.26.1rc1.dev1177+ga9a17e709"``, ``"0.8.5 (DAS/DTK build)"``,
    a tuple, or None. Pre-release and local suffixes are ignored (a ``0.26.1rc1`` build is
    treated as 0.26.1).

    >>> parse_version("v0.26.1rc1.dev1177+ga9a17e709"), parse_version("0.9"), parse_version(None)
    ((0, 26, 1), (0, 9, 0), None)
    """
    if version is None:
        return None
    if isinstance(version, tuple):
        return tuple(int(x) for x in (tuple(version) + (0, 0, 0))[:3])
    m = _VERSION_RE.match(str(version))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def default_engine(version) -> str | None:
    """Engine a release runs by default: ``"v1"`` from 0.8.0, ``"v0"`` before, None if unknown.

    V1 became the default in 0.8.0 (``VLLM_USE_V1`` default); the V0 engine
    (``vllm/worker/model_runner.py``) is gone from 0.11.0 (present in 0.10.2). V0 remained
    selectable (``VLLM_USE_V1=0``, or automatically for unsupported GPUs / features) in
    0.8-0.10: pass ``engine`` explicitly where a log shows V0.
    """
    v = parse_version(version)
    if v is None:
        return None
    return "v1" if v >= (0, 8, 0) else "v0"


def default_model_runner(version, engine: str | None = None) -> str | None:
    """GPU model runner a release's V1 engine uses by default: ``"v2"`` from
    :data:`V2_RUNNER_DEFAULT_FROM` (0.29.0), else ``"v1"``; None for V0 or an unknown version.

    ``VllmConfig.use_v2_model_runner`` (``vllm/config/vllm.py``, read in 0.29.0-0.34.0) returns
    True on CUDA unless the user sets ``VLLM_USE_V2_MODEL_RUNNER=0`` or the run needs a feature
    the V2 runner lacks (then the log says "Model Runner V2 does not yet support ..."). Pass the
    runner a log names ("Using V2 Model Runner") where it differs.

    >>> default_model_runner("0.28.0"), default_model_runner("0.29.0"), default_model_runner("0.6.4")
    ('v1', 'v2', None)
    """
    v = parse_version(version)
    eng = engine or default_engine(v)
    if v is None or eng is None or str(eng).lower() == "v0":
        return None
    return "v2" if v >= V2_RUNNER_DEFAULT_FROM else "v1"


#: States of vLLM's torch.compile cache at a start, as its log shows them: ``"cold"`` ("Compiling
#: a graph for dynamic shape / compile range ... takes", "saved AOT compiled function"),
#: ``"warm"`` ("Directly load the compiled graph(s) ... from the cache", "Directly load AOT
#: compilation from path").
COMPILE_CACHE_STATES = ("cold", "warm")


#: The largest excess non-KV memory per GPU of a cold-compile start over the profile-run
#: physics that our profiles show, GiB, rounded up to 0.1: gemma-4-26B-A4B FP8 on vLLM 0.29 (L40S,
#: 256 / 2,048, nine fresh-pod starts) printed 0.43-1.17 GiB above it; one of two cold Qwen2.5-3B
#: starts on 0.10.2 0.43 GiB (the other none); gemma-2-9b-it on 0.20.1 started cold with 0.98 GiB
#: less KV cache than warm. 32 of the 42 cold starts that print a peak show none. The tests check
#: every cold start against it. vLLM issues report more for other models (1.85 GiB for a 27B
#: NVFP4 model, 1CatAI/1Cat-vLLM#518; "tens of GiB", vllm#54122): a bound on what we measured.
COLD_COMPILE_EXCESS_MAX_GIB = 1.2


def normalize_compile_cache(value) -> str | None:
    """``"cold"``, ``"warm"`` or None (not stated) from a profile's ``compile_cache`` setting.

    >>> normalize_compile_cache("Cold"), normalize_compile_cache(None), normalize_compile_cache("hit")
    ('cold', None, 'warm')
    """
    if value is None:
        return None
    v = str(value).strip().lower()
    if v in ("cold", "miss", "compiled"):
        return "cold"
    if v in ("warm", "hit", "loaded", "cached"):
        return "warm"
    if v in ("", "unknown", "none", "null"):
        return None
    raise ValueError(f"compile_cache {value!r}: expected one of {COMPILE_CACHE_STATES} (or null)")


def cold_compile_in_profile_window(version=None, *, engine: str | None = None, enforce_eager: bool = False,
                                   compile_cache=None) -> bool | None:
    """Whether a cold torch.compile ran inside vLLM's memory-profiling window (True), did not
    (False: eager, V0, or a warm compile cache), or is not known (None: compiled, cache state
    not stated).

    The V1 engine compiles the model at its first forward, which is ``profile_run`` inside
    ``memory_profiling`` (``vllm/v1/worker/gpu_worker.py::determine_available_memory``, read
    in 0.29.0 and 0.34.0; the peak counter is reset only when the window opens). On a cache
    miss, Inductor's autotuning and combo-kernel benchmarks (``benchmark_combo_kernel``, on
    with torch >= 2.9: ``vllm/config/compilation.py``) and the AOT export allocate
    temporaries that are freed before serving but raise the allocator's peak, so vLLM counts
    them as activation memory and the KV pool is smaller until the cache is warm (vLLM issues
    #54122 and #54383, open; PR #54209 proposes resetting the peak after compilation). Their
    size follows the compiled graph and its kernels' autotuning, not a closed form: in our
    profiles a cold start of gemma-2-9b-it held 0.98 GiB more non-KV memory than the same
    settings with a warm cache (vLLM 0.20.1). A V0 engine compiles nothing by default.

    >>> cold_compile_in_profile_window("0.29.0", compile_cache="cold")
    True
    >>> cold_compile_in_profile_window("0.29.0", compile_cache="warm"), cold_compile_in_profile_window("0.29.0")
    (False, None)
    >>> cold_compile_in_profile_window("0.29.0", enforce_eager=True, compile_cache="cold")
    False
    """
    if enforce_eager:
        return False
    eng = engine or default_engine(version)
    if eng is not None and str(eng).lower() == "v0":
        return False
    state = normalize_compile_cache(compile_cache)
    if state is None:
        return None
    return state == "cold"


# ----------------------------------------------------------------------------- sampler
@dataclass(frozen=True)
class SamplerRegime:
    """One sampling path of vLLM's dummy sampler run.

    Attributes
    ----------
    name : str
    fp32_copies : float
        Temporaries alive at the sampler's peak, in units of ``N x V x 4`` bytes, **not**
        counting the logits in the model dtype (``N x V_pad x b``, added separately).
        The source-derived value: the fit's starting value / prior mean.
    description : str
        What the copies are.
    source : str
        File and version range.
    """

    name: str
    fp32_copies: float
    description: str
    source: str


SAMPLER_REGIMES = {
    "v0_sort": SamplerRegime(
        "v0_sort", 9.0,
        "fp32 logits (1) + torch.sort values (1) + int64 indices (2) + PyTorch's segmented-sort "
        "scratch: int64 reverse indices (2) and cub's alternate key/value buffers (1 + 2); "
        "fewer than 128 rows take the full-sort path (12 copies, see sampler_fp32_copies)",
        "vllm/model_executor/layers/sampler.py::_apply_top_k_top_p (V0, 0.4.3-0.10.2); "
        "dummy SamplingParams(top_p=0.99, top_k=vocab_size-1) in vllm/worker/model_runner.py::"
        "profile_run; PyTorch aten/src/ATen/native/cuda/SortStable.cu (segmented_sort_pairs)",
    ),
    "v1_sort": SamplerRegime(
        "v1_sort", 9.0,
        "as v0_sort: Sampler.forward's logits.to(float32) (1), then apply_top_k_top_p sorts "
        "(values 1, int64 indices 2, sort scratch 2 + 3); the later top-p temporaries (probs, "
        "masks, scatter output) stay below the sort's peak",
        "vllm/v1/sample/sampler.py, vllm/v1/sample/ops/topk_topp_sampler.py::apply_top_k_top_p "
        "(V1 0.8.0-0.16.0 when FlashInfer is not used; 0.17+ below 8 rows)",
    ),
    "v1_flashinfer": SamplerRegime(
        "v1_flashinfer", 3.0,
        "fp32 logits (1) + FlashInfer top_k_mask_logits output (1) + softmax probs (1)",
        "vllm/v1/sample/ops/topk_topp_sampler.py::flashinfer_sample -> flashinfer.sampling."
        "top_k_top_p_sampling_from_logits (filter_apply_order='top_k_first', flashinfer 0.2.8): "
        "V1 0.9.0-0.11.0 whenever flashinfer >= 0.2.3 is installed (default on, "
        "VLLM_USE_FLASHINFER_SAMPLER=0 turns it off; the pip wheel lists flashinfer only as an "
        "extra until 0.11, the Docker image ships it); opt-in (=1) in 0.12.0-0.20.x; on by default "
        "again from 0.21.0 (flashinfer-python a requirement of the wheel from 0.20) on GPUs its "
        "attention backend supports",
    ),
    "v1_flashinfer_probs": SamplerRegime(
        "v1_flashinfer_probs", 2.0,
        "fp32 logits (1) + softmax probs (1), sampled by flashinfer's top_k_top_p_sampling_from_probs",
        "vllm/v1/sample/ops/topk_topp_sampler.py (V1 0.8.0-0.8.5): FlashInfer is used only when "
        "the installed flashinfer version string is < '0.2.3'",
    ),
    "v1_triton": SamplerRegime(
        "v1_triton", 3.0,
        "fp32 logits (1, filtered in place by the Triton kernel) + softmax probs (1) + the "
        "exponential noise of random_sample (1), plus the kernel's cached per-program buffer "
        "(min(next_pow2(min(num_sms, N)), num_sms) rows of V fp32, kept for the process)",
        "vllm/v1/sample/ops/topk_topp_triton.py::apply_top_k_top_p_triton and "
        "topk_topp_sampler.py::apply_top_k_top_p (V1 0.17.0-0.20.x, and 0.21+ where FlashInfer's "
        "sampler is off or unsupported, rows >= 8)",
    ),
    "v2_logits": SamplerRegime(
        "v2_logits", 0.0,
        "logits only: the V2 runner's dummy requests keep the default sampling state (top_k = V, "
        "top_p = 1, no penalties, bias, bad words or min_p), so apply_sampling_params returns the "
        "model-dtype logits without an fp32 copy, no top-k/top-p runs, and gumbel_sample keeps "
        "[N, ceil(V / 1024)] partial maxima (negligible)",
        "vllm/v1/worker/gpu/model_runner.py::_dummy_sampler_run and gpu/sample/sampler.py "
        "(V2 model runner, 0.29.0-0.32.x; 'NOTE(woosuk): During the initial memory profiling, "
        "the sampler may skip top_k, top_p, and logprobs')",
    ),
    "v2_triton": SamplerRegime(
        "v2_triton", 1.0,
        "the V2 runner's warm-up pass without FlashInfer: the fp32 copy of the logits (1), "
        "filtered in place by the Triton top-k/top-p kernel (plus its cached per-program buffer, "
        "as v1_triton), then gumbel_sample (no probs, no noise tensor); log-probabilities are "
        "computed per requested token without a [N, V] tensor (logprob.py::compute_token_logprobs)",
        "vllm/v1/worker/gpu/model_runner.py::_dummy_sampler_run (0.33.0-0.34.0: a second pass with "
        "SamplingParams.for_sampler_warmup(): temperature 0.9, top_p 0.9, top_k 50, min_p, penalties, "
        "logit bias, bad words, logprobs 5), gpu/sample/sampler.py::_sample_random",
    ),
}

#: First release whose V1 engine runs the V2 model runner by default on CUDA
#: (``vllm/config/vllm.py::VllmConfig.use_v2_model_runner``: True unless
#: ``VLLM_USE_V2_MODEL_RUNNER=0``, a ROCm architecture kept on V1, no Triton, or a feature V2
#: does not support; the logs print "Using V2 Model Runner"). From 0.24 some models already
#: ran it: a log that says so selects it for an earlier release.
V2_RUNNER_DEFAULT_FROM = (0, 29, 0)
#: First release whose V2 dummy sampler run adds the warm-up pass with every sampling feature
#: on (``_dummy_sampler_run``: "warmup_kernels (run after the KV cache is sized) pays for the
#: fp32 logits pipeline, so the profiled peak must too"); absent in 0.29.0-0.32.x.
V2_SAMPLER_WARMUP_FROM = (0, 33, 0)
#: First release whose FlashInfer top-k/top-p sampler is on by default
#: (``VLLM_USE_FLASHINFER_SAMPLER`` defaults to True in ``vllm/envs.py`` from 0.21.0; None,
#: i.e. opt-in, in 0.12-0.20; flashinfer-python is a requirement of the wheel from 0.20), on
#: GPUs FlashInfer's attention backend supports (compute capability 7.5-12.1 in 0.21, 8.0+ in
#: 0.34): older cards fall back to the Triton / PyTorch path, as a log's own line shows.
FLASHINFER_SAMPLER_DEFAULT_FROM = (0, 21, 0)

#: Full-sort path of PyTorch's stable sort (2 <= rows < 128): int2 index/segment pairs twice
#: (2 + 2), cub's key output (1) and alternate key/value buffers (1 + 2) instead of 5.
_SORT_SMALL_BATCH_EXTRA = 3.0
#: One row: ``segmented_sort_large_segments`` needs one row of indices plus cub's buffers.
_SORT_ONE_ROW_LESS = 2.0


def sampler_regime(version=None, engine: str | None = None, flashinfer=None, *, num_seqs=None,
                   model_runner: str | None = None) -> str:
    """Which sampling path vLLM's dummy sampler run takes.

    Parameters
    ----------
    version : str or tuple, optional
        vLLM version; None = unknown (V1 then defaults to the newest behaviour, Triton).
    engine : {"v0", "v1"}, optional
        Default: :func:`default_engine` of ``version`` (``"v1"`` when both are unknown).
    flashinfer : bool or str, optional
        V1 only. True/False: FlashInfer's sampler in use or not (``VLLM_USE_FLASHINFER_SAMPLER``
        and whether flashinfer is installed). A version string (``"0.2.1.post2"``) decides
        for 0.8.x, where only flashinfer < 0.2.3 was used. None = not known: the pip default
        (no FlashInfer up to 0.11, where it is an extra; opt-in in 0.12-0.20; on from 0.21).
    num_seqs : int, optional
        Rows of the dummy batch: from 0.17 fewer than :data:`TRITON_SAMPLER_MIN_ROWS` rows
        take the sort path (V1 runner).
    model_runner : {"v1", "v2"}, optional
        The GPU model runner of a V1-engine run; default :func:`default_model_runner` of the
        version (V2 from 0.29; the V1 runner when the version is unknown).

    Returns
    -------
    str
        A key of :data:`SAMPLER_REGIMES`.

    Notes
    -----
    ``vllm/v1/sample/ops/topk_topp_sampler.py::TopKTopPSampler.__init__``:

    * 0.8.0-0.8.5: FlashInfer if installed and ``flashinfer.__version__ < "0.2.3"``
      (string comparison) and the env var is not 0;
    * 0.9.0-0.11.0: FlashInfer if installed (>= 0.2.3) and the env var is not 0;
    * 0.12.0-0.20.x: FlashInfer only with ``VLLM_USE_FLASHINFER_SAMPLER=1``;
    * 0.21.0+: FlashInfer by default (:data:`FLASHINFER_SAMPLER_DEFAULT_FROM`) where the GPU
      supports it;
    * 0.17.0+: otherwise the Triton top-k/top-p kernel for >= 8 rows, the sort below.

    The V2 model runner (``vllm/v1/worker/gpu/model_runner.py::_dummy_sampler_run``) runs its
    own sampler (``gpu/sample/sampler.py``): in 0.29-0.32 on the logits alone
    (``v2_logits``); from 0.33 (:data:`V2_SAMPLER_WARMUP_FROM`) a second pass with every
    sampling feature on, whose top-k/top-p goes through FlashInfer's
    ``top_k_top_p_sampling_from_logits`` on the fp32 logits (the temporaries of
    ``v1_flashinfer``) or, without FlashInfer, the Triton kernel (``v2_triton``).

    >>> sampler_regime("0.16.0"), sampler_regime("0.17.0"), sampler_regime("0.10.1", flashinfer=True)
    ('v1_sort', 'v1_triton', 'v1_flashinfer')
    >>> sampler_regime("0.21.0"), sampler_regime("0.30.0"), sampler_regime("0.34.0"), sampler_regime("0.34.0", flashinfer=False)
    ('v1_flashinfer', 'v2_logits', 'v1_flashinfer', 'v2_triton')
    """
    v = parse_version(version)
    engine = engine or default_engine(v) or "v1"
    engine = "v1" if str(engine).lower().startswith("v1") else str(engine).lower()
    if engine == "v0":
        return "v0_sort"
    if engine != "v1":
        raise ValueError(f"engine: expected 'v0' or 'v1', got {engine!r}")
    runner = str(model_runner or default_model_runner(v, "v1") or "v1").lower()
    if runner not in ("v1", "v2"):
        raise ValueError(f"model_runner: expected 'v1' or 'v2', got {model_runner!r}")
    fi_default = v is None or v >= FLASHINFER_SAMPLER_DEFAULT_FROM
    if runner == "v2":
        if v is not None and v < V2_SAMPLER_WARMUP_FROM:
            return "v2_logits"
        fi_on = fi_default if flashinfer is None else bool(flashinfer)
        return "v1_flashinfer" if fi_on else "v2_triton"
    fi = flashinfer
    if fi is None and v is not None and v >= FLASHINFER_SAMPLER_DEFAULT_FROM:
        fi = True
    if v is not None and v < (0, 9, 0):
        if isinstance(fi, str):
            fi = fi < "0.2.3"  # vLLM 0.8.x compares the version strings
        return "v1_flashinfer_probs" if fi else "v1_sort"
    if isinstance(fi, str):
        fi = True  # installed; from 0.9 any flashinfer >= 0.2.3 is used when not opted out
    if fi and (v is None or v >= (0, 9, 0)):
        return "v1_flashinfer"
    if v is not None and v < (0, 17, 0):
        return "v1_sort"
    if num_seqs is not None and int(num_seqs) < TRITON_SAMPLER_MIN_ROWS:
        return "v1_sort"
    return "v1_triton"


def sampler_fp32_copies(regime: str, num_seqs: int | None = None) -> float:
    """Source-derived ``fp32_copies`` of a regime, with PyTorch's sort path by batch size.

    ``aten/src/ATen/native/cuda/SortStable.cu::do_launch_stable_sort_kernel`` picks
    ``segmented_sort_large_segments`` for one row, ``segmented_sort_pairs_by_full_sort``
    for fewer than 128 rows (scratch: two int2 arrays, cub's key output and alternate
    buffers, 3 copies more than the segmented path) and cub's segmented radix sort from
    128 rows (the regime's value).

    >>> sampler_fp32_copies("v1_sort", 1024), sampler_fp32_copies("v1_sort", 64)
    (9.0, 12.0)
    """
    base = SAMPLER_REGIMES[regime].fp32_copies
    if regime.endswith("_sort") and num_seqs is not None:
        n = int(num_seqs)
        if n == 1:
            return base - _SORT_ONE_ROW_LESS
        if n < 128:
            return base + _SORT_SMALL_BATCH_EXTRA
    return base


def padded_vocab_size(vocab_size: int, tp: int = 1, pad_to: int = VOCAB_PADDING) -> int:
    """Vocabulary rows of vLLM's LM head (all ranks together): a multiple of ``pad_to``.

    ``vllm/model_executor/layers/vocab_parallel_embedding.py``: ``pad_vocab_size(vocab,
    DEFAULT_VOCAB_PADDING_SIZE=64)``, then ``divide(padded, tp)`` per rank (which must be
    exact). The logits the sampler sees are all-gathered, ``[N, padded]``, then sliced to
    the original vocabulary (a view, so the model-dtype tensor keeps the padded width).

    >>> padded_vocab_size(32001), padded_vocab_size(151936)
    (32064, 151936)
    """
    padded = -(-int(vocab_size) // pad_to) * pad_to
    if padded % int(tp):
        padded = -(-padded // int(tp)) * int(tp)
    return padded


def sampler_peak_bytes(num_seqs, vocab_size, version=None, *, engine=None, flashinfer=None, logits_dtype_bytes=2,
                       num_sms: int = DEFAULT_NUM_SMS, fp32_copies=None, regime: str | None = None):
    r"""Bytes allocated at the peak of vLLM's dummy sampler run (per GPU, last PP stage).

    Parameters
    ----------
    num_seqs : int or array
        :math:`N`, rows of the dummy batch (:func:`profile_run_num_seqs`).
    vocab_size : int
        The model's vocabulary :math:`V` (config ``vocab_size``).
    version, engine, flashinfer
        Select the regime (:func:`sampler_regime`) unless ``regime`` is given.
    logits_dtype_bytes : int, default 2
        Bytes of the model dtype (the logits come out of the LM head in it; 4 for float32).
    num_sms : int, default 132
        Streaming multiprocessors (the Triton kernel's buffer rows).
    fp32_copies : float or array, optional
        Override of the regime's multiplier (e.g. a fitted value).
    regime : str, optional
        A key of :data:`SAMPLER_REGIMES`.

    Returns
    -------
    float or ndarray

    Notes
    -----
    .. math:: S = N V_{pad} b + m\, N V \cdot 4 + [\text{triton}]\; R_{buf} V \cdot 4,
              \quad R_{buf} = \min(2^{\lceil \log_2 \min(n_{SM}, N) \rceil}, n_{SM})

    with :math:`m` the regime's ``fp32_copies``. Not divided by ``tp``: every rank gathers
    the whole vocabulary (``LogitsProcessor._gather_logits``, all-gather in V1).

    Examples
    --------
    Qwen3-14B (:math:`V` = 151936) at :math:`N` = 1024 rows, bf16:

    >>> round(sampler_peak_bytes(1024, 151936, "0.16.0") / 2**30, 2)
    5.51
    >>> round(sampler_peak_bytes(1024, 151936, "0.17.0") / 2**30, 2)
    2.1
    """
    N = np.asarray(num_seqs, dtype=float)
    if np.any(N < 1):
        raise ValueError(f"num_seqs: must be >= 1, got {num_seqs!r}")
    V = int(vocab_size)
    V_pad = padded_vocab_size(V)
    if regime is None:
        n0 = int(np.min(N))
        regime = sampler_regime(version, engine, flashinfer, num_seqs=n0)
    if regime not in SAMPLER_REGIMES:
        raise ValueError(f"unknown sampler regime {regime!r}; expected one of {sorted(SAMPLER_REGIMES)}")
    if fp32_copies is None:
        m = np.vectorize(lambda n: sampler_fp32_copies(regime, int(n)), otypes=[float])(N)
    else:
        m = np.asarray(fp32_copies, dtype=float)
    out = N * V_pad * float(logits_dtype_bytes) + m * N * V * 4.0
    if regime in ("v1_triton", "v2_triton"):
        progs = np.minimum(N, num_sms)
        rows = np.minimum(2.0 ** np.ceil(np.log2(progs)), num_sms)
        out = out + rows * V * 4.0
    out = np.asarray(out, dtype=float)
    return float(out) if out.ndim == 0 else out


def max_num_batched_tokens_from_encoder_budget(budget_tokens, items_profiled, engine: str = "v1"):
    """The token budget a V1 multimodal start ran with, from its printed encoder budget.

    vLLM V1 logs "Encoder cache will be initialized with a budget of B tokens, and profiled
    with K <modality> items of the maximum feature size" (``v1/worker/gpu_model_runner.py``
    ``profile_run`` in 0.10.2; ``v1/worker/gpu/mm/encoder_runner.py`` in 0.34.0). There
    ``B = min(compute, cache)``, both ``max(max_num_batched_tokens, t)`` with ``t`` the
    largest item's tokens (``v1/core/encoder_cache_manager.py::compute_mm_encoder_budget``;
    ``SchedulerConfig`` sets ``max_num_encoder_input_tokens = encoder_cache_size =
    max_num_batched_tokens``, 0.10.2 and 0.34.0), and ``K <= B // t``
    (``MultiModalBudget.get_max_items``). So ``K >= 2`` means ``t <= B / 2 < B``, and ``B`` is
    the token budget itself. With one item the budget may be ``t`` alone: nothing follows.

    Parameters
    ----------
    budget_tokens, items_profiled : int or None
        As printed.
    engine : {"v1", "v0"}
        V0 prints no such line.

    Returns
    -------
    int or None
        ``max_num_batched_tokens``, or None where the line does not decide it.

    >>> max_num_batched_tokens_from_encoder_budget(16384, 5), max_num_batched_tokens_from_encoder_budget(153600, 1)
    (16384, None)
    """
    if budget_tokens is None or items_profiled is None or str(engine).lower() == "v0":
        return None
    if int(items_profiled) < 2 or int(budget_tokens) <= 0:
        return None
    return int(budget_tokens)


def v0_multimodal_profile_num_seqs(max_num_seqs, max_num_batched_tokens, max_mm_tokens):
    """Sequences of V0's profiling batch for a multimodal model (its sampler's rows).

    ``worker/model_runner.py::profile_run`` (V0, read in 0.7.1 and 0.8.2): ``max_num_seqs =
    min(max_num_seqs, max_num_batched_tokens // max_mm_tokens)``, raised to 1 with a warning,
    where ``max_mm_tokens`` sums each modality's limit times its largest item. With an image
    alone counted (:func:`fitting.physics.towers.max_image_tokens`) this is an upper bound.

    >>> v0_multimodal_profile_num_seqs(256, 5120, 16384), v0_multimodal_profile_num_seqs(256, 5120, 576)
    (1, 8)
    """
    return max(1, min(int(max_num_seqs), int(max_num_batched_tokens) // int(max_mm_tokens)))


def profile_run_num_seqs(max_num_seqs, max_num_batched_tokens, engine: str = "v1"):
    """Requests :math:`N` of the profiling batch, the sampler's rows.

    V1 (``gpu_model_runner.py::_dummy_run``, 0.8.0-0.33.0): ``num_reqs = max_num_seqs if
    num_tokens >= max_num_seqs else num_tokens`` with ``num_tokens = max_num_batched_tokens``,
    i.e. :math:`\\min(B, T)`. V0 (``worker/model_runner.py::profile_run``): one sequence group
    per ``max_num_seqs`` (lengths ``T // B`` plus the remainder; ``SchedulerConfig`` requires
    ``T >= B``), i.e. :math:`B`.

    >>> profile_run_num_seqs(1024, 8192), profile_run_num_seqs(1024, 512), profile_run_num_seqs(256, 8192, "v0")
    (1024, 512, 256)
    """
    B = np.asarray(max_num_seqs)
    T = np.asarray(max_num_batched_tokens)
    out = B if str(engine).lower() == "v0" else np.minimum(B, T)
    out = np.asarray(out)
    return int(out) if out.ndim == 0 else out


def sampler_leftover_bytes(arch: Architecture, num_tokens, num_seqs, version=None, *, engine=None,
                           dtype_bytes=2, model_runner: str | None = None):
    """Forward outputs still allocated while the dummy sampler runs.

    * V2 model runner (``vllm/v1/worker/gpu/model_runner.py::profile_run``, 0.29-0.34):
      ``hidden_states`` ``[T, h]`` and ``sample_hidden_states = hidden_states[logits_indices]``
      ``[N, h]`` (an indexed copy): :math:`(T + N) h b`.

    * V1 from 0.9.2 (``profile_run``: ``hidden_states, last_hidden_states = self._dummy_run(
      ...)``): the whole ``[T, h]`` hidden states, the ``[N, h]`` last-token rows, and
      ``_dummy_sampler_run``'s ``torch.rand_like`` of them: :math:`(T + 2N) h b`.
    * V1 0.8.0-0.9.0 (``_dummy_run`` returns ``hidden_states[logit_indices]``): :math:`2 N h b`.
    * V0 (``execute_model`` keeps ``hidden_states`` while sampling): :math:`(T + N) h b`.
    """
    T = np.asarray(num_tokens, dtype=float)
    N = np.asarray(num_seqs, dtype=float)
    h = float(arch.hidden_size)
    v = parse_version(version)
    engine = engine or default_engine(v) or "v1"
    runner = model_runner or default_model_runner(v, engine)
    if str(engine).lower() == "v0" or str(runner).lower() == "v2":
        rows = T + N
    elif v is not None and v < (0, 9, 2):
        rows = 2 * N
    else:
        rows = T + 2 * N
    out = np.asarray(rows * h * float(dtype_bytes))
    return float(out) if out.ndim == 0 else out


#: First release whose memory profile counts persistent allocations made after the start-up
#: snapshot (``memory_profiling``: ``non_kv_cache_memory = total_consumed +
#: transient_peak_headroom``, ``total_consumed`` from ``mem_get_info``; vllm/utils/mem_utils.py,
#: read in 0.27.0-0.34.0). Up to 0.26 the non-KV memory was ``weights_memory + torch peak
#: increase + non-torch increase``, and a tensor allocated between the weight load and the
#: profile run was in neither.
PERSISTENT_BUFFERS_COUNTED_FROM = (0, 27, 0)


def runner_state_bytes(vocab_size, max_num_seqs, version=None, *, engine=None, model_runner: str | None = None):
    """Persistent per-request sampling state of the V2 model runner that vLLM counts as non-KV memory.

    The V2 runner's sampler (``vllm/v1/worker/gpu/sample/penalties.py::PenaltiesState``, built
    in ``GPUModelRunner.load_model`` after the weights; read in 0.24.0-0.34.0) keeps two GPU
    tensors for frequency / presence / repetition penalties, whether or not a request uses them:
    ``output_bin_counts`` ``[max_num_reqs, V]`` int32 and ``prompt_bin_mask``
    ``[max_num_reqs, ceil(V / 32)]`` int32, with ``max_num_reqs = max_num_seqs`` and ``V`` the
    model's vocabulary (``model_config.get_vocab_size()``, not padded), on every GPU that
    samples. The request history ``all_token_ids`` ``[max_num_reqs, max_model_len]`` lives in
    host memory (UVA) unless a speculative method asks for it on the GPU (not counted here). The
    V1 runner keeps no such ``[max_num_reqs, V]`` tensor (its penalties are built per step).

    vLLM counts the tensors in its non-KV memory from :data:`PERSISTENT_BUFFERS_COUNTED_FROM`
    (0.27.0); before, the profile missed them (returns 0: they are then not in the figure a fit
    sees).

    Parameters
    ----------
    vocab_size : int
    max_num_seqs : int or array
    version : str, optional
    engine : {"v0", "v1"}, optional
    model_runner : {"v1", "v2"}, optional
        The runner the log names; default :func:`default_model_runner` (V2 from 0.29).

    Returns
    -------
    float or ndarray
        Bytes per GPU.

    Examples
    --------
    Llama-3.1-8B (V = 128,256) with vLLM 0.34's H100 default of 1024 sequences: 0.50 GiB.

    >>> round(runner_state_bytes(128256, 1024, "0.34.0") / 2**30, 3)
    0.505
    >>> runner_state_bytes(128256, 1024, "0.28.0"), runner_state_bytes(128256, 1024, "0.26.0", model_runner="v2")
    (0.0, 0.0)
    """
    v = parse_version(version)
    eng = engine or default_engine(v)
    runner = model_runner or default_model_runner(v, eng)
    n = np.asarray(max_num_seqs, dtype=float)
    counted = (v is not None and v >= PERSISTENT_BUFFERS_COUNTED_FROM and str(eng).lower() != "v0"
               and str(runner).lower() == "v2")
    V = int(vocab_size)
    out = np.asarray(n * (V + -(-V // 32)) * 4.0 if counted else n * 0.0)
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- forward
def _mlp_widths(arch: Architecture):
    """(dense width, routed width per token (k x moe_I), shared width) of the widest MLP."""
    dense = arch.widest_dense_intermediate_size if (not arch.is_moe or arch.dense_layers) else 0
    if not arch.is_moe:
        return float(dense), 0.0, 0.0
    return float(dense), float(arch.num_experts_per_tok * arch.moe_intermediate_size), \
        float(arch.shared_expert_intermediate_size or 0)


def forward_activation_bytes(arch: Architecture, num_tokens, *, tp=1, dtype_bytes=2,
                             hidden_copies=FORWARD_HIDDEN_COPIES, mlp_copies=None):
    r"""Peak bytes of one layer's working set in vLLM's profiling forward (per GPU).

    Parameters
    ----------
    arch : Architecture
    num_tokens : int or array
        :math:`T`, tokens of the dummy batch (``max_num_batched_tokens``).
    tp : int or array
        Divides the column-parallel widths (attention heads, MLP); the hidden width is
        replicated on every rank.
    dtype_bytes : int, default 2
    hidden_copies : float, default :data:`FORWARD_HIDDEN_COPIES`
    mlp_copies : float, optional
        Default :data:`FORWARD_MLP_COPIES` for gated MLPs and MoE, 2 otherwise.

    Returns
    -------
    float or ndarray

    Notes
    -----
    The profile forward keeps no per-layer state (no KV cache is allocated yet, and the
    attention kernels are skipped without attention metadata), so the peak is one layer's
    working set, independent of the number of layers, at the larger of

    * attention: :math:`T (k_h h + (q + 2 kv) d / tp + q d / tp) b` (QKV output and
      attention output; heads per rank :math:`\lceil heads / tp \rceil`),
    * MLP: :math:`T (k_h h + c_I I / tp) b`; for MoE the fused-MoE caches
      (``fused_moe.py``: ``intermediate_cache1`` :math:`k \cdot 2 I_e`, ``cache2``
      :math:`k I_e`, ``cache3`` :math:`k h`) plus the shared expert and the fp32 router
      logits :math:`E \cdot 4 / b`.

    :math:`k_h` = ``hidden_copies``. No logits in the forward: V1 computes them in the
    sampler run (:func:`sampler_peak_bytes`).
    """
    T = np.asarray(num_tokens, dtype=float)
    tp_a = np.asarray(tp, dtype=float)
    b = float(dtype_bytes)
    h = float(arch.hidden_size)
    d = float(arch.head_dim)
    q_heads = np.ceil(arch.num_attention_heads / tp_a)
    if arch.is_mla:
        v_dim = float(arch.v_head_dim or arch.head_dim)
        attn = (q_heads * d + q_heads * v_dim + float(arch.kv_lora_rank + arch.qk_rope_head_dim)) + q_heads * v_dim
    else:
        # the widest attention layer (Gemma-4's global layers have their own head size and KV heads)
        attn = 0.0
        for n_kv, hd in {arch.attention_shape(i)[:2] for i in arch.kv_layers} or {(arch.num_kv_heads, arch.head_dim)}:
            attn = np.maximum(attn, (q_heads + 2 * np.ceil(n_kv / tp_a)) * hd + q_heads * hd)
    dense, routed, shared = _mlp_widths(arch)
    c_i = mlp_copies if mlp_copies is not None else (FORWARD_MLP_COPIES if (mlp_is_gated(arch) or arch.is_moe) else 2.0)
    mlp = c_i * dense / tp_a
    if arch.is_moe:
        k = float(arch.num_experts_per_tok)
        moe = c_i * routed / tp_a + k * h + c_i * shared / tp_a + float(arch.num_experts) * 4.0 / b
        mlp = np.maximum(mlp, moe)
    out = T * (float(hidden_copies) * h + np.maximum(attn, mlp)) * b
    out = np.asarray(out)
    return float(out) if out.ndim == 0 else out


#: ``VLLM_FUSED_MOE_CHUNK_SIZE`` default (tokens per fused-MoE chunk), 0.13.0-0.34.0.
FUSED_MOE_CHUNK_TOKENS = 16 * 1024


def moe_workspace_persistent(arch: Architecture, version=None, *, engine=None, quantization: str | None = None) -> bool:
    """Whether the fused-MoE workspace outlives the forward (and so adds to the sampler stage).

    From 0.13.0 the modular fused-MoE kernel takes its buffers from the process-wide
    ``current_workspace_manager()`` (``vllm/v1/worker/workspace.py``: grows, never shrinks;
    ``fused_moe/modular_kernel.py::_allocate_buffers``), so they are still allocated while
    the dummy sampler runs. Before, and for the MXFP4 path of gpt-oss (own kernels), the
    caches are per-call temporaries of the forward. V1 only.
    """
    if not arch.is_moe:
        return False
    v = parse_version(version)
    eng = engine or default_engine(v) or "v1"
    if str(eng).lower() == "v0" or (v is not None and v < (0, 13, 0)):
        return False
    q = str(quantization or "").lower()
    return not ("mxfp4" in q or arch.text_model_type == "gpt_oss")


def moe_workspace_bytes(arch: Architecture, num_tokens, *, tp=1, dtype_bytes=2):
    r"""Bytes of the Triton fused-MoE workspaces for a batch of ``num_tokens`` (per GPU).

    ``fused_moe/fused_moe.py::TritonExperts.workspace_shapes`` (0.13.0-0.19.0):
    ``workspace1 = (M, k, max(I/tp, h))`` (shared with the ``(M, h)`` output),
    ``workspace2 = (M, k, max(2 I/tp, h))``, ``M = min(T, 16384)``, in the activation dtype:

    .. math:: W = M k \big(\max(I/tp, h) + \max(2I/tp, h)\big) b
    """
    if not arch.is_moe:
        return 0.0
    T = np.asarray(num_tokens, dtype=float)
    M = np.minimum(T, FUSED_MOE_CHUNK_TOKENS)
    tp_a = np.asarray(tp, dtype=float)
    k = float(arch.num_experts_per_tok)
    i_tp = float(arch.moe_intermediate_size) / tp_a
    h = float(arch.hidden_size)
    out = M * k * (np.maximum(i_tp, h) + np.maximum(2 * i_tp, h)) * float(dtype_bytes)
    out = np.asarray(out)
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- composition
@dataclass(frozen=True)
class ActivationParts:
    """The stages of vLLM's profile run, bytes per GPU, and their maximum.

    Attributes
    ----------
    forward, sampler, leftover, encoder, peak : float
        ``peak = max(encoder, forward, sampler + leftover)`` (``sampler`` and ``leftover``
        are 0 off the last pipeline stage); ``leftover`` includes a persistent fused-MoE
        workspace (:func:`moe_workspace_persistent`).
    num_seqs : int
        Rows of the dummy sampler batch.
    regime : str
        The sampler regime used.
    persistent : float
        Bytes of the peak that the run allocates and keeps (the persistent fused-MoE
        workspace); 0 where none.

    Notes
    -----
    From 0.27 vLLM prints ``torch peak - torch allocated after the run`` as the transient
    peak (``vllm/utils/mem_utils.py::memory_profiling``: ``transient_peak_headroom``) and
    counts what the run keeps in ``total_consumed``; :attr:`transient` is that figure.
    """

    forward: float
    sampler: float
    leftover: float
    encoder: float
    peak: float
    num_seqs: int
    regime: str
    persistent: float = 0.0

    @property
    def transient(self) -> float:
        """``peak - persistent``: the part of the peak freed after the run (bytes)."""
        return self.peak - self.persistent


def activation_peak_parts(arch: Architecture, *, max_num_seqs: int, max_num_batched_tokens: int, version=None,
                          engine=None, flashinfer=None, dtype_bytes=2, tp: int = 1, last_stage: bool = True,
                          encoder_bytes: float = 0.0, num_sms: int = DEFAULT_NUM_SMS,
                          sampler_fp32_copies_override=None, hidden_copies=FORWARD_HIDDEN_COPIES,
                          quantization: str | None = None, moe_workspace: bool | None = None,
                          model_runner: str | None = None) -> ActivationParts:
    """:class:`ActivationParts` of one start-up (scalar inputs); see :func:`activation_peak_bytes`."""
    v = parse_version(version)
    eng = engine or default_engine(v) or "v1"
    eng = "v0" if str(eng).lower() == "v0" else "v1"
    runner = None if eng == "v0" else (model_runner or default_model_runner(v, eng))
    T = int(max_num_batched_tokens)
    N = profile_run_num_seqs(int(max_num_seqs), T, eng)
    image_tokens = max_image_tokens(arch) if eng == "v0" else None
    if image_tokens:
        # V0 fits max_num_seqs dummy prompts of the largest images into the token budget
        N = v0_multimodal_profile_num_seqs(N, T, image_tokens)
    fwd = forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes, hidden_copies=hidden_copies)
    regime = sampler_regime(v, eng, flashinfer, num_seqs=N, model_runner=runner)
    if last_stage:
        samp = sampler_peak_bytes(N, arch.vocab_size, regime=regime, logits_dtype_bytes=dtype_bytes,
                                  num_sms=num_sms, fp32_copies=sampler_fp32_copies_override)
        left = sampler_leftover_bytes(arch, T, N, v, engine=eng, dtype_bytes=dtype_bytes, model_runner=runner)
    if moe_workspace is None:
        moe_workspace = moe_workspace_persistent(arch, v, engine=eng, quantization=quantization)
    kept = moe_workspace_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes) if moe_workspace else 0.0
    if last_stage:
        left += kept
    else:
        samp = left = 0.0
    peak = max(float(encoder_bytes), fwd, samp + left)
    return ActivationParts(fwd, samp, left, float(encoder_bytes), peak, int(N), regime, float(min(kept, peak)))


def printed_activation_physics_bytes(parts: ActivationParts, version) -> float:
    """The physics of what vLLM prints as its activation peak (bytes): the profile run's peak,
    less what the run keeps (:attr:`ActivationParts.persistent`) from
    :data:`PERSISTENT_BUFFERS_COUNTED_FROM` (0.27), which prints ``torch peak - torch allocated
    after the run`` (``utils/mem_utils.py::memory_profiling``) and counts the kept buffers as
    consumed memory. The CUDA-graph estimate 0.27+ adds to the printed figure is not in it.
    """
    v = parse_version(version)
    kept_counted_apart = v is not None and v >= PERSISTENT_BUFFERS_COUNTED_FROM
    return parts.transient if kept_counted_apart else parts.peak


def activation_peak_bytes(arch: Architecture, *, max_num_seqs: int, max_num_batched_tokens: int, version=None,
                          engine=None, flashinfer=None, dtype_bytes=2, tp: int = 1, last_stage: bool = True,
                          encoder_bytes: float = 0.0, num_sms: int = DEFAULT_NUM_SMS,
                          sampler_fp32_copies_override=None, hidden_copies=FORWARD_HIDDEN_COPIES,
                          quantization: str | None = None, moe_workspace: bool | None = None,
                          model_runner: str | None = None) -> float:
    r"""vLLM's printed activation peak, from the physics of ``profile_run`` (bytes per GPU).

    Parameters
    ----------
    arch : Architecture
    max_num_seqs, max_num_batched_tokens : int
        The engine's settings (defaults: :func:`fitting.data.frameworks.vllm_defaults`).
    version, engine, flashinfer
        Select the sampler regime (:func:`sampler_regime`) and what the forward leaves.
    dtype_bytes : int, default 2
    tp : int, default 1
    last_stage : bool, default True
        False for a pipeline stage other than the last (no sampler run).
    encoder_bytes : float, default 0
        Peak of the multimodal encoder's dummy batch (not modelled here; the caller's).
    num_sms : int
    sampler_fp32_copies_override : float, optional
        A fitted sampler multiplier instead of the regime's.
    hidden_copies : float
    quantization : str, optional
        Weight format (decides the fused-MoE path, :func:`moe_workspace_persistent`).
    moe_workspace : bool, optional
        Override whether the fused-MoE workspace persists into the sampler stage.
    model_runner : {"v1", "v2"}, optional
        The V1 engine's GPU model runner (default :func:`default_model_runner`: V2 from 0.29).

    Returns
    -------
    float

    Notes
    -----
    .. math:: A = \max\big(E_{enc},\; F(T),\; S(N, V) + L(T, N)\big)

    with :math:`F` = :func:`forward_activation_bytes`, :math:`S` =
    :func:`sampler_peak_bytes`, :math:`L` = :func:`sampler_leftover_bytes`, :math:`N` =
    :func:`profile_run_num_seqs`. Torch allocations outside the stages (CUDA-graph pools,
    compile-time buffers) are not part of it.

    Examples
    --------
    Llama-3.1-8B on an H100 server (1024 / 8192), vLLM 0.19: printed 1.89 GiB.

    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B").architecture
    >>> round(activation_peak_bytes(a, max_num_seqs=1024, max_num_batched_tokens=8192, version="0.19.0") / 2**30, 2)
    1.85
    """
    return activation_peak_parts(
        arch, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, version=version,
        engine=engine, flashinfer=flashinfer, dtype_bytes=dtype_bytes, tp=tp, last_stage=last_stage,
        encoder_bytes=encoder_bytes, num_sms=num_sms, sampler_fp32_copies_override=sampler_fp32_copies_override,
        hidden_copies=hidden_copies, quantization=quantization, moe_workspace=moe_workspace,
        model_runner=model_runner).peak


# ----------------------------------------------------------------------------- accounting
ACCOUNTING_REGIMES = {
    "free_memory_diff": (
        "KV pool = total x util - (free at init - free after profile): everything the process "
        "allocated, torch or not, counts (vllm/worker/worker.py::determine_num_available_blocks, "
        "0.4.3-0.6.3)"),
    "peak_torch_plus_non_torch": (
        "KV pool = total x util - (torch allocated peak incl. weights + non-torch); prints "
        "peak_torch_memory / non_torch_memory (vllm/worker/worker.py, 0.6.4, 0.6.4.post1)"),
    "profile_increase": (
        "KV pool = total x util - (weights + torch peak increase during profile + non-torch "
        "increase since the baseline snapshot taken before distributed init, so NCCL / custom "
        "all-reduce buffers count as non-torch) (vllm/utils memory_profiling; V0 0.6.5-0.10.2, "
        "V1 0.8.0-0.10.2)"),
    "profile_increase_after_dist_init": (
        "as profile_increase, but V1's init snapshot is taken after init_worker_distributed_"
        "environment: NCCL / custom all-reduce buffers allocated at init are outside "
        "non_torch_increase (vllm/v1/worker/gpu_worker.py::init_device, 0.11.0-0.19.x); from "
        "0.18 a CUDA-graph estimate is printed but not subtracted "
        "(VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default 0)"),
    "cuda_graph_estimate_subtracted": (
        "as profile_increase_after_dist_init, and the profiled CUDA-graph memory estimate is "
        "subtracted before sizing the KV pool (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default "
        "1; vllm/v1/worker/gpu_worker.py::determine_available_memory, 0.20.0-0.34.0)"),
}


def accounting_regime(version, engine: str | None = None) -> str | None:
    """How a release turns its memory profile into the KV-pool size (a key of :data:`ACCOUNTING_REGIMES`).

    >>> [accounting_regime(v) for v in ("0.5.4", "0.6.4", "0.7.3", "0.11.0", "0.20.0")]
    ['free_memory_diff', 'peak_torch_plus_non_torch', 'profile_increase', 'profile_increase_after_dist_init', 'cuda_graph_estimate_subtracted']
    """
    v = parse_version(version)
    if v is None:
        return None
    eng = engine or default_engine(v)
    if v < (0, 6, 4):
        return "free_memory_diff"
    if v < (0, 6, 5):
        return "peak_torch_plus_non_torch"
    if str(eng).lower() == "v0" or v < (0, 11, 0):
        return "profile_increase"
    if v < (0, 20, 0):
        return "profile_increase_after_dist_init"
    return "cuda_graph_estimate_subtracted"


def graphs_in_pool_budget(version, engine: str | None = None) -> bool:
    """True where the release subtracts its profiled CUDA-graph memory before sizing the KV
    pool (``accounting_regime`` ``cuda_graph_estimate_subtracted``, 0.20+): the graphs then use
    the ``u G`` budget, not the rest of the GPU.

    >>> graphs_in_pool_budget("0.19.1"), graphs_in_pool_budget("0.20.0"), graphs_in_pool_budget(None)
    (False, True, False)
    """
    return accounting_regime(version, engine) == "cuda_graph_estimate_subtracted"


def printed_activation_includes_graph_estimate(version) -> bool:
    """True where vLLM's printed "GiB for peak activation" also holds the CUDA-graph estimate.

    From 0.27 ``memory_profiling`` measures the consumed memory with ``mem_get_info`` and
    keeps only the transient torch peak (``transient_peak_headroom = torch_peak -
    torch_allocated`` after the profile run, vllm/utils/mem_utils.py), and the worker prints
    ``peak_activation_memory = transient_peak_headroom + cudagraph_memory_estimate_applied``
    (vllm/v1/worker/gpu_worker.py 0.27.1-0.33; 0.34 adds the estimate unconditionally). Up to
    0.26 the printed figure is the torch peak increase alone. The activation physics is then
    compared with the printed figure less the estimate (``cuda_graph_estimate_gib``).

    >>> printed_activation_includes_graph_estimate("0.26.0"), printed_activation_includes_graph_estimate("0.27.1")
    (False, True)
    """
    v = parse_version(version)
    return v is not None and v >= (0, 27, 0)


# ----------------------------------------------------------------------------- communication
def custom_allreduce_enabled(tp: int, *, version=None, interconnect: str | None = None, p2p: bool | None = True,
                             same_node: bool = True, disable_custom_all_reduce: bool = False,
                             mnnvl: bool = False) -> bool:
    """Whether vLLM's custom all-reduce (IPC buffers, non-torch memory) is active for a TP group.

    Parameters
    ----------
    tp : int
        Tensor-parallel world size.
    version : str, optional
    interconnect : {"nvlink", "pcie"}, optional
        ``"nvlink"``: every pair fully connected by NVLink (``is_fully_connected``); None =
        unknown, treated as NVLink (the data-centre default).
    p2p : bool, optional
        CUDA peer access between the GPUs (``_can_p2p``); None = assumed available.
    same_node : bool, default True
    disable_custom_all_reduce : bool, default False
    mnnvl : bool, default False
        Multi-node NVLink (0.27+ handles world size 16 / other nodes through it).

    Notes
    -----
    ``vllm/distributed/device_communicators/custom_all_reduce.py::CustomAllreduce.__init__``
    (0.4.3-0.34.0) disables it, with a warning, when: ``world_size == 1``; the world size is
    not in ``_SUPPORTED_WORLD_SIZES`` ({2, 4, 6, 8}; {2, 4, 6, 8, 16} from 0.27); the ranks are
    not all on one node (up to 0.26; from 0.27 multi-node only with MNNVL); ``world_size > 2``
    and the GPUs are not fully NVLink-connected; or peer-to-peer access fails.

    >>> custom_allreduce_enabled(2, interconnect="pcie"), custom_allreduce_enabled(4, interconnect="pcie")
    (True, False)
    >>> custom_allreduce_enabled(3), custom_allreduce_enabled(8)
    (False, True)
    """
    tp = int(tp)
    if disable_custom_all_reduce or tp <= 1:
        return False
    v = parse_version(version)
    sizes = {2, 4, 6, 8, 16} if (v is not None and v >= (0, 27, 0)) else {2, 4, 6, 8}
    if tp not in sizes:
        return False
    if not same_node:
        return bool(mnnvl and v is not None and v >= (0, 27, 0))
    if tp > 2 and str(interconnect or "nvlink").lower() != "nvlink":
        return False
    return p2p is not False


# ----------------------------------------------------------------------------- CUDA graphs
def cuda_graph_mode(version, engine: str | None = None, *, enforce_eager: bool = False) -> str:
    """Default CUDA-graph mode: ``none``, ``v0`` (whole-model graphs per batch size),
    ``piecewise`` (V1 0.8.0-0.10.2) or ``full_and_piecewise`` (V1 from 0.11.0,
    ``vllm/config/compilation.py``: "FULL_AND_PIECEWISE (v1 default)").
    """
    if enforce_eager:
        return "none"
    v = parse_version(version)
    eng = engine or default_engine(v) or "v1"
    if str(eng).lower() == "v0":
        return "v0"
    if v is not None and v < (0, 11, 0):
        return "piecewise"
    return "full_and_piecewise"


def cuda_graph_capture_sizes(max_num_seqs: int, max_num_batched_tokens: int, version=None, *,
                             engine: str | None = None, enforce_eager: bool = False, num_speculative_tokens: int = 0,
                             performance_mode: str | None = None) -> list[int]:
    """Batch sizes vLLM captures CUDA graphs for, by default (no ``cudagraph_capture_sizes`` given).

    Parameters
    ----------
    max_num_seqs, max_num_batched_tokens : int
    version : str, optional
        None = the newest rule.
    engine : {"v0", "v1"}, optional
    enforce_eager : bool
        No graphs.
    num_speculative_tokens : int
        V1 from 0.12: the decode query length ``1 + k`` multiplies the size limit.
    performance_mode : str, optional
        ``"interactivity"`` (0.17+): every size 1-32 instead of 1, 2, 4, 8, ...

    Notes
    -----
    * V0 0.5.x (``worker/model_runner.py``): ``[1, 2, 4] + 8i`` up to 256, the sizes up to
      ``max_num_seqs`` padded to a multiple of 8 (capped at 256).
    * V0 0.6.0-0.10.2: the same list up to 8192 (``[8 * i for i in range(1, 1025)]``); the
      largest is the smallest size ``>= max_num_seqs``.
    * V1 0.8.0-0.9.x: ``[1, 2, 4] + range(8, 513, 8)`` (``cuda_graph_sizes=[512]`` in 0.9.2),
      sizes ``<= max_num_batched_tokens``.
    * V1 0.10.0-0.11.x: ``[1, 2, 4] + range(8, M + 1, 8)`` with ``M = min(2 max_num_seqs,
      512)`` (``SchedulerConfig.cuda_graph_sizes``), sizes ``<= max_num_batched_tokens``.
    * V1 0.12.0-0.34.0 (``config/vllm.py::_set_cudagraph_sizes``): ``M = min(max_num_seqs
      (1 + k) 2, 512, max_num_batched_tokens)``; ``[1, 2, 4] + range(8, min(M + 1, 256), 8)
      + range(256, M + 1, 16)``, sizes ``<= M``.

    With ``full_and_piecewise`` (:func:`cuda_graph_mode`) each size is captured twice (a
    full decode graph and a piecewise graph).

    >>> len(cuda_graph_capture_sizes(1024, 8192, "0.19.0")), cuda_graph_capture_sizes(4, 8192, "0.19.0")
    (51, [1, 2, 4, 8])
    """
    if enforce_eager:
        return []
    v = parse_version(version)
    eng = engine or default_engine(v) or "v1"
    B, T = int(max_num_seqs), int(max_num_batched_tokens)
    if str(eng).lower() == "v0":
        if v is not None and v < (0, 6, 0):
            sizes = [1, 2, 4] + [8 * i for i in range(1, 33)]
            top = min(B if B <= 4 else -(-B // 8) * 8, 256)
            if B <= 4:
                top = 1 if B == 1 else (2 if B == 2 else 4)
            return [s for s in sizes if s <= top]
        sizes = [1, 2, 4] + [8 * i for i in range(1, 1025)]
        larger = [s for s in sizes if s >= B]
        top = larger[0] if larger else sizes[-1]
        return [s for s in sizes if s <= top]
    if v is not None and v < (0, 10, 0):
        return [s for s in [1, 2, 4] + list(range(8, 513, 8)) if s <= T]
    if v is not None and v < (0, 12, 0):
        M = min(2 * B, 512)
        return [s for s in [1, 2, 4] + list(range(8, M + 1, 8)) if s <= T]
    M = min(B * (1 + int(num_speculative_tokens)) * 2, 512, T)
    if performance_mode == "interactivity" and (v is None or v >= (0, 17, 0)):
        sizes = list(range(1, min(M, 32) + 1))
    else:
        sizes = [s for s in (1, 2, 4) if s <= M]
    if M >= 8:
        sizes += list(range(8, min(M + 1, 256), 8))
    if M >= 256:
        sizes += list(range(256, M + 1, 16))
    return sorted(set(sizes))


# ----------------------------------------------------------------------------- KV pool groups
@dataclass(frozen=True)
class KVPoolLayout:
    """How vLLM's V1 hybrid KV-cache manager lays a sliding-window model out in its pool.

    ``vllm/v1/core/kv_cache_utils.py`` (0.9.2-0.34.0): ``unify_kv_cache_spec_page_size``
    raises the block size of layers with a smaller page until every page holds
    ``page_bytes``; ``_get_kv_cache_groups_uniform_page_size`` splits the full-attention and
    the sliding layers into groups of ``group_size`` layers (the smaller count; the larger
    when it is below 1.25x the smaller from 0.12, 1.5x from 0.19), padding the last group of
    a kind; ``get_kv_cache_config_from_groups`` makes ``pool // (group_size x page_bytes)``
    blocks, each group drawing its blocks from them.

    Attributes
    ----------
    group_size : int
        Layers per group (padding included).
    full_groups, sliding_groups : int
        Groups of full-attention and of sliding-window layers.
    page_bytes : float
        Bytes one layer's block holds (the largest page; per GPU).
    block_size : int
        The configured tokens per block (``--block-size``, 16 by default): the smallest of the groups'.
    full_block_size, sliding_block_size : int
        Tokens per block of the full-attention and of the sliding groups (the kind with the smaller
        per-token page gets a proportionally larger block).
    sliding_window : int
    """

    group_size: int
    full_groups: int
    sliding_groups: int
    page_bytes: float
    block_size: int
    full_block_size: int
    sliding_block_size: int
    sliding_window: int

    @property
    def num_groups(self) -> int:
        return self.full_groups + self.sliding_groups

    @property
    def bytes_per_block(self) -> float:
        """Pool bytes one block id stands for (one page in each layer of a group)."""
        return self.group_size * self.page_bytes


def vllm_hybrid_kv_layout(arch: Architecture, *, version=None, block_size: int = 16, kv_cache_dtype: str = "auto",
                          dtype: str = "bfloat16", tp: int = 1) -> KVPoolLayout | None:
    """The :class:`KVPoolLayout` of a model with full-attention and sliding-window layers, or None.

    None where vLLM keeps one uniform pool: no sliding layers, every layer sliding, recurrent
    (Mamba / linear-attention) layers (their state pages follow other rules), V0, or V1 before
    0.9.2 (no hybrid manager: sliding layers are sized as full ones).
    """
    v = parse_version(version)
    if (v is not None and v < (0, 9, 2)) or str(default_engine(v) or "v1") == "v0" or arch.is_hybrid:
        return None
    sliding = set(arch.sliding_layers)
    per_layer = kv_bytes_per_layer(arch, kv_cache_dtype=kv_cache_dtype, dtype=dtype, tp=tp)
    full = [i for i in per_layer if i not in sliding]
    slide = [i for i in per_layer if i in sliding]
    if not full or not slide:
        return None
    bs = int(block_size)
    page = max(per_layer.values()) * bs
    # a kind with a smaller page per token gets page / its page times the tokens per block
    full_bs = bs * max(int(round(page / (max(per_layer[i] for i in full) * bs))), 1)
    slide_bs = bs * max(int(round(page / (max(per_layer[i] for i in slide) * bs))), 1)
    small, large = sorted((len(full), len(slide)))
    factor = 1.5 if v is None or v >= (0, 19, 0) else (1.25 if v >= (0, 12, 0) else None)
    group = large if factor is not None and large < small * factor else small
    return KVPoolLayout(group_size=group, full_groups=-(-len(full) // group), sliding_groups=-(-len(slide) // group),
                        page_bytes=float(page), block_size=bs, full_block_size=full_bs,
                        sliding_block_size=slide_bs, sliding_window=int(arch.sliding_window))


def in_flight_tokens(max_num_batched_tokens: int, version=None, *, async_scheduling: bool | None = None,
                     pp: int = 1) -> int:
    """Tokens a sliding-window group reserves beyond its window (``max_in_flight_tokens``).

    ``SlidingWindowSpec.max_memory_usage_bytes``: ``max_num_batched_tokens`` up to 0.25; from
    0.26 ``VllmConfig.max_in_flight_tokens`` = ``max_concurrent_batches x
    max_num_batched_tokens``, 2 batches with async scheduling (on by default unless an
    incompatible option is set: None = default) at ``pp = 1``, else ``pp``.
    """
    v = parse_version(version)
    mbt = int(max_num_batched_tokens)
    if v is not None and v < (0, 26, 0):
        return mbt
    async_on = True if async_scheduling is None else bool(async_scheduling)
    batches = (2 if pp <= 1 else pp) if async_on else pp
    return batches * mbt


def vllm_max_concurrency(layout: KVPoolLayout, pool_bytes, *, max_model_len: int, max_num_batched_tokens: int,
                         version=None, async_scheduling: bool | None = None, pp: int = 1):
    """vLLM's "Maximum concurrency for N tokens per request" of a hybrid sliding-window pool.

    ``get_max_concurrency_for_kv_cache_config`` (0.9.2-0.34.0): ``num_blocks`` over the blocks
    one ``max_model_len`` request takes in every group: ``cdiv(L, block)`` in a full-attention
    group, ``cdiv(min(window - 1 + in-flight tokens, L), block) + 1`` in a sliding one
    (:func:`in_flight_tokens`).
    """
    L = int(max_model_len)
    num_blocks = np.floor(np.asarray(pool_bytes, float) / layout.bytes_per_block)
    held = min(layout.sliding_window - 1 + in_flight_tokens(max_num_batched_tokens, version,
                                                             async_scheduling=async_scheduling, pp=pp), L)
    per_request = (layout.full_groups * -(-L // layout.full_block_size)
                   + layout.sliding_groups * (-(-held // layout.sliding_block_size) + 1))
    return num_blocks / per_request


def vllm_pool_tokens(layout: KVPoolLayout, pool_bytes, *, max_model_len: int, max_num_batched_tokens: int,
                     version=None, async_scheduling: bool | None = None, pp: int = 1):
    """The "GPU KV cache size: N tokens" vLLM prints for a hybrid sliding-window pool.

    Up to 0.20 ``num_blocks // num_groups x block_size`` (``_report_kv_cache_config``); from
    0.21 ``int(max_concurrency x max_model_len)`` (``get_kv_cache_capacity``), which counts a
    sliding group's blocks only up to its window.
    """
    v = parse_version(version)
    if v is not None and v < (0, 21, 0):
        num_blocks = np.floor(np.asarray(pool_bytes, float) / layout.bytes_per_block)
        return np.floor(num_blocks / layout.num_groups) * layout.block_size
    conc = vllm_max_concurrency(layout, pool_bytes, max_model_len=max_model_len,
                                max_num_batched_tokens=max_num_batched_tokens, version=version,
                                async_scheduling=async_scheduling, pp=pp)
    return np.floor(conc * int(max_model_len))
