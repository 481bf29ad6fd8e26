r"""Framework-overhead model specifications (numpy only: the estimator imports this).

Each spec is a named, documented formula for the per-GPU framework overhead in GiB, the
memory a framework uses beyond the exact physics (weights, the workload's KV cache and the
first-order activation estimate). The fitted response is

.. math::

    y = W_{gpu} + KV_{gpu} + A_{gpu} + \mathrm{overhead}(\theta; x)

where ``y`` is what the framework's profiles measure (see
:mod:`fitting.data.frameworks`): for frameworks that preallocate a KV pool (vLLM, SGLang,
TRT-LLM, TGI) the pool is not workload memory, so ``KV_gpu = 0`` and ``y`` is the non-KV
footprint; for frameworks whose KV cache grows with the workload ``KV_gpu`` is the KV of
the stated workload and ``y`` the peak.

Features (all per GPU, GiB unless named):

* ``weights_gib`` W/n, ``weights_total_gib`` W, ``kv_gib``, ``activations_gib`` A
* ``model_mem_gib`` M = weights + kv + activations (the seed plan's "model memory")
* ``n_gpus`` n, ``tp`` (tensor-parallel degree; n = tp x pp), ``batch_size`` b (concurrent
  sequences; vLLM: max_num_seqs)
* ``vocab_size`` V
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fitting import physics
from fitting.physics import llamacpp as llamacpp_physics
from fitting.physics import tgi as tgi_physics
from fitting.physics import trtllm as trtllm_physics
from fitting.physics import transformers as transformers_physics
from fitting.physics import vllm as vllm_physics
from fitting.data.frameworks import framework_info

LN2 = float(np.log(2.0))
_GIB = float(2**30)

FEATURE_NAMES = (
    "weights_gib", "weights_total_gib", "kv_gib", "activations_gib", "model_mem_gib",
    "n_gpus", "batch_size", "vocab_size", "tp",
    # vLLM's profile run (fitting.physics.vllm), 0 for other frameworks: its forward of
    # max_num_batched_tokens, the dummy sampler's temporaries, what the forward leaves during
    # sampling, and the sampler regime (SAMPLER_REGIME_CODES)
    "forward_gib", "sampler_gib", "leftover_gib", "sampler_regime",
    # vLLM's V2 model runner: persistent per-request sampling state counted as non-KV memory
    # (fitting.physics.vllm.runner_state_bytes), 0 elsewhere
    "runner_state_gib",
    # 1.0 when the GPUs of a tensor-parallel group talk over PCIe (no NVLink, or vLLM's custom
    # all-reduce off), 0.0 with NVLink or unknown (see build_features' ``interconnect``)
    "pcie_interconnect",
)
#: Codes of vLLM's sampler implementations in the ``sampler_regime`` feature. The V2 model
#: runner's own paths (3: logits only, 0.29-0.32; 4: its Triton warm-up pass) have no fitted
#: correction: their stage is the source's figure (few starts, most of one model).
SAMPLER_REGIME_CODES = {"v0_sort": 0, "v1_sort": 0, "v1_triton": 1, "v1_flashinfer": 2, "v1_flashinfer_probs": 2,
                        "v2_logits": 3, "v2_triton": 4}


@dataclass(frozen=True)
class ParamSpec:
    """One overhead coefficient: name, start value, bounds, unit and meaning."""

    name: str
    start: float
    lower: float
    upper: float
    unit: str
    description: str


@dataclass(frozen=True)
class OverheadSpec:
    """A named overhead formula.

    Attributes
    ----------
    name : str
    formula : str
        Human-readable formula (also written into coefficient files).
    params : tuple of ParamSpec
    evaluate : callable
        ``evaluate(features, p) -> overhead_gib`` (numpy, broadcasting).
    jacobian : callable
        ``jacobian(features, p) -> ndarray (n, len(params))``: d overhead / d p.
    regressors : dict
        Parameter name -> feature expression whose variation identifies it; a parameter
        whose regressor does not vary in the data is not identified (fixed at 0).
    """

    name: str
    formula: str
    description: str
    params: tuple
    evaluate: Callable
    jacobian: Callable
    regressors: Callable
    #: ``"overhead"``: the response is offset + overhead; ``"term"``: the spec *is* the
    #: response (a separately reported component such as vLLM's CUDA-graph memory).
    response: str = "overhead"
    #: Extra starting points (full parameter vectors) every fit of this spec also tries:
    #: for a non-smooth formula (vLLM's max of two profile-run stages) a local solver can stop
    #: at a kink away from the least-squares point; starts on both sides of it find it.
    start_grid: tuple = ()

    @property
    def param_names(self) -> tuple:
        return tuple(p.name for p in self.params)

    def uncertain_part(self, features, p):
        """The part of the response that carries error, GiB: activations + overhead
        (``response == "overhead"``; the exact weights and workload KV are
        :func:`exact_offset_gib`), or the term itself. Its derivative over ``p`` is
        :attr:`jacobian`."""
        if self.response == "term":
            return np.asarray(self.evaluate(features, p), dtype=float)
        return np.asarray(features["activations_gib"], float) + self.evaluate(features, p)

    def exact_offset(self, features):
        """The error-free part of the response, GiB: :func:`exact_offset_gib`, or 0 for a term."""
        if self.response == "term":
            return np.zeros(np.shape(features["weights_gib"]))
        return exact_offset_gib(features)

    def predict_response(self, features, p):
        """Full response in GiB: weights + kv + activations + overhead (``response ==
        "overhead"``), or the term alone (``response == "term"``)."""
        if self.response == "term":
            return np.asarray(self.evaluate(features, p), dtype=float)
        return response_offset_gib(features) + self.evaluate(features, p)


def exact_offset_gib(features):
    """The exact part of the response, which carries no error: W/n + workload KV (GiB per GPU).

    The first-order activation estimate ``A`` is physics too, but not exact: it joins the
    fitted overhead in the uncertain part (:meth:`OverheadSpec.uncertain_part`)."""
    return np.asarray(features["weights_gib"], float) + np.asarray(features["kv_gib"], float)


def response_offset_gib(features):
    """The exact-physics part of the response: W/n + KV + A (GiB per GPU)."""
    return (np.asarray(features["weights_gib"], float) + np.asarray(features["kv_gib"], float)
            + np.asarray(features["activations_gib"], float))


def _f(features, key):
    return np.asarray(features[key], dtype=float)


def _multi_gpu_term(features):
    n = _f(features, "n_gpus")
    return _f(features, "weights_total_gib") / n * (n - 1.0)


def _log2_batch(features):
    return np.log2(_f(features, "batch_size"))


def boxcox_batch(b, lam):
    """(b**lam - 1) / (lam ln 2): equals log2(b) at lam = 0 (continuous in lam)."""
    lnb = np.log(b)
    z = lam * lnb
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.abs(z) < 1e-8, 1.0 + z / 2.0, np.expm1(z) / np.where(z == 0, 1.0, z))
    return lnb * ratio / LN2


def _d_boxcox_dlam(b, lam):
    """d/dlam of (b**lam - 1)/(lam ln 2)."""
    lnb = np.log(b)
    z = lam * lnb
    # d/dlam [(e^z - 1)/lam] = (z e^z - e^z + 1)/lam^2 = lnb^2 * (z e^z - e^z + 1)/z^2
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(np.abs(z) < 1e-5, 0.5 + z / 3.0, (z * np.exp(z) - np.expm1(z)) / np.where(z == 0, 1.0, z * z))
    return lnb * lnb * g / LN2


# --- seed: the plan's form --------------------------------------------------------------

def _seed_eval(x, p):
    base, prop, multi, bscale = p[0], p[1], p[2], p[3]
    M = _f(x, "model_mem_gib")
    return base + prop * M + multi * _multi_gpu_term(x) + bscale * M * _log2_batch(x)


def _seed_jac(x, p):
    M = _f(x, "model_mem_gib")
    one = np.ones_like(M)
    return np.column_stack([one, M, _multi_gpu_term(x) * one, M * _log2_batch(x)])


def _seed_regressors(x):
    M = _f(x, "model_mem_gib")
    return {"baseline_gib": np.ones_like(M), "proportional": M,
            "multi_gpu": _multi_gpu_term(x) * np.ones_like(M), "batch_scaling": M * _log2_batch(x)}


SEED = OverheadSpec(
    name="seed",
    formula="overhead = baseline_gib + proportional*M + multi_gpu*(W/n)*(n-1) + batch_scaling*M*log2(b)",
    description="The seed plan's form. M: per-GPU model memory (weights + workload KV + activations), "
                "W: total weights, n: GPUs, b: concurrent sequences.",
    params=(
        ParamSpec("baseline_gib", 0.5, 0.0, np.inf, "GiB", "constant per-GPU overhead (CUDA context, runtime)"),
        ParamSpec("proportional", 0.02, 0.0, np.inf, "1", "overhead per GiB of model memory"),
        ParamSpec("multi_gpu", 0.05, 0.0, np.inf, "1", "overhead per GiB of weights held by the other GPUs"),
        ParamSpec("batch_scaling", 0.002, 0.0, np.inf, "1", "overhead per GiB of model memory per doubling of batch"),
    ),
    evaluate=_seed_eval, jacobian=_seed_jac, regressors=_seed_regressors,
)


# --- boxcox: the batch exponent as a parameter ---------------------------------------------

def _boxcox_eval(x, p):
    base, prop, multi, bscale, lam = p
    M = _f(x, "model_mem_gib")
    b = _f(x, "batch_size")
    return base + prop * M + multi * _multi_gpu_term(x) + bscale * M * boxcox_batch(b, lam)


def _boxcox_jac(x, p):
    base, prop, multi, bscale, lam = p
    M = _f(x, "model_mem_gib")
    b = _f(x, "batch_size")
    one = np.ones_like(M)
    return np.column_stack([one, M, _multi_gpu_term(x) * one, M * boxcox_batch(b, lam),
                            bscale * M * _d_boxcox_dlam(b, lam)])


def _boxcox_regressors(x):
    r = _seed_regressors(x)
    r["lambda"] = r["batch_scaling"]  # identified only if the batch term is
    return r


BOXCOX = OverheadSpec(
    name="boxcox",
    formula="overhead = baseline_gib + proportional*M + multi_gpu*(W/n)*(n-1) "
            "+ batch_scaling*M*(b**lambda - 1)/(lambda*ln 2)",
    description="The seed form with a Box-Cox batch term: lambda -> 0 is log2 scaling (the seed), "
                "lambda = 1 is linear scaling (in units of b-1 per ln 2).",
    params=SEED.params + (
        ParamSpec("lambda", 0.5, -2.0, 3.0, "1", "Box-Cox exponent of batch size"),
    ),
    evaluate=_boxcox_eval, jacobian=_boxcox_jac, regressors=_boxcox_regressors,
)


# --- physical: terms with a mechanism -------------------------------------------------------

def _physical_parts(x):
    # all-reduce buffers exist with tensor parallelism, not with pipeline stages alone;
    # feature dicts without "tp" (built before it existed) fall back to the GPU count
    n = _f(x, "tp") if "tp" in x else _f(x, "n_gpus")
    A = _f(x, "activations_gib")
    kv = _f(x, "kv_gib")
    seq_vocab = _f(x, "batch_size") * _f(x, "vocab_size") * 4.0 / _GIB
    multi = (n > 1).astype(float)
    one = np.ones(np.broadcast(n, A, kv, seq_vocab).shape)
    return one, multi * one, A * one, kv * one, seq_vocab * one


def _physical_eval(x, p):
    one, multi, A, kv, sv = _physical_parts(x)
    return p[0] * one + p[1] * multi + p[2] * A + p[3] * kv + p[4] * sv


def _physical_jac(x, p):
    return np.column_stack(_physical_parts(x))


def _physical_regressors(x):
    one, multi, A, kv, sv = _physical_parts(x)
    return {"baseline_gib": one, "multi_gpu_gib": multi, "activation_excess": A,
            "kv_excess": kv, "sampler_buffers": sv}


PHYSICAL = OverheadSpec(
    name="physical",
    formula="overhead = baseline_gib + multi_gpu_gib*[tp>1] + activation_excess*A + kv_excess*KV "
            "+ sampler_buffers*b*V*4B",
    description="Mechanisms: a constant (CUDA context, allocator, runtime), a step at tp > 1 "
                "(NCCL / custom all-reduce buffers; pipeline stages alone do not all-reduce), "
                "activations beyond the first-order estimate "
                "(scales with the physics activation A), extra copies of the workload KV cache "
                "(e.g. transformers' DynamicCache concatenation), and per-sequence sampler/logits "
                "buffers (b x vocab x fp32).",
    params=(
        ParamSpec("baseline_gib", 0.5, 0.0, np.inf, "GiB", "constant per-GPU overhead"),
        ParamSpec("multi_gpu_gib", 0.5, 0.0, np.inf, "GiB", "extra per-GPU memory when tp > 1 (all-reduce buffers)"),
        ParamSpec("activation_excess", 0.0, -1.0, np.inf, "1", "fraction of activation estimate A added (-1: none at all)"),
        ParamSpec("kv_excess", 0.0, -1.0, np.inf, "1", "extra copies of the workload KV cache"),
        ParamSpec("sampler_buffers", 0.0, 0.0, np.inf, "1", "multiples of b x vocab x 4 B"),
    ),
    evaluate=_physical_eval, jacobian=_physical_jac, regressors=_physical_regressors,
)


# --- vllm: the profile run's mechanisms (fitting.physics.vllm), per-regime corrections ---------

def _vllm_branches(x, p):
    """(forward wins, sampler stage) at parameters p: the profile run's peak is
    max(forward (1 + forward_excess), sampler (1 + sampler_excess[regime]) + leftover)."""
    fwd = _f(x, "forward_gib") * (1.0 + p[2])
    reg = _f(x, "sampler_regime")
    scale = 1.0 + np.where(reg == 1, p[4], np.where(reg == 2, p[5], np.where(reg == 0, p[3], 0.0)))
    samp = _f(x, "sampler_gib") * scale + _f(x, "leftover_gib")
    return fwd, samp


#: Smoothing of max(F, S + L) in GiB: max(a, b) ~ (a + b + sqrt((a - b)^2 + eps^2)) / 2, so that
#: the least-squares problem stays differentiable where the two stages are close.
_VLLM_MAX_EPS_GIB = 0.02


def _runner_state(x):
    """The V2 runner's persistent sampling state (GiB; 0 where the features predate it): exact
    tensor sizes from the source (:func:`fitting.physics.vllm.runner_state_bytes`), so a
    constant of the overhead with no parameter of its own."""
    return _f(x, "runner_state_gib") if "runner_state_gib" in x else 0.0


def _smooth_max(a, b):
    d = np.sqrt((a - b) ** 2 + _VLLM_MAX_EPS_GIB**2)
    return 0.5 * (a + b + d), 0.5 * (1.0 + (a - b) / d)


def _vllm_eval(x, p):
    fwd, samp = _vllm_branches(x, p)
    n = _f(x, "tp") if "tp" in x else _f(x, "n_gpus")
    peak, _ = _smooth_max(fwd, samp)
    return p[0] + p[1] * (n > 1) + peak - _f(x, "activations_gib") + _runner_state(x)


def _vllm_jac(x, p):
    fwd, samp = _vllm_branches(x, p)
    n = _f(x, "tp") if "tp" in x else _f(x, "n_gpus")
    reg = _f(x, "sampler_regime")
    _, f_wins = _smooth_max(fwd, samp)
    s_wins = 1.0 - f_wins
    sg = _f(x, "sampler_gib")
    one = np.ones(np.broadcast(fwd, samp).shape)
    return np.column_stack([one, (n > 1) * one, _f(x, "forward_gib") * f_wins * one,
                            sg * s_wins * (reg == 0), sg * s_wins * (reg == 1), sg * s_wins * (reg == 2)])


def _vllm_regressors(x):
    J = _vllm_jac(x, np.zeros(6))
    return dict(zip(("baseline_gib", "multi_gpu_gib", "forward_excess", "sampler_sort_excess",
                     "sampler_triton_excess", "sampler_flashinfer_excess"), J.T))


VLLM = OverheadSpec(
    name="vllm",
    formula="overhead = baseline_gib + multi_gpu_gib*[tp>1] + max(F (1+forward_excess), "
            "S (1+sampler_<regime>_excess) + L) - A + R",
    description="vLLM's profile run from its own mechanics (fitting.physics.vllm): the activation peak is "
                "the larger of the forward of max_num_batched_tokens (F) and the dummy sampler's temporaries "
                "(S, by sampler implementation: sort-based top-k/top-p, Triton from 0.17, FlashInfer) plus what "
                "the forward leaves (L); the fit estimates a correction of each stage's source-derived size "
                "(0 = the source's figure; a regime absent from the data keeps 0), a constant non-torch "
                "level and a step at tp > 1 (NCCL / custom all-reduce buffers). R: the V2 model runner's "
                "persistent sampling state ([max_num_seqs, V] int32 penalty counts), counted as non-KV memory "
                "from 0.27, exact from the source and not fitted.",
    params=(
        ParamSpec("baseline_gib", 0.3, 0.0, np.inf, "GiB", "non-torch memory per GPU (tp = 1)"),
        ParamSpec("multi_gpu_gib", 0.5, 0.0, np.inf, "GiB", "extra non-torch memory per GPU when tp > 1"),
        ParamSpec("forward_excess", 0.0, -0.9, np.inf, "1", "relative correction of the forward stage F"),
        ParamSpec("sampler_sort_excess", 0.0, -0.9, np.inf, "1", "relative correction of S, sort-based sampler"),
        ParamSpec("sampler_triton_excess", 0.0, -0.9, np.inf, "1", "relative correction of S, Triton sampler (0.17+)"),
        ParamSpec("sampler_flashinfer_excess", 0.0, -0.9, np.inf, "1", "relative correction of S, FlashInfer sampler"),
    ),
    evaluate=_vllm_eval, jacobian=_vllm_jac, regressors=_vllm_regressors,
)

def _fabric_split(x):
    n = _f(x, "tp") if "tp" in x else _f(x, "n_gpus")
    pcie = _f(x, "pcie_interconnect") if "pcie_interconnect" in x else np.zeros_like(n)
    multi = (n > 1).astype(float)
    return multi * (1.0 - pcie), multi * pcie


def _vllm_fabric_eval(x, p):
    fwd, samp = _vllm_branches(x, p)
    peak, _ = _smooth_max(fwd, samp)
    nvlink, pcie = _fabric_split(x)
    return p[0] + p[1] * nvlink + p[6] * pcie + peak - _f(x, "activations_gib") + _runner_state(x)


def _vllm_fabric_jac(x, p):
    J = _vllm_jac(x, p)
    nvlink, pcie = _fabric_split(x)
    one = np.ones(J.shape[0])
    J = J.copy()
    J[:, 1] = nvlink * one
    return np.column_stack([J, pcie * one])


def _vllm_fabric_regressors(x):
    J = _vllm_fabric_jac(x, np.zeros(7))
    return dict(zip(VLLM_FABRIC_PARAM_NAMES, J.T))


VLLM_FABRIC_PARAM_NAMES = ("baseline_gib", "multi_gpu_gib", "forward_excess", "sampler_sort_excess",
                           "sampler_triton_excess", "sampler_flashinfer_excess", "multi_gpu_pcie_gib")

VLLM_FABRIC = OverheadSpec(
    name="vllm_fabric",
    formula="overhead = baseline_gib + multi_gpu_gib*[tp>1, NVLink] + multi_gpu_pcie_gib*[tp>1, PCIe] "
            "+ max(F (1+forward_excess), S (1+sampler_<regime>_excess) + L) - A + R",
    description="The vllm spec with the tensor-parallel non-torch memory split by interconnect. With NVLink, "
                "vLLM's custom all-reduce (vllm/distributed/device_communicators/custom_all_reduce.py: IPC "
                "buffers and registered CUDA-graph buffers) and NCCL's NVLink/NVLS channels hold memory outside "
                "PyTorch; custom all-reduce is disabled for more than two PCIe-only GPUs or without P2P "
                "(custom_all_reduce.py, 0.5-0.34), and NCCL over PCIe/shared memory holds little device memory. "
                "Public logs show about 2.1 GiB of non-torch memory at tp 2-8 on H100 against 0.2 GiB at tp 4 on "
                "22 GB Turing cards with custom all-reduce disabled.",
    params=VLLM.params[:1] + (
        ParamSpec("multi_gpu_gib", 0.5, 0.0, np.inf, "GiB", "extra non-torch memory per GPU when tp > 1 with "
                                                            "NVLink (or interconnect unknown)"),
    ) + VLLM.params[2:] + (
        ParamSpec("multi_gpu_pcie_gib", 0.1, 0.0, np.inf, "GiB", "extra non-torch memory per GPU when tp > 1 over "
                                                                 "PCIe (custom all-reduce off)"),
    ),
    evaluate=_vllm_fabric_eval, jacobian=_vllm_fabric_jac, regressors=_vllm_fabric_regressors,
)

def _excess_grid(spec, fixed: dict) -> tuple:
    """Starts over the forward and sampler excess factors (below, at and above 0), the other
    parameters at their defaults or ``fixed``."""
    names = spec.param_names
    base = [fixed.get(n, prm.start) for n, prm in zip(names, spec.params)]
    out = []
    for fe in (-0.4, 0.0, 0.3):
        for se in (-0.7, -0.3, 0.0):
            v = list(base)
            v[names.index("forward_excess")] = fe
            for n in ("sampler_sort_excess", "sampler_triton_excess", "sampler_flashinfer_excess"):
                v[names.index(n)] = se
            out.append(tuple(v))
    return tuple(out)


VLLM = dataclasses.replace(VLLM, start_grid=_excess_grid(VLLM, {}))
VLLM_FABRIC = dataclasses.replace(VLLM_FABRIC, start_grid=_excess_grid(VLLM_FABRIC, {}))


# --- sglang: the non-KV part of SGLang's static budget ---------------------------------------

def _sglang_parts(x):
    n = _f(x, "tp") if "tp" in x else _f(x, "n_gpus")
    W = _f(x, "weights_gib")
    one = np.ones(np.broadcast(n, W).shape)
    return one, (n > 1).astype(float) * one, W * one


def _sglang_eval(x, p):
    one, multi, W = _sglang_parts(x)
    return p[0] * one + p[1] * multi + p[2] * W


def _sglang_jac(x, p):
    return np.column_stack(_sglang_parts(x))


def _sglang_regressors(x):
    one, multi, W = _sglang_parts(x)
    return {"baseline_gib": one, "multi_gpu_gib": multi, "load_excess": W}


SGLANG = OverheadSpec(
    name="sglang",
    formula="overhead = baseline_gib + multi_gpu_gib*[tp>1] + load_excess*W",
    description="SGLang's static budget mfs x G holds the weights, the KV pool and what else is in use when "
                "the pool is sized (sglang/srt/model_executor/model_runner.py, profile_max_num_token: "
                "rest = free - T (1 - mfs), T the free memory after CUDA and distributed init): a constant "
                "(mfs x the CUDA context and torch runtime, buffers allocated with the model), a step at "
                "tp > 1 (NCCL communicators, custom all-reduce buffers) and a share of the weights "
                "(load-time buffers, quantization scales beyond the physics). Activations and CUDA graphs "
                "are outside the budget and not in the response.",
    params=(
        ParamSpec("baseline_gib", 0.5, 0.0, np.inf, "GiB", "constant per-GPU memory inside the static budget"),
        ParamSpec("multi_gpu_gib", 0.3, 0.0, np.inf, "GiB", "extra per-GPU memory when tp > 1 (NCCL, all-reduce)"),
        ParamSpec("load_excess", 0.0, -0.5, np.inf, "1", "fraction of the physics weights added at load"),
    ),
    evaluate=_sglang_eval, jacobian=_sglang_jac, regressors=_sglang_regressors,
)

SPECS = {s.name: s for s in (SEED, BOXCOX, PHYSICAL, VLLM, VLLM_FABRIC, SGLANG)}


# --- cuda_graph: vLLM's CUDA-graph pool, a separately reported term -------------------------

#: vLLM captures graphs for batch sizes up to this limit (V0: 256; V1: 512 by default).
CUDA_GRAPH_MAX_CAPTURE = 512.0


def _cuda_graph_parts(x):
    b = _f(x, "batch_size")
    return np.ones_like(b), np.minimum(b, CUDA_GRAPH_MAX_CAPTURE)


def _cuda_graph_eval(x, p):
    one, seqs = _cuda_graph_parts(x)
    return p[0] * one + p[1] * seqs


def _cuda_graph_jac(x, p):
    return np.column_stack(_cuda_graph_parts(x))


def _cuda_graph_regressors(x):
    one, seqs = _cuda_graph_parts(x)
    return {"cg_base_gib": one, "cg_per_seq_gib": seqs}


CUDA_GRAPH = OverheadSpec(
    name="cuda_graph",
    formula="cuda_graph_gib = cg_base_gib + cg_per_seq_gib*min(b, 512)",
    description="vLLM CUDA-graph memory per GPU (not part of the non-KV response): graphs are "
                "captured for batch sizes up to min(max_num_seqs, capture limit), about 24-28 MiB "
                "each, so the pool grows roughly linearly with max_num_seqs up to the limit. Zero "
                "with enforce_eager. The per-graph size also depends on the model; with the public "
                "data that dependence is not identified and is absorbed in the residual scale.",
    params=(
        ParamSpec("cg_base_gib", 0.1, 0.0, np.inf, "GiB", "CUDA-graph memory independent of max_num_seqs"),
        ParamSpec("cg_per_seq_gib", 0.002, 0.0, np.inf, "GiB", "CUDA-graph memory per sequence slot (b <= 512)"),
    ),
    evaluate=_cuda_graph_eval, jacobian=_cuda_graph_jac, regressors=_cuda_graph_regressors,
    response="term",
)

#: Specs of separately reported terms (not candidates for the overhead).
TERM_SPECS = {CUDA_GRAPH.name: CUDA_GRAPH}


def get_spec(name: str) -> OverheadSpec:
    """Return the spec called ``name``: an overhead spec (``seed``, ``boxcox``,
    ``physical``) or a term spec (``cuda_graph``)."""
    try:
        return SPECS[name] if name in SPECS else TERM_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown overhead spec {name!r}; expected one of "
                         f"{sorted(SPECS) + sorted(TERM_SPECS)}") from None


def build_features(arch, *, framework, tp=1, pp=1, batch_size=1, input_len=0, output_len=0,
                   max_num_batched_tokens=None, dtype="bfloat16", quantization=None,
                   kv_cache_dtype="auto", weights_bytes=None, framework_version=None, engine=None,
                   last_stage=True, transformers_settings=None, interconnect=None, llamacpp_settings=None,
                   sampler_flashinfer=None, model_runner=None):
    """Features of the overhead model for one architecture, broadcasting over workload arrays.

    Parameters
    ----------
    arch : fitting.physics.architecture.Architecture
    framework : str
    tp, pp : int or array
        Tensor and pipeline parallel degree; n_gpus = tp * pp.
    batch_size : int or array
        Concurrent sequences (vLLM: max_num_seqs).
    input_len, output_len : int or array
        Tokens per sequence; the workload KV (growing frameworks) holds input + output.
    max_num_batched_tokens : int or array, optional
        Tokens in one forward pass (vLLM profiling run); defaults to the framework's default.
    dtype, quantization, kv_cache_dtype : str
    weights_bytes : float or array, optional
        Measured per-GPU weights (bytes) to use instead of the physics value (fitting).
    framework_version, engine : str, optional
        vLLM: the version and engine whose profile-run mechanics apply
        (:func:`fitting.physics.vllm.activation_peak_parts`); default the newest known.
    last_stage : bool or array
        vLLM with pipeline parallelism: whether the GPU is on the last stage (the only one
        that runs the dummy sampler). The estimator predicts the last stage (the largest).
    sampler_flashinfer : bool, optional
        vLLM V1: whether FlashInfer's top-k/top-p sampler ran in the profile run, as the run's
        own log says ("Using FlashInfer for top-p & top-k sampling" / "FlashInfer is not
        available"); None: the version's pip default
        (:func:`fitting.physics.vllm.sampler_regime`).
    model_runner : {"v1", "v2"}, optional
        vLLM V1 engine: the GPU model runner the run's log names ("Using V2 Model Runner");
        None: the version's default (:func:`fitting.physics.vllm.default_model_runner`).
    interconnect : {"nvlink", "pcie"} or array of them, optional
        How the GPUs of a tensor-parallel group are connected (feature
        ``pcie_interconnect``); None or ``nvlink``: 0.
    llamacpp_settings : Mapping, optional
        llama.cpp: ``n_ubatch`` (tokens per micro-batch, default 512) and ``flash_attn``
        (default False: the larger buffer). The activations are then the compute buffer of
        :func:`fitting.physics.llamacpp.compute_buffer_bytes` at ``n_kv`` = the context
        (``input_len + output_len``).
    transformers_settings : Mapping, optional
        transformers: ``mode`` (``generate`` / ``forward``), ``attn_implementation`` and
        ``quantization`` (the quantized kernel) of the run; ``framework_version`` is the
        transformers version. Missing values take :data:`TRANSFORMERS_DEFAULTS`. The
        activations are then :func:`fitting.physics.transformers.transformers_peak_bytes`
        (peak above the weights, plus load-time kernel buffers) less the workload KV.

    Returns
    -------
    dict of ndarray
        The names in :data:`FEATURE_NAMES`, GiB per GPU where a unit applies.
    """

    info = framework_info(framework)
    tp = np.asarray(tp)
    pp = np.asarray(pp)
    b = np.asarray(batch_size, dtype=float)
    seq = np.asarray(input_len, dtype=float) + np.asarray(output_len, dtype=float)
    if max_num_batched_tokens is None:
        max_num_batched_tokens = info.defaults.get("max_num_batched_tokens")
    # llama.cpp keeps the input layer (token_embd) in host memory: its dev_input is the CPU
    # (src/llama-model.cpp load_tensors: "there is very little benefit to offloading the input
    # layer"); a printed 'CPU_Mapped model buffer' of exactly the embedding shows it
    on_gpu = framework != "llamacpp"
    w_phys = physics.weight_bytes_per_gpu(arch, dtype=dtype, quantization=quantization, tp=tp, pp=pp,
                                          embedding_on_gpu=on_gpu)
    w_total = physics.weight_bytes_per_gpu(arch, dtype=dtype, quantization=quantization, tp=1, pp=1,
                                           embedding_on_gpu=on_gpu)
    w = w_phys if weights_bytes is None else np.where(np.isnan(weights_bytes), w_phys, weights_bytes)
    llamacpp_kv = _llamacpp_kv(arch, seq=seq, b=b, kv_cache_dtype=kv_cache_dtype, settings=llamacpp_settings) \
        if framework == "llamacpp" else None
    if llamacpp_kv is not None:
        kv = llamacpp_kv / (tp * pp)  # layers split over the devices, as the weights
    elif info.kv_cache_mode == "growing":
        kv = physics.kv_cache_bytes(arch, num_tokens=seq, num_seqs=b, kv_cache_dtype=kv_cache_dtype,
                                    dtype=dtype, tp=tp, pp=pp)
    else:
        kv = np.zeros(np.broadcast(b, seq).shape)
    if framework == "vllm":
        parts = _vllm_parts(arch, tp=tp, b=b, mbt=max_num_batched_tokens, dtype=dtype, quantization=quantization,
                            version=framework_version, engine=engine, last_stage=last_stage,
                            flashinfer=sampler_flashinfer, model_runner=model_runner)
        act = parts["activations"]
    elif framework == "llamacpp":
        act = _llamacpp_compute_buffer(arch, seq=seq, settings=llamacpp_settings)
        parts = None
    elif framework == "transformers":
        peak, kv_at_peak = _transformers_peak(arch, tp=tp, b=b, input_len=input_len, output_len=output_len,
                                              dtype=dtype, version=framework_version, settings=transformers_settings)
        if np.any(pp > 1):
            # a model split over GPUs by layers (accelerate's device_map="auto": whole decoder layers
            # per device, accelerate/utils/modeling.py infer_auto_device_map) keeps each layer's
            # cache on that layer's device (transformers cache_utils.DynamicCache.update concatenates
            # on the device of the layer's key_states), while every device runs its own layers'
            # forward and so sees one layer's transient: per GPU, the peak's KV is this stage's
            # share and the rest of the peak is the single-device one (the last-position logits of
            # 4.45+ and generate's bookkeeping, on one device only, are counted on each: B x V x 4 B)
            kv_one = physics.kv_cache_bytes(arch, num_tokens=seq, num_seqs=b, kv_cache_dtype=kv_cache_dtype,
                                            dtype=dtype, tp=tp, pp=1)
            kv_one = np.asarray(kv_one, float)
            share = np.where(kv_one > 0, np.asarray(kv, float) / np.where(kv_one > 0, kv_one, 1.0), 1.0 / pp)
            peak = peak - kv_at_peak * (1.0 - share)
        # a figure that also covers from_pretrained is the larger of the load's and the run's peak
        # (fitting.physics.transformers.load_transient_bytes: copies a checkpoint stores twice)
        load = float((transformers_settings or {}).get("load_transient_bytes") or 0.0) / (np.asarray(pp) * 1.0)
        peak = np.maximum(peak, load)
        act = np.maximum(peak - kv, 0.0)  # the workload KV is exact physics; copies at peak stay here
        parts = None
    elif framework == "sglang":
        # SGLang's response is the non-KV part of its static budget (mem_fraction_static x G):
        # the pool is sized before any forward pass (model_runner.profile_max_num_token), and
        # activations and CUDA graphs use the rest of the GPU, so none are in the response
        act = np.zeros(np.broadcast(b, seq).shape)
        parts = None
    elif framework == "trtllm":
        # the PyTorch backend sizes its pool after a dummy prefill of max_num_tokens tokens
        # (fitting.physics.trtllm: KvCacheCreator; logits of the last token per request only)
        act = _trtllm_activation(arch, tp=tp, mbt=max_num_batched_tokens, seq=seq, dtype=dtype)
        parts = None
    elif framework == "tgi":
        # the pool is sized after the warm-up prefill of max_batch_prefill_tokens tokens, whose
        # peak the caching allocator still holds (fitting.physics.tgi: up to 2.4 with the
        # log-probabilities of every prompt position)
        act = _tgi_warmup(arch, tp=tp, mbt=max_num_batched_tokens, dtype=dtype, version=framework_version)
        parts = None
    else:
        act = physics.activation_bytes(arch, framework=framework, batch_size=b, seq_len=np.maximum(seq, 1),
                                       max_num_batched_tokens=max_num_batched_tokens, dtype=dtype, tp=tp)
        parts = None
    shape = np.broadcast(tp, pp, b, seq, np.asarray(w), np.asarray(kv), np.asarray(act)).shape
    feats = {
        "weights_gib": np.asarray(w, float) / _GIB,
        "weights_total_gib": np.asarray(w_total, float) / _GIB,
        "kv_gib": np.asarray(kv, float) / _GIB,
        "activations_gib": np.asarray(act, float) / _GIB,
        "n_gpus": (tp * pp).astype(float),
        "tp": tp.astype(float),
        "batch_size": b,
        "vocab_size": float(arch.vocab_size),
    }
    for k in ("forward", "sampler", "leftover"):
        feats[f"{k}_gib"] = (np.asarray(parts[k], float) / _GIB) if parts is not None else 0.0
    feats["sampler_regime"] = parts["regime"] if parts is not None else 0.0
    feats["runner_state_gib"] = (np.asarray(vllm_physics.runner_state_bytes(
        arch.vocab_size, b, framework_version, engine=engine, model_runner=model_runner), float) / _GIB
        if framework == "vllm" else 0.0)
    feats["pcie_interconnect"] = (np.asarray(interconnect, dtype=object) == "pcie").astype(float) \
        if interconnect is not None else 0.0
    feats = {k: np.broadcast_to(v, shape).astype(float) for k, v in feats.items()}
    feats["model_mem_gib"] = feats["weights_gib"] + feats["kv_gib"] + feats["activations_gib"]
    return feats


_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def _tgi_warmup(arch, *, tp, mbt, dtype, version):
    """TGI's warm-up activation peak (bytes) per row: ``max_num_batched_tokens`` is its
    ``max_batch_prefill_tokens`` (the launcher's default for the release where None)."""
    if mbt is None:
        mbt = tgi_physics.launcher_defaults(getattr(arch, "max_position_embeddings", None), version,
                                            model_type=getattr(arch, "model_type", None))["max_batch_prefill_tokens"]
    T, tp_a = np.broadcast_arrays(np.asarray(mbt, float), np.asarray(tp, float))
    b = _DTYPE_BYTES.get(str(dtype), 2)
    peaks = {}
    out = np.empty(T.shape)
    for idx in np.ndindex(T.shape):
        key = (int(T[idx]), int(tp_a[idx]))
        if key not in peaks:
            peaks[key] = tgi_physics.warmup_activation_parts(arch, max_batch_prefill_tokens=key[0], version=version,
                                                             tp=key[1], dtype_bytes=b).peak
        out[idx] = peaks[key]
    return float(out) if out.ndim == 0 else out

def _trtllm_activation(arch, *, tp, mbt, seq, dtype):
    """TensorRT-LLM's estimation-run activation peak (bytes) per row (PyTorch backend,
    :func:`fitting.physics.trtllm.pytorch_activation_bytes`): ``max_num_batched_tokens`` is its
    ``max_num_tokens`` (8192 where None), the sequence length its ``max_seq_len``."""
    T, tp_a, S = np.broadcast_arrays(np.asarray(8192.0 if mbt is None else mbt, float), np.asarray(tp, float),
                                     np.asarray(seq, float))
    b = _DTYPE_BYTES.get(str(dtype), 2)
    peaks = {}
    out = np.empty(T.shape)
    for idx in np.ndindex(T.shape):
        key = (int(T[idx]), int(tp_a[idx]), max(int(S[idx]), 2))
        if key not in peaks:
            peaks[key] = trtllm_physics.pytorch_activation_bytes(arch, max_num_tokens=key[0], max_seq_len=key[2],
                                                                 tp=key[1], dtype_bytes=b)
        out[idx] = peaks[key]
    return float(out) if out.ndim == 0 else out


#: transformers run settings assumed where neither the caller nor the profile gives them:
#: the newest release the mechanics were read in, SDPA (the default attention since 4.36
#: where the model supports it) and a ``generate`` call.
TRANSFORMERS_DEFAULTS = {"version": ".".join(map(str, transformers_physics.TRANSFORMERS_NEWEST_VERIFIED)),
                         "mode": "generate", "attn_implementation": "sdpa", "quantization": None}

#: Quantized kernels whose buffers the transformers physics sizes (others: none modelled).
_TRANSFORMERS_KERNELS = ("gptq-exllama", "gptq-exllamav2", "awq-gemm", "bnb-4bit")


#: llama.cpp settings assumed where neither the caller nor the profile gives them: the
#: default micro-batch (common/common.h ``n_ubatch = 512``) and no flash attention (the
#: larger compute buffer; llama.cpp's ``-fa auto`` turns it on where the backend supports it).
LLAMACPP_DEFAULTS = {"n_ubatch": 512, "flash_attn": False}


def _as_flag(v):
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "on", "yes", "enabled")
    return bool(v)


#: KV cache types llama.cpp takes for -ctk / -ctv (the estimator's kv_cache_dtype; "auto" = f16).
_LLAMACPP_KV_TYPES = {None: "f16", "auto": "f16", "float16": "f16", "fp16": "f16", "f16": "f16", "bf16": "bf16",
                      "bfloat16": "bf16", "f32": "f32", "float32": "f32", "q8_0": "q8_0", "q4_0": "q4_0",
                      "q4_1": "q4_1", "q5_0": "q5_0", "q5_1": "q5_1", "iq4_nl": "iq4_nl"}


def _llamacpp_kv(arch, *, seq, b, kv_cache_dtype, settings):
    """llama.cpp's own KV cache (bytes) for ``b`` sequences of ``seq`` tokens in one unified
    cache of ``b x seq`` cells (:func:`fitting.physics.llamacpp.kv_caches`: its per-layer KV
    widths, block-quantized cache types, and the SWA cache only for the architectures whose
    loader sets a sliding window, so not for Phi-3 or Mistral-v0.1, whose HF configs state one);
    None for a cache type llama.cpp has no name for."""
    ktype = _LLAMACPP_KV_TYPES.get(None if kv_cache_dtype is None else str(kv_cache_dtype).lower())
    if ktype is None:
        return None
    s = dict(LLAMACPP_DEFAULTS)
    s.update({k: v for k, v in (settings or {}).items() if v is not None})
    hp = llamacpp_physics.GGUFHparams.from_architecture(arch)
    seq, b, ub = np.broadcast_arrays(np.asarray(seq, float), np.asarray(b, float), np.asarray(s["n_ubatch"], float))
    flat = np.column_stack([seq.reshape(-1), b.reshape(-1), ub.reshape(-1)])
    keys, inverse = np.unique(flat, axis=0, return_inverse=True)
    vals = np.array([sum(c.k_bytes + c.v_bytes for c in llamacpp_physics.kv_caches(
        hp, n_ctx=max(int(n * k), 1), type_k=ktype, type_v=ktype, n_seq_max=max(int(n), 1),
        n_ubatch=max(int(u), 1))) for k, n, u in keys], dtype=float)
    return vals[np.asarray(inverse).reshape(-1)].reshape(seq.shape)


def _llamacpp_compute_buffer(arch, *, seq, settings):
    """llama.cpp's compute buffer (bytes) over broadcast context lengths."""
    s = dict(LLAMACPP_DEFAULTS)
    s.update({k: v for k, v in (settings or {}).items() if v is not None})
    hp = llamacpp_physics.GGUFHparams.from_architecture(arch)
    seq, ub = np.broadcast_arrays(np.asarray(seq, float), np.asarray(s["n_ubatch"], float))
    flat = np.column_stack([seq.reshape(-1), ub.reshape(-1)])
    keys, inverse = np.unique(flat, axis=0, return_inverse=True)
    fa = _as_flag(s["flash_attn"])
    vals = np.array([llamacpp_physics.compute_buffer_bytes(hp, n_kv=max(int(k), 1), n_ubatch=max(int(u), 1),
                                                           flash_attn=fa).bytes
                     for k, u in keys], dtype=float)
    return vals[np.asarray(inverse).reshape(-1)].reshape(seq.shape)


def _transformers_peak(arch, *, tp, b, input_len, output_len, dtype, version, settings):
    """transformers peak above the weights incl. load-time kernel buffers (bytes per GPU of a
    model on one device or split by tensor parallelism), and the KV cache held at that peak
    (every layer's), over broadcast (tp, batch, prompt, new tokens): one physics call per
    distinct combination."""
    s = dict(TRANSFORMERS_DEFAULTS)
    s.update({k: v for k, v in (settings or {}).items() if v is not None})
    if version is not None:
        s["version"] = version
    kernel = s["quantization"] if s["quantization"] in _TRANSFORMERS_KERNELS else None
    arrays = np.broadcast_arrays(np.asarray(tp, float), np.asarray(b, float), np.asarray(input_len, float),
                                 np.asarray(output_len, float))
    shape = arrays[0].shape
    flat = np.column_stack([a.reshape(-1) for a in arrays])
    keys, inverse = np.unique(flat, axis=0, return_inverse=True)
    vals = np.empty(len(keys))
    kvs = np.empty(len(keys))
    for j, (t, bb, S, N) in enumerate(keys):
        p = transformers_physics.transformers_peak_bytes(
            arch, version=s["version"], mode=s["mode"], batch_size=max(int(bb), 1), prompt_len=max(int(S), 1),
            new_tokens=max(int(N), 1), attn_implementation=s["attn_implementation"], dtype=dtype,
            quantization=kernel, tp=int(t))
        vals[j] = p.peak + p.persistent_buffers
        kvs[j] = p.kv
    inv = np.asarray(inverse).reshape(-1)
    return vals[inv].reshape(shape), kvs[inv].reshape(shape)


def _vllm_parts(arch, *, tp, b, mbt, dtype, quantization, version, engine, last_stage, flashinfer=None,
                model_runner=None):
    """vLLM's profile-run stages (bytes per GPU) over broadcast (tp, max_num_seqs, mbt,
    last_stage): one physics call per distinct combination."""
    mbt = np.asarray(8192.0 if mbt is None else mbt, dtype=float)
    arrays = np.broadcast_arrays(np.asarray(tp, float), np.asarray(b, float), mbt, np.asarray(last_stage, bool))
    shape = arrays[0].shape
    flat = [a.reshape(-1) for a in arrays]
    out = {k: np.empty(flat[0].size) for k in ("activations", "forward", "sampler", "leftover", "regime")}
    cache = {}
    for i, key in enumerate(zip(*(f.tolist() for f in flat))):
        if key not in cache:
            t_, b_, m_, last = key
            pp_ = vllm_physics.activation_peak_parts(
                arch, max_num_seqs=int(b_), max_num_batched_tokens=int(m_), version=version, engine=engine,
                dtype_bytes=_DTYPE_BYTES.get(str(dtype), 2), tp=int(t_), last_stage=bool(last),
                quantization=quantization, flashinfer=flashinfer, model_runner=model_runner)
            cache[key] = (pp_.peak, pp_.forward, pp_.sampler, pp_.leftover, SAMPLER_REGIME_CODES.get(pp_.regime, 0))
        for k, v in zip(("activations", "forward", "sampler", "leftover", "regime"), cache[key]):
            out[k][i] = v
    return {k: v.reshape(shape) for k, v in out.items()}
