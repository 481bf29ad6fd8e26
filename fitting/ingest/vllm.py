"""vLLM start-up logs -> profiles.

Formats read (each seen in public logs, see ``tests/fixtures/logs/vllm/``):

* V0, Dec 2024 on: ``model weights take X GiB; non_torch_memory takes Y GiB; PyTorch
  activation peak memory takes Z GiB; the rest of the memory reserved for KV Cache is
  K GiB`` and the PR-10511 multi-line "Memory profiling results" table;
* V0 v0.6.4 era: ``Memory profiling results: total_gpu_memory=... peak_torch_memory=...
  non_torch_memory=... kv_cache_size=...`` (``peak_torch`` *includes* the weights);
* ``Loading model weights took X GB`` / ``Model loading took X GiB`` (vLLM computes both
  as bytes / 2**30 whatever the label, so they are recorded as GiB);
* ``# GPU blocks: N`` (also ``# CUDA/cuda/rocm blocks``), V1 ``num_gpu_blocks is: N``;
* V1: ``Available KV cache memory``, ``GPU KV cache size: N tokens``, ``Maximum
  concurrency for L tokens per request``, ``Graph capturing finished in S secs, took X
  GiB``, ``CUDA graph pool memory: X GiB (actual)``, ``Actual usage is W GiB for weight,
  A GiB for peak activation, N GiB for non-torch memory, and G GiB for CUDAGraph
  memory`` (and the ``consumed memory (weights + non-torch)`` variant), the DEBUG line
  ``Total non KV cache memory ...; weights memory ...``;
* engine header ``Initializing a V1 LLM engine (v0.10.2) with config: ...``, ``vLLM API
  server version`` (0.27+: the ASCII banner's ``version X``), ``non-default args: {...}``,
  ``args: Namespace(...)`` and ``vllm serve MODEL --flag value`` command lines (also
  continued with backslashes) for the launch settings;
* the GPU's name from the fused-MoE tuning file vLLM looks up (``device_name=NVIDIA_L40S``)
  or a pre-Ampere card's bfloat16 warning (``Your device 'Tesla T4' (with compute
  capability 7.5)``).

When one quantity is printed by several lines, the profiling split wins over the
model-loading line, which wins over the V1 DEBUG and ``Actual usage`` lines.
"""

from __future__ import annotations

import re

from fitting.data.frameworks import vllm_default_utilization

from ._common import (
    MAX_LINE_CHARS,
    NUM,
    Collector,
    Rule,
    as_bool,
    as_fraction,
    clean_value,
    fmt,
    kv_pattern,
    measure_rule,
    measured_field,
    parse_decimal,
    parse_int,
    scan,
    setting_rule,
    to_float,
)

FRAMEWORK = "vllm"

#: Literal markers and their weights for framework detection.
MARKERS = {
    "vllm": 1, "LLM engine": 5, "gpu_model_runner": 5, "model_runner.py": 3, "worker.py": 2,
    "GPU KV cache size": 5, "Model loading took": 3, "Loading model weights took": 5,
    "reserved for KV Cache is": 5, "non_torch_memory": 5, "Available KV cache memory": 5,
    "EngineCore": 3, "VllmWorker": 5, "# GPU blocks": 5, "# CUDA blocks": 5,
}

_GIB_LABELS = {"GiB": "gib", "GB": "gib"}  # vLLM divides by 2**30 for both labels

_SETTING_KEYS = (
    "model", "model_tag", "tensor_parallel_size", "pipeline_parallel_size", "dtype", "quantization",
    "kv_cache_dtype", "max_seq_len", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
    "gpu_memory_utilization", "enforce_eager", "block_size", "language_model_only", "async_scheduling",
)
_EQ = kv_pattern(_SETTING_KEYS, "eq")
_DICT = kv_pattern(_SETTING_KEYS, "dict")
_CLI = kv_pattern(_SETTING_KEYS, "cli")
_CLI_SHORT = re.compile(r"(?<!\S)-(tp|pp|q)(?:=|\s+)(\S{1,40})")
_CLI_EAGER = re.compile(r"(?<!\S)--enforce-eager(?![\w-])")
_CLI_LM_ONLY = re.compile(r"(?<!\S)--language-model-only(?![\w-])")
_SERVE = re.compile(r"(?:^|[\s$>#])vllm serve\s+([^\s-][^\s]{0,200})")
_SETTINGS_LINE = re.compile(r"LLM engine.{0,80}with config:|non-default args: \{|args: Namespace\(")
_RANK = re.compile(r"^\s*\(([A-Za-z][\w-]{0,40}(?: [^()]{0,80})?)\)\s")
_PID = re.compile(r",?\s*(?:pid|ip)=[^\s,)]+")

_DTYPES = {"half": "float16", "fp16": "float16", "float16": "float16", "bfloat16": "bfloat16",
           "bf16": "bfloat16", "float": "float32", "float32": "float32", "fp32": "float32"}


def _rank(line):
    """Rank key of a worker-prefixed line, e.g. ``(VllmWorker rank=1 pid=7)`` -> ``VllmWorker
    rank=1``; pids are kept only when nothing else tells the workers apart."""
    m = _RANK.match(line)
    if m is None:
        return ""
    key = m.group(1)
    short = _PID.sub("", key).strip()
    return short if re.search(r"\d", short) else key


def _dtype(raw):
    if raw is None:
        return None
    raw = raw.removeprefix("torch.")
    return _DTYPES.get(raw.lower())


def _settings_from(text, c, style_patterns):
    """Read known launch settings from a header / args / command line."""
    found = []
    for pattern in style_patterns:
        for m in pattern.finditer(text):
            key = m.group(1).replace("-", "_")
            raw = clean_value(m.group(2))
            found.append(f"{key}={raw}")
            _apply(c, key, raw)
    if style_patterns and style_patterns[0] is _CLI:
        for m in _CLI_SHORT.finditer(text):
            key = {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size", "q": "quantization"}[m.group(1)]
            raw = clean_value(m.group(2))
            found.append(f"{key}={raw}")
            _apply(c, key, raw)
        if _CLI_EAGER.search(text):
            found.append("enforce_eager=True")
            _apply(c, "enforce_eager", "True")
        if _CLI_LM_ONLY.search(text):
            found.append("language_model_only=True")
            _apply(c, "language_model_only", "True")
    if found:
        c.run.add_evidence("[settings] " + ", ".join(found))


def _apply(c, key, raw):
    if key in ("model", "model_tag"):
        c.setting("model", raw)
    elif key in ("tensor_parallel_size", "pipeline_parallel_size", "max_num_seqs",
                 "max_num_batched_tokens", "block_size"):
        c.setting(key, parse_int(raw) if raw else None)
    elif key in ("max_seq_len", "max_model_len"):
        c.setting("max_model_len", parse_int(raw) if raw else None)
    elif key == "dtype":
        c.setting("dtype", _dtype(raw))
    elif key == "quantization":
        c.setting("quantization", raw)
    elif key == "kv_cache_dtype":
        c.setting("kv_cache_dtype", raw)
    elif key == "gpu_memory_utilization":
        c.setting("gpu_memory_utilization", as_fraction(raw))
    elif key == "enforce_eager":
        c.setting("enforce_eager", as_bool(raw))
    elif key == "async_scheduling":
        # sizes the sliding-window groups' in-flight reserve from 0.26 (physics.vllm.in_flight_tokens)
        c.setting("async_scheduling", as_bool(raw))
    elif key == "language_model_only":
        # --language-model-only: a multimodal checkpoint served as text only (no tower is built
        # and the profile run encodes no dummy images)
        c.setting("language_model_only", as_bool(raw))


def _rules(c):
    g = _GIB_LABELS
    m = lambda lit, pat, key, **kw: measure_rule(c, lit, pat, key, **kw)  # noqa: E731
    s = lambda lit, pat, key, fn, **kw: setting_rule(c, lit, pat, key, fn, **kw)  # noqa: E731
    gib = {"unit": "gib"}
    rules = [
        m("Loading model weights took", rf"Loading model weights took {NUM} ?(GiB|GB)\b", "weights.loading",
          unit_group=2, units=g),
        m("Model loading took", rf"Model loading took {NUM} ?(GiB|GB)\b", "weights.loading", unit_group=2, units=g),
        m("model weights take", rf"model weights take\s+{NUM} ?GiB", "weights.profile", **gib),
        # not 0.19's debug "worker init memory snapshot ... non_torch_memory=X" (taken before the
        # model loads: the CUDA context, not the profile's non-torch increase)
        m("non_torch_memory", rf"^(?!.*memory snapshot).*?non_torch_memory(?: takes\s+|=|\s+){NUM} ?GiB",
          "non_torch.profile", **gib),
        m("activation peak memory", rf"PyTorch activation peak memory(?: takes)?\s+{NUM} ?GiB",
          "activation.profile", **gib),
        m("reserved for KV Cache is", rf"reserved for KV Cache is\s+{NUM} ?GiB", "kv.profile", **gib),
        m("available_kv_cache_memory", rf"available_kv_cache_memory\s+{NUM} ?GiB", "kv.profile", **gib),
        m("kv_cache_size=", rf"kv_cache_size={NUM} ?GiB", "kv.profile", **gib),
        m("peak_torch_memory=", rf"peak_torch_memory={NUM} ?GiB", "peak_torch", **gib),
        m("Available KV cache memory", rf"Available KV cache memory: {NUM} ?GiB", "kv.available", **gib),
        m("kv cache memory in use", rf"kv cache memory in use is {NUM} ?(GiB|bytes)\b", "kv.in_use",
          unit_group=2, units={"GiB": "gib", "bytes": "bytes"}),
        # the V2 model runner (0.29) prints one line for the CUDA-graph memory profiling and one for
        # the capture itself: the last is the capture
        m("Graph capturing finished", rf"Graph capturing finished in {NUM} secs?, took {NUM} ?(GiB|MiB)\b",
          "cuda_graph.capture", group=2, unit_group=3, units={"GiB": "gib", "MiB": "mib"}, mode="last"),
        m("CUDA graph pool memory", rf"CUDA graph pool memory: {NUM} ?GiB \(actual\)", "cuda_graph.pool", **gib),
        m("for weight", rf"{NUM} GiB for weight\b", "weights.actual", **gib),
        m("for peak activation", rf"{NUM} GiB for peak activation", "activation.actual", **gib),
        m("for non-torch memory", rf"{NUM} GiB for non-torch memory", "non_torch.actual", **gib),
        m("for CUDAGraph memory", rf"{NUM} GiB for CUDAGraph memory", "cuda_graph.actual", **gib),
        m("for consumed memory", rf"{NUM} GiB for consumed memory", "consumed.actual", **gib),
        m("weights memory:", rf"weights memory: {NUM} ?GiB", "weights.debug", **gib),
        m("torch peak memory increase", rf"torch peak memory increase: {NUM} ?GiB", "activation.debug", **gib),
        m("non-torch forward increase", rf"non-torch forward increase memory: {NUM} ?GiB", "non_torch.debug", **gib),
        m("Total non KV cache memory", rf"Total non KV cache memory: {NUM} ?GiB", "non_kv_total.debug", **gib),
        # several workers of one start may print the pool without a rank prefix: the last is kept
        # (a new start opens at its version, args or engine lines)
        m("GPU KV cache size", rf"GPU KV cache size: {NUM} tokens", "kv_tokens", integer=True, mode="last"),
        m("stored in KV cache", rf"maximum number of tokens that can be stored in KV cache \({NUM}\)",
          "kv_tokens.error", integer=True),
        Rule(" blocks: ", re.compile(rf"# (\w{{1,8}}) blocks: {NUM}, # CPU blocks", re.IGNORECASE),
             lambda mm, line, rank: c.add("blocks.v0", parse_int(mm.group(2)), None, rank=rank, line=line)),
        m("num_gpu_blocks is", rf"num_gpu_blocks is: {NUM}", "blocks.v1", integer=True),
        # V1 0.7.x prints the pool alone: "kv_cache_utils.py:407] # GPU blocks: 33660"
        m("# GPU blocks:", rf"kv_cache_utils\.py:\d+\] # GPU blocks: {NUM}\s*$", "blocks.v1", integer=True),
        s("total_gpu_memory", rf"total_gpu_memory(?: \(|\s+|=){NUM} ?GiB", "gpu_memory_gib",
          lambda r: to_float(parse_decimal(r))),
        s("Free memory on device", rf"Free memory on device \({NUM}/{NUM} GiB\)", "gpu_memory_gib",
          lambda r: to_float(parse_decimal(r)), group=2),
        s("gpu_memory_utilization", rf"gpu_memory_utilization(?: \(|\s+|=){NUM}", "gpu_memory_utilization",
          as_fraction),
        # the V2 GPU model runner (vllm/v1/worker/gpu/model_runner.py, default for more models from
        # 0.24 and for all from 0.29) logs from model_runner.py inside the engine-core process; the
        # V1 runner from gpu_model_runner.py (V0's own model_runner.py has no EngineCore prefix)
        s("model_runner.py:", r"EngineCore\S*(?: pid=\d+)?\)\s.*\[model_runner\.py:\d+\]", "model_runner",
          lambda _r: "v2", group=0),
        s("gpu_model_runner.py:", r"\[gpu_model_runner\.py:\d+\]", "model_runner", lambda _r: "v1", group=0),
        s("Using V2 Model Runner", r"Using V2 Model Runner", "model_runner", lambda _r: "v2", group=0, overwrite=True),
        # the torch.compile cache at this start (vllm/compilation/backends.py, decorators.py): a
        # graph compiled (cold: its temporaries count in the profiled peak, vllm#54122) or loaded
        s("Compiling a graph for", r"Compiling a graph for (?:dynamic shape|compile range)", "compile_cache",
          lambda _r: "cold", group=0),
        s("saved AOT compiled function", r"saved AOT compiled function", "compile_cache", lambda _r: "cold", group=0),
        s("Directly load", r"Directly load (?:the compiled graph|AOT compilation)", "compile_cache",
          lambda _r: "warm", group=0),
        s("Desired GPU memory utilization", rf"Desired GPU memory utilization is \({NUM}, ",
          "gpu_memory_utilization", as_fraction),
        s("Requested memory:", rf"Requested memory: {NUM} \(util\)", "gpu_memory_utilization", as_fraction),
        # 0.20+ with CUDA-graph memory profiling: "The current --gpu-memory-utilization=0.9200 is
        # equivalent to --gpu-memory-utilization=0.9182 without ..." (v1/worker/gpu_worker.py)
        s("The current --gpu-memory-utilization=", rf"The current --gpu-memory-utilization={NUM} is equivalent",
          "gpu_memory_utilization", as_fraction),
        # ... and the utilization it equals without the CUDA-graph estimate: vLLM prints
        # round(u - estimate / total, 4), so the estimate it subtracted is (u - that) x total
        s("without CUDA graph memory profiling", rf"equivalent to --gpu-memory-utilization={NUM} without",
          "utilization_without_graphs", as_fraction),
        # the estimate again, to 0.01 GiB, after the capture (0.20+: "CUDA graph pool memory:
        # 0.29 GiB (actual), 0.5 GiB (estimated), ...")
        s("GiB (estimated)", rf"CUDA graph pool memory: {NUM} ?GiB \(actual\), {NUM} ?GiB \(estimated\)",
          "cuda_graph_estimate_printed", lambda r: to_float(parse_decimal(r)), group=2),
        s("Maximum concurrency for", rf"Maximum concurrency for {NUM} tokens per request", "max_model_len",
          parse_int),
        s("Using max model len", rf"Using max model len {NUM}", "max_model_len", parse_int),
        s("Chunked prefill is enabled", rf"max_num_batched_tokens={NUM}", "max_num_batched_tokens", parse_int),
        Rule("LLM engine", re.compile(r"Initializing (?:a (V[01]) |an )?LLM engine(?: \(v?([\w.+-]{1,60})\))?"
                                      r" with config:"), lambda mm, line, rank: _header(c, mm, line)),
        # lines that decide mechanisms (kept as evidence for fitting.data.vllm_settings): the
        # sampler implementation (vllm/v1/sample/ops/topk_topp_sampler.py) and custom
        # all-reduce (vllm/distributed/device_communicators/custom_all_reduce.py)
        Rule("top-p & top-k sampling", re.compile(r"Using FlashInfer for top-p|FlashInfer is not available\. Falling back"
                                                   r"|FlashInfer is available, but it is not enabled"),
             lambda mm, line, rank: c.run.add_evidence(line[mm.start():])),
        Rule("Custom allreduce is disabled", re.compile(r"Custom allreduce is disabled"),
             lambda mm, line, rank: c.run.add_evidence(line[mm.start():])),
        # the GPU as vLLM names it: the fused-MoE tuning file it looks up ("device_name=NVIDIA_L40S.json")
        # and the bfloat16 warning of pre-Ampere cards ("Your device 'Tesla T4' (with compute capability 7.5)")
        Rule("device_name=", re.compile(r"device_name=([A-Za-z0-9][\w-]{1,80}?)(?:\.json|,|\])"),
             lambda mm, line, rank: c.setting("gpu_name", mm.group(1).replace("_", " "))),
        Rule("Your device '", re.compile(r"Your device '([^']{2,80})' \(with compute capability"),
             lambda mm, line, rank: c.setting("gpu_name", mm.group(1))),
        Rule("server version", re.compile(r"vLLM API server version v?([\w.+-]{1,60})"),
             lambda mm, line, rank: (c.start(), c.setting("version", mm.group(1), fragment=line))),
        # 0.27+ prints an ASCII-art banner whose last row carries the version
        Rule("\u2584", re.compile(r"\u2584.{0,200}?\bversion v?(\d{1,3}\.\d{1,3}[\w.+-]{0,56})"),
             lambda mm, line, rank: (c.start(), c.setting("version", mm.group(1), fragment=line))),
        Rule("non-default args:", re.compile(r"non-default args: \{"),
             lambda mm, line, rank: (c.start(), c.setting("non_default_args_listed", True),
                                     _settings_from(line, c, [_DICT]))),
        Rule("Namespace(", re.compile(r"args: Namespace\("),
             lambda mm, line, rank: (c.start(), _settings_from(line, c, [_EQ]))),
        Rule("vllm serve", _SERVE, lambda mm, line, rank: _serve(c, mm, line)),
        Rule("vllm.entrypoints", re.compile(r"-m vllm\.entrypoints\.\S+"),
             lambda mm, line, rank: (c.start(), _settings_from(line, c, [_CLI]))),
    ]
    return rules


def _header(c, m, line):
    c.start()
    if m.group(1):
        c.setting("engine", m.group(1).lower())
    c.setting("version", m.group(2))
    if m.group(2) and not m.group(1):
        c.setting("engine_from_header", "v0")
    c.run.add_evidence(line[: m.end()])
    _settings_from(line[m.end():], c, [_EQ])


def _serve(c, m, line):
    c.start()
    c.setting("model", m.group(1))
    c.run.add_evidence(line)
    _settings_from(line[m.end():], c, [_CLI])


_V1_KEYS = ("kv.available", "kv_tokens", "weights.actual", "activation.actual", "cuda_graph.actual",
            "consumed.actual", "weights.debug", "blocks.v1", "cuda_graph.pool", "kv.in_use")
_V0_KEYS = ("weights.profile", "kv.profile", "peak_torch", "blocks.v0")


_V1_SOURCES = re.compile(r"gpu_model_runner\.py|gpu_worker\.py|kv_cache_utils\.py|\(EngineCore|\(VllmWorker rank=|"
                         r"\(Worker_TP")
_V0_SOURCES = re.compile(r"[\s\[](?:worker|model_runner|executor_base|gpu_executor|llm_engine)\.py:|"
                         r"\(VllmWorkerProcess ")


def _engine(run):
    """V0 or V1, from the header or else from what only one engine prints."""
    s = run.settings
    if s.get("engine"):
        return s["engine"]
    text = "\n".join(run.evidence)
    if any(k in run.items for k in _V1_KEYS) or _V1_SOURCES.search(text):
        return "v1"
    if any(k in run.items for k in _V0_KEYS) or s.get("engine_from_header") or _V0_SOURCES.search(text):
        return "v0"
    return None


def _parts(run):
    """Turn a vLLM run into profile parts (None when nothing measurable is left)."""
    measured, notes, flags = {}, [], []

    def put(name, *keys, note=None):
        item = run.get(*keys)
        if item is None:
            return None
        measured_field(measured, name, item.value, item.unit)
        if item.label == "GB":
            notes.append(f"{name}: printed 'GB' by vLLM, which computes bytes / 2**30: recorded as GiB")
        return item

    put("weights", "weights.profile", "weights.loading", "weights.debug", "weights.actual")
    nt = put("non_torch", "non_torch.profile", "non_torch.actual", "non_torch.debug")
    if nt is not None and run.get("non_torch.profile", "non_torch.actual") is None:
        notes.append("non_torch: V1 DEBUG 'non-torch forward increase' (increase during the profiling "
                     "forward only, not the CUDA context)")
    put("activation_peak", "activation.profile", "activation.actual", "activation.debug")
    if put("peak_torch", "peak_torch") is not None:
        notes.append("peak_torch: v0.6.4-era profiler peak, includes the weights")
    kv = put("kv_cache", "kv.profile", "kv.available", "kv.in_use")
    if kv is not None and run.get("kv.profile", "kv.available") is None:
        notes.append("kv_cache: 'Current kv cache memory in use' (no 'Available KV cache memory' line)")
    put("cuda_graph", "cuda_graph.actual", "cuda_graph.pool", "cuda_graph.capture")
    put("non_kv_total", "non_kv_total.debug")
    tokens = run.get("kv_tokens", "kv_tokens.error")
    if tokens is not None:
        measured["kv_cache_tokens"] = tokens.value
    blocks = run.get("blocks.v0", "blocks.v1")
    if blocks is not None:
        measured["num_gpu_blocks"] = blocks.value
    consumed = run.get("consumed.actual")
    if consumed is not None:
        notes.append(f"weights + non-torch printed together: {fmt(consumed.value)} GiB (not split)")
    if not measured:
        return None
    s = run.settings
    model = s.get("model")
    graph_estimate = _cuda_graph_estimate(s)
    if graph_estimate is not None:
        notes.append(graph_estimate[1])
    if s.get("non_default_args_listed") and s.get("gpu_memory_utilization") is None:
        # the API server lists every argument that differs from its default (vllm/entrypoints/
        # utils.py, 0.10+): a utilization it does not list is the default of that version
        # (0.9; 0.92 from 0.20; 1.0 from 0.34 with the extensible KV cache)
        version = s.get("version")
        u = vllm_default_utilization(version) if version else 0.9
        s["gpu_memory_utilization"] = u
        notes.append(f"gpu_memory_utilization {u}: vLLM's default "
                     + (f"for version {version}" if version else "of 0.10-0.19 (version not printed)")
                     + " (CacheConfig); the printed 'non-default args' do not list it")
    return {
        "measured": measured,
        "notes": notes,
        "flags": flags,
        "framework_version": s.get("version"),
        "engine": _engine(run),
        "model": {"name_as_given": model},
        "gpu": {"memory_gib": s.get("gpu_memory_gib"), "name": s.get("gpu_name")},
        "parallel": {"tp": s.get("tensor_parallel_size"), "pp": s.get("pipeline_parallel_size")},
        "workload": {"max_model_len": s.get("max_model_len"), "max_num_seqs": s.get("max_num_seqs"),
                     "max_num_batched_tokens": s.get("max_num_batched_tokens")},
        "precision": {"dtype": s.get("dtype"), "quantization": s.get("quantization"),
                      "kv_cache_dtype": s.get("kv_cache_dtype")},
        "engine_settings": {"gpu_memory_utilization": s.get("gpu_memory_utilization"),
                            "enforce_eager": s.get("enforce_eager"), "block_size": s.get("block_size"),
                            "language_model_only": s.get("language_model_only"),
                            "async_scheduling": s.get("async_scheduling"), "model_runner": s.get("model_runner"),
                            "compile_cache": s.get("compile_cache"),
                            "cuda_graph_estimate_gib": graph_estimate[0] if graph_estimate else None},
        "kv_cache_mode": "pool",
    }


def _cuda_graph_estimate(settings):
    """vLLM's own CUDA-graph memory estimate (GiB) and a note saying where it came from, or None.

    From the "equivalent to --gpu-memory-utilization=U' without CUDA graph memory profiling"
    line with the device total (vllm/v1/worker/gpu_worker.py 0.21-0.34 prints
    ``round(u - estimate / total, 4)``: the estimate to about 0.0001 x total), else from the
    "CUDA graph pool memory: ... (estimated)" line (to 0.01 GiB).
    """
    u, u_without = settings.get("gpu_memory_utilization"), settings.get("utilization_without_graphs")
    total = settings.get("gpu_memory_gib")
    if u is not None and u_without is not None and total and u >= u_without:
        est = round((u - u_without) * total, 4)
        return est, (f"cuda_graph_estimate_gib {est}: ({u} - {u_without}) x {total} GiB, from vLLM's 'equivalent "
                     "to --gpu-memory-utilization' line (the CUDA-graph estimate it subtracted from the pool)")
    printed = settings.get("cuda_graph_estimate_printed")
    if printed is not None:
        return printed, (f"cuda_graph_estimate_gib {printed}: vLLM's 'CUDA graph pool memory ... (estimated)' "
                         "line")
    return None


_CONT = re.compile(r"^(?:[a-z0-9,)}\]='\"]| [a-z_])")
#: a line that opens a new log record however it starts (a launcher's "vLLM STDOUT: INFO 02-13
#: ..." prefix starts with a lower-case letter but is not the middle of a wrapped line)
_NEW_RECORD = re.compile(r"^.{0,60}?\b(?:INFO|WARNING|WARN|ERROR|DEBUG)\b\s+\d\d-\d\d ")


def _unwrap(lines):
    """Re-join settings lines that a terminal or editor hard-wrapped.

    Only the lines following an engine header / args line are candidates, and only
    when they start like the middle of a token (lower case, digit, punctuation):
    wrapping inserts nothing, so joining without a separator restores the line.
    """
    pending = None
    for line in lines:
        if pending is not None:
            if _CONT.match(line) and not _NEW_RECORD.match(line) and len(pending) + len(line) <= MAX_LINE_CHARS:
                pending += line
                continue
            yield pending
            pending = None
        if ("config:" in line or "args:" in line) and _SETTINGS_LINE.search(line):
            pending = line
        else:
            yield line
    if pending is not None:
        yield pending


def _join_continued(lines):
    """Join shell commands continued with a trailing backslash (``vllm serve X \\`` then
    ``    --tensor-parallel-size 4 \\`` ...) into one line, so their flags are read."""
    pending = None
    for line in lines:
        stripped = line.rstrip()
        if pending is not None:
            pending += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\") or len(pending) > MAX_LINE_CHARS:
                yield pending
                pending = None
            continue
        if stripped.endswith("\\"):
            pending = stripped.rstrip("\\").rstrip()
        else:
            yield line
    if pending is not None:
        yield pending


def parse(lines, *, version=None):
    """Parse vLLM log lines.

    Parameters
    ----------
    lines : iterable of str
    version : str, optional
        The vLLM version where the log does not print it (a docker image tag stated by the
        source); the printed version wins. It selects the version's defaults, e.g. the
        ``gpu_memory_utilization`` that a "non-default args" line leaves out.

    Returns
    -------
    list of (Run, dict)
        One entry per engine start with a measurement: the run and its profile parts.
    """
    c = Collector()
    scan(_unwrap(_join_continued(lines)), _rules(c), on_line=_rank)
    out = []
    for run in c.finish():
        if version and not run.settings.get("version"):
            run.settings["version"] = str(version)
            run.add_evidence(f"[version] {version} (stated by the source, not printed in the lines)")
        parts = _parts(run)
        if parts is not None:
            out.append((run, parts))
    return out
