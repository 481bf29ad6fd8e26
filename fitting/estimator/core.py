r"""The estimator: GPU memory of a configuration, with prediction intervals and "will it fit?".

:class:`Estimator` reads one coefficient file (``fitted_params/<framework>/latest.json`` or
a version file), evaluates the selected overhead spec with the same
:mod:`fitting.overhead.specs` code the refit used, and derives intervals from the file's
covariance, residual scale, residual degrees of freedom and error mode
(:mod:`fitting.stats.intervals`). Weights, KV cache and activations are exact physics
(:mod:`fitting.physics.memory`).

Per GPU, in GiB:

* ``non_kv = weights + activations + overhead``: for frameworks with a KV *pool* (vLLM,
  SGLang, TRT-LLM, TGI) this is the fitted response, what the framework subtracts before
  sizing its pool; for frameworks whose KV cache *grows* (transformers, llama.cpp) the
  fitted response is the peak ``weights + kv + activations + overhead`` and ``non_kv`` is
  that minus the workload KV.
* ``kv_cache``: the workload's KV cache, ``batch_size`` sequences of
  ``input_len + output_len`` tokens (vLLM: rounded up to whole 16-token blocks).
* ``cuda_graph``: a separately fitted term where the file has one (vLLM), else None.
* ``total = non_kv + cuda_graph + kv_cache``; ``total_all_gpus = total x tp x pp``.

"Fits" on a GPU with ``G`` GiB (the driver-reported total, see :mod:`fitting.data.gpus`):

* vLLM at ``gpu_memory_utilization`` ``u``: the KV pool ``u G - non_kv`` holds the workload
  and the CUDA graphs fit in the rest, ``P(non_kv + kv <= u G) * P(cuda_graph <= (1-u) G)``
  (independent fitted terms).
* SGLang at ``mem_fraction_static`` ``u`` (passed as ``gpu_memory_utilization``): the same
  pool identity, ``P(non_kv + kv <= u G)``; its activations and CUDA graphs use the rest of
  the GPU, which SGLang's own default fraction reserves for them (no fitted term).
* every other framework: ``P(total <= G)``.

Only numpy and the package's physics are imported on this path (pandas only when a
DataFrame is passed or returned).
"""


from __future__ import annotations

import math

import numpy as np

from fitting.data.frameworks import default_dtype, framework_info
from fitting.data.frameworks import (
    VLLM_NEWEST_KNOWN,
    vllm_default_utilization,
    vllm_defaults,
)
from fitting.estimator import queries
from fitting.physics.quantization import dtype_bytes
from fitting.physics.towers import tower_bytes_per_gpu, tower_parameters
from fitting.physics.vllm import SAMPLER_REGIMES, default_model_runner, graphs_in_pool_budget, parse_version, \
    runner_state_bytes, sampler_regime
from fitting.estimator.answer import answer
from fitting.estimator.coefficient_file import (
    SUPPORTED_SCHEMA_VERSIONS,
    CoefficientFileError,
    read_document,
    validate_document,
)
from fitting.estimator.frame import predict_frame
from fitting.estimator.pool import EXTENSIBLE_MARGIN_FLOOR_GIB, EXTENSIBLE_MARGIN_FRACTION, POOL_SETTING, pool_rule
from fitting.estimator.inputs import (
    check_alpha,
    check_gpu_memory,
    fmt_g,
    is_frame,
    params_billions,
    resolve_model_arg,
    show_value,
)
from fitting.estimator.prediction import (
    OUTPUT_COLUMNS,
    Prediction,
    build_prediction,
    component_table,
)
from fitting.estimator.terms import FittedTerm
from fitting.overhead.specs import LLAMACPP_DEFAULTS, TRANSFORMERS_DEFAULTS, build_features
from fitting.physics import memory as physics

__all__ = ["Estimator", "Prediction", "FittedTerm", "CoefficientFileError", "validate_document",
           "SUPPORTED_SCHEMA_VERSIONS", "OUTPUT_COLUMNS"]

_GIB = float(2**30)
#: Frameworks whose model file holds no vision tower: llama.cpp loads it from a separate mmproj file.
TOWERLESS_FRAMEWORKS = frozenset({"llamacpp"})
#: Frameworks that shard attention heads over tensor-parallel ranks (tp must divide heads).
_HEAD_SHARDING = frozenset({"vllm", "sglang", "trtllm", "tgi"})
#: Relative standard error of a fitted value above which a warning is given.
POOR_PRECISION_RSE = 0.5


# ------------------------------------------------------------------------------ Estimator
class Estimator:
    """Memory estimates of one framework from its coefficient file.

    Use :meth:`load`. Attributes: ``framework``, ``version`` (the coefficient file's
    version), ``status`` (``fitted``/``unfitted``), ``kv_cache_mode`` (``pool``/``growing``),
    ``selected_spec``, ``path``, ``document`` (the parsed file), ``term`` (the selected
    spec as a :class:`FittedTerm`) and ``cuda_graph`` (the CUDA-graph term, or None).

    Examples
    --------
    >>> est = Estimator.load("fitted_params/vllm")                      # doctest: +SKIP
    >>> p = est.predict("meta-llama/Llama-3.1-8B", batch_size=32,       # doctest: +SKIP
    ...                 input_len=4096, output_len=512)
    >>> p.total_gib, (p.total_lower_gib, p.total_upper_gib)             # doctest: +SKIP
    """

    def __init__(self, document: dict, *, path=None):
        path = str(path) if path is not None else "<coefficients>"
        validate_document(document, path)
        self.document = document
        self.path = path
        self.framework = document["framework"]
        try:
            self.info = framework_info(self.framework)
        except ValueError as exc:
            raise CoefficientFileError(path, "framework", str(exc)) from None
        self.version = document.get("version")
        self.status = document.get("status", "fitted")
        self.kv_cache_mode = document.get("kv_cache_mode") or self.info.kv_cache_mode
        self.selected_spec = document["selected_spec"]
        self.fallback = document.get("fallback")
        sel = document["specs"][self.selected_spec]
        self.term = FittedTerm.from_doc(self.selected_spec, sel, path, f"specs.{self.selected_spec}", self.fallback)
        if self.term.spec.response != "overhead":
            raise CoefficientFileError(path, "selected_spec", f"{self.selected_spec!r} is not an overhead spec")
        # memory outside PyTorch's allocator (CUDA context, library handles), where the fit
        # estimated it through a measurement model (fitting.overhead.measurement): the fitted
        # response is PyTorch's allocated peak, the GPU must also hold this
        self.non_torch = None
        if self.kv_cache_mode == "growing":
            models = (document.get("observed_quantity") or {}).get("measurement_models") or []
            self.non_torch = next((m for m in models if m.get("model") == "non_torch_from_pairs"), None)
        cg = document.get("cuda_graph")
        self.cuda_graph = (FittedTerm.from_doc("cuda_graph", cg, path, "cuda_graph") if cg and cg.get("params")
                           and cg.get("status", "fitted") == "fitted" else None)

    @classmethod
    def from_file(cls, path_or_dir) -> "Estimator":
        """Load and validate a coefficient file.

        Parameters
        ----------
        path_or_dir : str or Path
            A ``fitted_params/<framework>/`` folder (its ``latest.json``) or one
            ``vNNNN.json``/``latest.json`` file.

        Raises
        ------
        CoefficientFileError
            Missing file, invalid JSON, unknown schema version or a schema violation.
        """
        doc, path = read_document(path_or_dir)
        return cls(doc, path=path)

    #: The same as :meth:`from_file` (the name earlier releases documented).
    load = from_file

    def __repr__(self):
        return (f"<Estimator {self.framework} v{self.version} ({self.status}, spec {self.selected_spec}, "
                f"{self.term.error_mode} errors)>")

    # -------------------------------------------------------------- inputs and defaults
    @property
    def defaults(self) -> dict:
        """The framework's own defaults this estimator applies to omitted settings."""
        d = dict(self.info.defaults)
        d.setdefault("batch_size", d.get("max_num_seqs", 1))
        return d

    def resolve_workload(self, model, *, tp, pp, batch_size, input_len, output_len, max_model_len,
                         max_num_batched_tokens, dtype, quantization, kv_cache_dtype, concurrency=None,
                         enforce_eager=None, framework_version=None, interconnect=None):
        """Resolve the model and fill defaults; returns (arch, entry, name, settings, defaults).

        For a framework with a KV *pool* ``batch_size`` is the engine's ``max_num_seqs`` (it
        sizes the sampler and the CUDA graphs) and ``concurrency`` the workload's concurrent
        sequences (it sizes the KV the pool must hold; default 1: one sequence, the start-up
        check). For the others the two are the same number."""
        arch, entry, name = resolve_model_arg(model)
        applied = {}
        pool = self.kv_cache_mode == "pool"
        if self.framework == "vllm" and (batch_size is None or max_num_batched_tokens is None):
            # vLLM's own defaults by version, engine and GPU tier; here the GPU is not known
            # (the CLI answer passes the GPU's defaults explicitly)
            d = vllm_defaults(framework_version or VLLM_NEWEST_KNOWN,
                              max_model_len=max_model_len or arch.max_position_embeddings)
            if batch_size is None:
                batch_size = d["max_num_seqs"]
                applied["batch_size"] = (f"{batch_size} (vLLM max_num_seqs default where the GPU is not known; "
                                         "1024 on >= 70 GiB non-A100 GPUs: give the GPU or max_num_seqs)")
            if max_num_batched_tokens is None and d["max_num_batched_tokens"] is not None:
                max_num_batched_tokens = d["max_num_batched_tokens"]
                applied["max_num_batched_tokens"] = f"{max_num_batched_tokens} ({d['rule']})"
        if batch_size is None:
            batch_size = self.defaults["batch_size"]
            applied["batch_size"] = f"{batch_size}"
        if concurrency is None:
            if pool:
                concurrency = 1
                applied["concurrency"] = "1 (one sequence: the engine-start check; give the workload's concurrency)"
            else:
                concurrency = batch_size
        elif not pool and np.any(np.asarray(concurrency) != np.asarray(batch_size)):
            raise ValueError(f"concurrency applies to frameworks with a KV pool; for {self.framework} give batch_size")
        if enforce_eager is None:
            enforce_eager = False
        if framework_version is None and self.framework == "vllm":
            framework_version = VLLM_NEWEST_KNOWN
            applied["framework_version"] = f"{framework_version} (the newest vLLM these facts cover)"
        elif framework_version is None and self.framework == "transformers":
            framework_version = TRANSFORMERS_DEFAULTS["version"]
            applied["framework_version"] = (f"{framework_version} (the newest transformers whose peak-memory "
                                            "mechanics were read; generate() with SDPA attention assumed)")
        if self.framework == "vllm" and isinstance(framework_version, str) and parse_version(framework_version):
            runner = default_model_runner(framework_version)
            if runner is not None:
                regime = sampler_regime(framework_version, model_runner=runner)
                applied["profile_run"] = (f"{runner.upper()} model runner (vLLM {framework_version}'s default), "
                                          f"dummy sampler path {regime}: {SAMPLER_REGIMES[regime].description}")
                if np.ndim(batch_size) == 0:
                    state = runner_state_bytes(arch.vocab_size, batch_size, framework_version, model_runner=runner)
                    if state > 0:
                        applied["profile_run"] += (
                            f"; its sampler keeps [max_num_seqs, vocab] int32 penalty counts, {state / _GIB:.2f} GiB at "
                            f"{int(batch_size)} sequences, counted as non-KV memory (inside the overhead line)")
        if self.framework == "llamacpp":
            if max_num_batched_tokens is None:
                max_num_batched_tokens = LLAMACPP_DEFAULTS["n_ubatch"]
                applied["max_num_batched_tokens"] = (f"{max_num_batched_tokens} (llama.cpp n_ubatch default: it sizes "
                                                     "the compute buffer)")
            applied["flash_attn"] = ("on (llama.cpp -fa auto, the default since PR 15434, Aug 2025; an older build "
                                     "or -fa off has a larger compute buffer)")
        if interconnect is not None and interconnect not in ("nvlink", "pcie"):
            raise ValueError(f"interconnect must be 'nvlink' or 'pcie', got {interconnect!r}")
        if interconnect is None and self.framework == "vllm" and np.any(np.asarray(tp) * np.asarray(pp) > 1):
            interconnect = "nvlink"
            applied["interconnect"] = ("nvlink (the multi-GPU non-torch memory of NVLink servers, the larger; "
                                       "give the GPU or interconnect='pcie' for PCIe cards)")
        if input_len is None and output_len is None:
            if max_model_len is None:
                max_model_len = arch.max_position_embeddings
                if max_model_len is None:
                    raise ValueError("give input_len/output_len or max_model_len: the model config has no "
                                     "max_position_embeddings to default to")
                applied["max_model_len"] = f"{max_model_len} (the model's max_position_embeddings)"
            input_len, output_len = max_model_len, 0
            applied["input_len"] = "max_model_len (each sequence fills the context)"
        else:
            input_len = 0 if input_len is None else input_len
            output_len = 0 if output_len is None else output_len
        if max_num_batched_tokens is None and "max_num_batched_tokens" in self.info.defaults:
            max_num_batched_tokens = self.info.defaults["max_num_batched_tokens"]
            applied["max_num_batched_tokens"] = f"{max_num_batched_tokens} (framework default)"
        if dtype is None:
            dtype = default_dtype(arch, self.framework)
            applied["dtype"] = f"{dtype} (from the model's torch_dtype {arch.torch_dtype!r})"
        if isinstance(quantization, str) and quantization.lower() in ("none", ""):
            quantization = None  # explicitly unquantized
        elif quantization is None and getattr(entry, "native_quantization", None):
            quantization = entry.native_quantization
            applied["quantization"] = f"{quantization} (the checkpoint's native format; --quantization none to override)"
        if kv_cache_dtype is None:
            kv_cache_dtype = "auto"
        settings = dict(tp=tp, pp=pp, batch_size=batch_size, concurrency=concurrency, input_len=input_len,
                        output_len=output_len, max_model_len=max_model_len,
                        max_num_batched_tokens=max_num_batched_tokens, dtype=dtype, quantization=quantization,
                        kv_cache_dtype=kv_cache_dtype, enforce_eager=bool(enforce_eager),
                        framework_version=framework_version, interconnect=interconnect)
        extra = getattr(entry, "unmodelled_weight_bytes", 0) or 0
        if extra:
            settings["unmodelled_weights_gib"] = extra / _GIB
            applied["unmodelled_weights_gib"] = (f"{extra / _GIB:.3f} GiB of checkpoint parts the physics does not "
                                                 "model (towers, from the safetensors metadata), added to the "
                                                 "weights on every GPU")
        elif self.framework not in TOWERLESS_FRAMEWORKS and (arch.extra or {}).get("multimodal_towers"):
            n = tower_parameters(arch, loaded=self._tower_as_loaded)
            if n:
                b = dtype_bytes(dtype)
                settings["vision_tower_gib"] = n * b / _GIB
                applied["vision_tower_gib"] = (
                    f"{n * b / _GIB:.3f} GiB of vision tower and projector ({n:,} parameters from the model's "
                    f"vision_config, fitting.physics.towers; unquantized, its linear layers sharded over tp): added "
                    "to the weights (an engine serving text only, e.g. vLLM --language-model-only, does not load it)")
        self._check(arch, settings)
        return arch, entry, name, settings, applied

    @property
    def _tower_as_loaded(self) -> str:
        """How the engine builds a vision tower (:func:`fitting.physics.towers.tower_parameters`)."""
        return "vllm" if self.framework == "vllm" else "checkpoint"

    def _check(self, arch, s):
        def arr(key):
            return np.asarray(s[key], dtype=float)

        for key in ("tp", "pp", "batch_size", "concurrency"):
            v = arr(key)
            if np.any(~np.isfinite(v)) or np.any(v < 1) or np.any(v != np.round(v)):
                raise ValueError(f"{key} must be a positive integer, got {show_value(s[key])}")
        for key in ("input_len", "output_len"):
            v = arr(key)
            if np.any(~np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{key} must be a non-negative number of tokens, got {show_value(s[key])}")
        if np.any(arr("input_len") + arr("output_len") < 1):
            raise ValueError("input_len + output_len must be at least 1 token")
        if s["max_model_len"] is not None:
            mml = arr("max_model_len")
            if np.any(mml < 1):
                raise ValueError(f"max_model_len must be a positive number of tokens, got {show_value(s['max_model_len'])}")
            if np.any(arr("input_len") + arr("output_len") > mml):
                raise ValueError("input_len + output_len exceeds max_model_len")
        if s["max_num_batched_tokens"] is not None and np.any(arr("max_num_batched_tokens") < 1):
            raise ValueError(f"max_num_batched_tokens must be positive, got {show_value(s['max_num_batched_tokens'])}")
        if self.framework in _HEAD_SHARDING:
            tp = np.asarray(s["tp"]).astype(int)
            heads = arch.num_attention_heads
            if np.any(heads % tp):
                bad = int(np.asarray(tp)[np.asarray(heads % tp) != 0].flat[0])
                raise ValueError(f"tp={bad} does not divide num_attention_heads={heads} "
                                 f"({self.framework} shards attention heads over tensor-parallel ranks)")
            kvh = arch.num_kv_heads
            if not arch.is_mla and kvh and np.any((kvh % tp != 0) & (tp % kvh != 0)):
                bad = int(np.asarray(tp)[np.asarray((kvh % tp != 0) & (tp % kvh != 0))].flat[0])
                raise ValueError(f"tp={bad} and num_key_value_heads={kvh}: one must divide the other "
                                 f"({self.framework} shards or replicates KV heads)")

    # ------------------------------------------------------------------------ core
    def _physics_one(self, arch, s):
        """Features, workload KV (GiB) and KV bytes per token for scalar tp and pp."""
        feats = build_features(arch, framework=self.framework, tp=s["tp"], pp=s["pp"],
                               batch_size=s["batch_size"], input_len=s["input_len"],
                               output_len=s["output_len"], max_num_batched_tokens=s["max_num_batched_tokens"],
                               dtype=s["dtype"], quantization=s["quantization"],
                               kv_cache_dtype=s["kv_cache_dtype"], framework_version=s.get("framework_version"),
                               interconnect=s.get("interconnect"),
                               llamacpp_settings=({"n_ubatch": s["max_num_batched_tokens"], "flash_attn": True}
                                                  if self.framework == "llamacpp" else None))
        extra = s.get("unmodelled_weights_gib") or 0.0
        if extra:
            # towers the physics does not count (from the safetensors headers): whole on every GPU
            feats = dict(feats)
            for key in ("weights_gib", "model_mem_gib"):
                feats[key] = feats[key] + extra
            feats["weights_total_gib"] = feats["weights_total_gib"] + extra * feats["n_gpus"]
        if s.get("vision_tower_gib"):
            # the tower on the first pipeline stage, its linear layers split over the tp ranks
            tower = tower_bytes_per_gpu(arch, dtype_bytes=dtype_bytes(s["dtype"]), tp=int(s["tp"]),
                                        loaded=self._tower_as_loaded) / _GIB
            feats = dict(feats)
            for key in ("weights_gib", "model_mem_gib"):
                feats[key] = feats[key] + tower
            feats["weights_total_gib"] = feats["weights_total_gib"] + s["vision_tower_gib"]
        kvbpt = physics.kv_bytes_per_token(arch, kv_cache_dtype=s["kv_cache_dtype"], dtype=s["dtype"],
                                           tp=s["tp"], pp=s["pp"])
        if self.kv_cache_mode == "pool":
            seq = np.asarray(s["input_len"], float) + np.asarray(s["output_len"], float)
            kv = np.asarray(physics.kv_cache_bytes(
                arch, num_tokens=seq, num_seqs=np.asarray(s["concurrency"], float),
                kv_cache_dtype=s["kv_cache_dtype"], dtype=s["dtype"], tp=s["tp"], pp=s["pp"],
                block_size=self.info.defaults.get("block_size")), dtype=float) / _GIB
        else:
            kv = feats["kv_gib"]
        return feats, kv, kvbpt

    def _physics(self, arch, s):
        """:meth:`_physics_one` over arrays: the physics is evaluated once per distinct
        (tp, pp) pair (weights depend only on those) and scattered back."""
        keys = ("tp", "pp", "batch_size", "concurrency", "input_len", "output_len", "max_num_batched_tokens")
        arrays = {k: np.asarray(s[k]) for k in keys if s[k] is not None}
        shape = np.broadcast(*arrays.values()).shape
        if np.ndim(s["tp"]) == 0 and np.ndim(s["pp"]) == 0:
            feats, kv, kvbpt = self._physics_one(arch, s)
        else:
            b = {k: np.broadcast_to(v, shape).reshape(-1) for k, v in arrays.items()}
            key = b["tp"].astype(np.int64) * 65536 + b["pp"].astype(np.int64)
            n = key.size
            feats, kv, kvbpt = {}, np.empty(n), np.empty(n)
            for g in np.unique(key):  # few distinct (tp, pp) pairs: one boolean scan each
                rows = np.flatnonzero(key == g)
                sub = dict(s)
                sub.update({k: v[rows] for k, v in b.items()})
                sub["tp"], sub["pp"] = int(g // 65536), int(g % 65536)
                f_g, kv_g, bpt_g = self._physics_one(arch, sub)
                for k, v in f_g.items():
                    feats.setdefault(k, np.empty(n))[rows] = v
                kv[rows], kvbpt[rows] = kv_g, bpt_g
            feats = {k: v.reshape(shape) for k, v in feats.items()}
            kv, kvbpt = kv.reshape(shape), kvbpt.reshape(shape)
        return feats, np.broadcast_to(np.asarray(kv, float), shape), np.broadcast_to(np.asarray(kvbpt, float), shape)

    def components(self, arch, s):
        """Predictive distributions and physics of one architecture (arrays broadcast): a dict with
        ``features, y, overhead, kv, kvbpt, non_kv, needed, cg, total``."""
        feats, kv, kvbpt = self._physics(arch, s)
        y = self.term.distribution(feats)
        overhead = np.broadcast_to(np.asarray(self.term.spec.evaluate(feats, self.term.theta), float),
                                   y.center.shape)
        if self.kv_cache_mode == "pool":
            non_kv = y
            needed = y.shifted(kv)  # non-KV + workload KV: what the pool fraction must hold
        else:
            non_kv = y.shifted(-kv)
            needed = y
        kv = np.broadcast_to(kv, y.center.shape)
        # enforce_eager: no CUDA graphs are captured
        cg = (self.cuda_graph.distribution(feats) if self.cuda_graph is not None and not s.get("enforce_eager")
              else None)
        total = needed.plus(cg) if cg is not None else needed
        # vLLM 0.20+ profiles the CUDA-graph memory and subtracts it before sizing the pool
        # (v1/worker/gpu_worker.py, determine_available_memory; 0.34's extensible KV cache is
        # committed after capture): the graphs are inside u G, not in the rest of the GPU
        version = parse_version(s.get("framework_version")) if self.framework == "vllm" else None
        cg_in_budget = cg is not None and version is not None and graphs_in_pool_budget(version)
        # vLLM 0.34's extensible KV cache (on by default with CUDA VMM) sizes the pool from the
        # memory free after warm-up, less a margin max(1 GiB, 0.75 x the activation peak)
        # (v1/worker/extensible_kv_cache.py, measure_kv_cache_bytes): the budget is at most G - margin
        margin = (np.maximum(EXTENSIBLE_MARGIN_FLOOR_GIB, EXTENSIBLE_MARGIN_FRACTION * feats["activations_gib"])
                  if version is not None and version >= (0, 34) else None)
        return dict(features=feats, y=y, overhead=overhead, kv=kv, kvbpt=np.broadcast_to(kvbpt, y.center.shape),
                    non_kv=non_kv, needed=needed, cg=cg, total=total, cg_in_budget=cg_in_budget,
                    budget_non_kv=non_kv.plus(cg) if cg_in_budget else non_kv,
                    budget_needed=total if cg_in_budget else needed, extensible_margin=margin,
                    framework_version=s.get("framework_version"))

    def pool_rule(self, fraction, framework_version=None):
        """How this engine turns its fraction setting into a pool: :func:`fitting.estimator.pool.pool_rule`
        (``pool = scale x (budget_fraction x G - non_kv)``)."""
        return pool_rule(self.framework, fraction, framework_version)

    @staticmethod
    def needed_in_budget(c, rule):
        """The distribution the budget must hold for the workload: non-KV + KV / scale."""
        if np.all(np.asarray(rule.scale, float) == 1.0):
            return c["budget_needed"]
        return c["budget_non_kv"].shifted(np.asarray(c["kv"], float) / np.asarray(rule.scale, float))

    def fit_probability_of(self, c, gpu_memory_gib, gpu_memory_utilization):
        G = np.asarray(gpu_memory_gib, dtype=float)
        if self.static_fraction_setting is not None:
            u = np.asarray(gpu_memory_utilization, dtype=float)
            rule = self.pool_rule(u, c.get("framework_version"))
            p = self.needed_in_budget(c, rule).cdf(self.budget_gib(c, G, rule.budget_fraction))
            if c["cg"] is not None and not c["cg_in_budget"]:
                p = p * c["cg"].cdf((1.0 - u) * G)
            return p
        return c["total"].cdf(G - self.non_torch_gib)

    @staticmethod
    def budget_gib(c, gpu_memory_gib, u):
        """GiB per GPU a preallocating engine fills with non-KV memory and its pool: ``u G``,
        at most ``G - margin`` with vLLM 0.34's extensible KV cache."""
        G = np.asarray(gpu_memory_gib, dtype=float)
        budget = np.asarray(u, dtype=float) * G
        margin = c.get("extensible_margin")
        return budget if margin is None else np.minimum(budget, G - margin)

    @property
    def non_torch_gib(self) -> float:
        """GiB per GPU outside PyTorch's allocator that a fit question adds to the predicted
        allocated peak (0 where the coefficient file has no such measurement model)."""
        return float(self.non_torch["estimate_gib"]) if self.non_torch else 0.0

    def _range_flags(self, arch, entry, s):
        """(messages, boolean array) for settings outside the fitted data ranges."""
        ranges = self.term.data_ranges or {}
        shape = np.broadcast(*[np.asarray(s[k]) for k in ("tp", "pp", "batch_size", "input_len")]).shape
        outside = np.zeros(shape, dtype=bool)
        msgs = []
        values = {"params_b": params_billions(arch, entry), "tp": s["tp"], "pp": s["pp"], "batch_size": s["batch_size"],
                  "n_gpus": np.asarray(s["tp"]) * np.asarray(s["pp"])}
        labels = {"params_b": "model size (billions of parameters)", "tp": "tp", "pp": "pp",
                  "batch_size": "batch size", "n_gpus": "GPU count"}
        for key, label in labels.items():
            rng = ranges.get(key)
            if not rng or rng[0] is None or rng[1] is None:
                continue
            v = np.asarray(values[key], dtype=float)
            bad = (v < rng[0]) | (v > rng[1])
            if np.any(bad):
                outside |= np.broadcast_to(bad, shape)
                shown = show_value(values[key]) if np.size(v) == 1 else f"{int(np.sum(bad))} of {np.size(v)} values"
                msgs.append(f"{label} {shown} is outside the fitted data range [{fmt_g(rng[0])}, {fmt_g(rng[1])}]: "
                            "extrapolation")
        if self.status != "fitted":
            fb = self.fallback or {}
            msgs.append(f"framework {self.framework} is unfitted: overhead from {fb.get('source', 'fallback constants')}"
                        f"{' (' + fb['text'] + ')' if fb.get('text') else ''}; intervals are deliberately wide")
        if self.cuda_graph is None and self.framework == "vllm":
            msgs.append("CUDA graph memory is not modelled in this coefficient file (cuda_graph_gib is null)")
        return msgs, outside

    def _precision_flags(self, c):
        """Warnings where a fitted value's relative standard error exceeds
        :data:`POOR_PRECISION_RSE` (its interval is then dominated by parameter uncertainty)."""
        msgs = []
        if not math.isfinite(self.term.residual_scale):
            msgs.append(f"specs.{self.selected_spec} has no residual scale: intervals and fit probabilities are "
                        "undefined (null)")
        for label, d in (("overhead fit", c["y"]), ("CUDA-graph term", c["cg"])):
            rse = None if d is None else d.mean_rse
            if rse is None or not np.any(rse > POOR_PRECISION_RSE):
                continue
            worst = float(np.nanmax(rse))
            msgs.append(f"the {label} is poorly determined here (relative standard error of the fitted value up to "
                        f"{worst:.0%}): its interval is wide; check the fitted data ranges")
        return msgs

    # ------------------------------------------------------------------------ predict
    def predict(self, model=None, *, tp=1, pp=1, batch_size=None, input_len=None, output_len=None,
                max_model_len=None, max_num_batched_tokens=None, dtype=None, quantization=None,
                kv_cache_dtype=None, alpha=0.10, gpu_memory_gib=None, gpu_memory_utilization=None,
                as_frame=None, concurrency=None, enforce_eager=None, framework_version=None, interconnect=None):
        """Memory of one configuration, or of many at once.

        Parameters
        ----------
        model : str, ModelEntry, Architecture or pandas.DataFrame
            Registry id or alias, a path to a ``config.json``, or a DataFrame with one
            configuration per row (columns named as the keyword arguments below, plus
            ``model``; missing columns take the keyword value).
        tp, pp : int or array of int
            Tensor / pipeline parallel degree; GPUs = tp x pp.
        batch_size : int or array, optional
            Concurrent sequences; for a framework with a KV pool (vLLM) the engine's
            ``max_num_seqs``. Default: the framework's own (vLLM 256), else 1.
        concurrency : int or array, optional
            KV-pool frameworks: the workload's concurrent sequences, whose KV the pool must
            hold (default 1: one sequence, the engine-start check).
        enforce_eager : bool, optional
            vLLM ``--enforce-eager``: no CUDA graphs.
        interconnect : {"nvlink", "pcie"}, optional
            vLLM with tp x pp > 1: how the GPUs are connected (its non-torch memory differs;
            default ``nvlink``, the larger).
        framework_version : str, optional
            The framework's version (vLLM: default the newest these facts cover).
        input_len, output_len : int or array, optional
            Tokens per sequence (prompt, generated). If both are omitted every sequence
            fills ``max_model_len``.
        max_model_len : int, optional
            Context limit (tokens); default the model's ``max_position_embeddings``.
        max_num_batched_tokens : int or array, optional
            Tokens per forward pass (vLLM's profiling run); default the framework's (8192).
        dtype : str, optional
            Activation/weight dtype; default from the model's ``torch_dtype`` (vLLM
            "auto": bfloat16 stays, float16/float32 -> float16).
        quantization : str, optional
            Weight format (e.g. ``fp8``, ``awq``, ``gptq``), None for unquantised.
        kv_cache_dtype : str, optional
            ``auto`` (= dtype) or e.g. ``fp8``.
        alpha : float
            ``1 - alpha`` prediction intervals (default 0.10: 90 %).
        gpu_memory_gib : float, optional
            Adds ``fit_probability`` (vectorised output only; see :meth:`fit_probability`).
        gpu_memory_utilization : float, optional
            vLLM's fraction for ``fit_probability`` (default 0.9).
        as_frame : bool, optional
            Force a DataFrame (True) or a dict of arrays (False); by default scalars give a
            :class:`Prediction` and arrays/DataFrames a DataFrame.

        Returns
        -------
        Prediction or pandas.DataFrame or dict of ndarray
            GiB per GPU (``total_all_gpus_*``: all GPUs), intervals at ``1 - alpha``.
        """
        check_alpha(alpha)
        kw = dict(tp=tp, pp=pp, batch_size=batch_size, input_len=input_len, output_len=output_len,
                  max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens, dtype=dtype,
                  quantization=quantization, kv_cache_dtype=kv_cache_dtype, concurrency=concurrency,
                  enforce_eager=enforce_eager, framework_version=framework_version, interconnect=interconnect)
        if is_frame(model):
            return predict_frame(self, model, kw, alpha, gpu_memory_gib, gpu_memory_utilization, as_frame)
        vector = any(np.ndim(v) > 0 for k, v in kw.items()
                     if k not in ("dtype", "quantization", "kv_cache_dtype", "framework_version", "interconnect"))
        out, msgs, s, applied, name, c = self.predict_arrays(model, kw, alpha, gpu_memory_gib,
                                                             gpu_memory_utilization)
        if not vector and not as_frame:
            if as_frame is False:
                return out
            return build_prediction(self, name, out, alpha, msgs, s, applied, c)
        if as_frame is False:
            return out
        import pandas as pd  # lazy: pandas adds ~0.4 s to a cold start; only array output needs it

        shape = out["total_gib"].shape
        cols = {k: np.broadcast_to(np.asarray(v), shape) for k, v in s.items()
                if v is not None and k in ("tp", "pp", "batch_size", "input_len", "output_len", "max_num_batched_tokens")}
        frame = pd.DataFrame({**cols, **out}, copy=False)
        frame.attrs.update({"framework": self.framework, "model": name, "params_version": self.version,
                            "alpha": alpha, "warnings": list(msgs), "defaults_applied": dict(applied)})
        return frame

    def predict_arrays(self, model, kw, alpha, gpu_memory_gib=None, gpu_memory_utilization=None):
        """Core of :meth:`predict`: (dict of output arrays, warnings, settings, defaults, model name,
        components dict of :meth:`components`)."""
        arch, entry, name, s, applied = self.resolve_workload(model, **kw)
        c = self.components(arch, s)
        n_gpus = np.asarray(s["tp"]) * np.asarray(s["pp"])
        out = component_table(c, alpha, n_gpus)
        msgs, outside = self._range_flags(arch, entry, s)
        msgs += self._precision_flags(c)
        shape = np.broadcast(np.asarray(out["total_gib"]), outside).shape
        out = {k: np.broadcast_to(np.asarray(v), shape) for k, v in out.items()}
        out["outside_fitted_range"] = np.broadcast_to(outside, shape)
        if gpu_memory_gib is not None:
            check_gpu_memory(gpu_memory_gib)
            u = self.utilization(gpu_memory_utilization, s)
            out["fit_probability"] = np.broadcast_to(self.fit_probability_of(c, gpu_memory_gib, u), shape)
        return out, msgs, s, applied, name, c

    @property
    def static_fraction_setting(self) -> str | None:
        """The setting that sizes this engine's static budget as a fraction of the GPU (vLLM
        ``gpu_memory_utilization``, SGLang ``mem_fraction_static``), None for other frameworks."""
        return POOL_SETTING.get(self.framework)

    def utilization(self, u, settings=None):
        """The static fraction (vLLM's ``gpu_memory_utilization``, SGLang's
        ``mem_fraction_static``): the framework default for None (vLLM: that of the version in
        ``settings``, :func:`fitting.data.frameworks.vllm_default_utilization`), else checked
        in (0, 1]."""
        name = self.static_fraction_setting or "gpu_memory_utilization"
        if u is None:
            if self.framework == "vllm":
                return vllm_default_utilization((settings or {}).get("framework_version") or VLLM_NEWEST_KNOWN)
            return float(self.info.defaults.get(name, 1.0))
        u = np.asarray(u, dtype=float)
        if np.any((u <= 0) | (u > 1)):
            raise ValueError(f"{name} must lie in (0, 1], got {show_value(u)}")
        return u

    # ----------------------------------------------------------- inverse queries (queries.py)
    def fit_probability(self, model, *, gpu_memory_gib, gpu_memory_utilization=None, **workload):
        """Probability that the configuration fits: :func:`fitting.estimator.queries.fit_probability`."""
        return queries.fit_probability(self, model, gpu_memory_gib=gpu_memory_gib,
                                       gpu_memory_utilization=gpu_memory_utilization, **workload)

    def max_batch_size(self, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
        """Largest batch that fits at ``confidence``: :func:`fitting.estimator.queries.max_batch_size`."""
        return queries.max_batch_size(self, model, gpu_memory_gib=gpu_memory_gib, confidence=confidence,
                                      gpu_memory_utilization=gpu_memory_utilization, **workload)

    def max_context_len(self, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
        """Longest context that fits at ``confidence``: :func:`fitting.estimator.queries.max_context_len`."""
        return queries.max_context_len(self, model, gpu_memory_gib=gpu_memory_gib, confidence=confidence,
                                       gpu_memory_utilization=gpu_memory_utilization, **workload)

    def kv_pool_tokens(self, model, *, gpu_memory_gib, gpu_memory_utilization=None, alpha=0.10, **workload):
        """vLLM's KV pool in tokens: :func:`fitting.estimator.queries.kv_pool_tokens`."""
        return queries.kv_pool_tokens(self, model, gpu_memory_gib=gpu_memory_gib,
                                      gpu_memory_utilization=gpu_memory_utilization, alpha=alpha, **workload)

    def kv_pool_concurrency(self, model, *, gpu_memory_gib, gpu_memory_utilization=None, alpha=0.10, **workload):
        """vLLM's maximum concurrency at max_model_len: :func:`fitting.estimator.queries.kv_pool_concurrency`."""
        return queries.kv_pool_concurrency(self, model, gpu_memory_gib=gpu_memory_gib,
                                           gpu_memory_utilization=gpu_memory_utilization, alpha=alpha, **workload)

    def min_gpu_memory_utilization(self, model, *, gpu_memory_gib, confidence=0.95, **workload):
        """Smallest vLLM utilization that holds the workload:
        :func:`fitting.estimator.queries.min_gpu_memory_utilization`."""
        return queries.min_gpu_memory_utilization(self, model, gpu_memory_gib=gpu_memory_gib,
                                                  confidence=confidence, **workload)

    # ------------------------------------------------------------- one answer (answer.py)
    def query(self, model, *, gpu=None, gpu_memory_gib=None, gpu_memory_utilization=None, confidence=0.95,
              alpha=0.10, **workload) -> dict:
        """Everything ``python -m fitting.estimate`` reports: :func:`fitting.estimator.answer.answer`."""
        return answer(self, model, gpu=gpu, gpu_memory_gib=gpu_memory_gib,
                      gpu_memory_utilization=gpu_memory_utilization, confidence=confidence, alpha=alpha,
                      **workload)

    def require_pool(self, what):
        if self.static_fraction_setting is None:
            raise ValueError(f"{what} is a question for engines that preallocate a KV pool from a fraction of the "
                             f"GPU (vLLM gpu_memory_utilization, SGLang mem_fraction_static, TGI "
                             f"cuda_memory_fraction, TensorRT-LLM free_gpu_memory_fraction); framework is "
                             f"{self.framework}")

