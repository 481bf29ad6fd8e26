"""TensorRT-LLM start-up logs -> profiles.

TRT-engine runtime (``[TensorRT-LLM][INFO] ...``):

* ``Loaded engine size: X MiB`` -> weights (the engine file is the weights);
* ``[MemUsageChange] Allocated X MiB for execution context memory`` -> compute buffer
  (TensorRT's activation memory, fixed at engine build);
* ``[MemUsageChange] Allocated X MB/GB GPU memory for runtime buffers`` and ``... for
  decoder`` -> other (printed by ``MemoryCounters::bytesToString``, which divides by
  1024, so ``MB`` is MiB and ``GB`` is GiB);
* ``[MemUsageChange] Allocated X GiB for max tokens in paged KV cache (N)`` -> KV pool and
  its tokens (the last such line of a start is the final pool);
* ``Memory usage when calculating max tokens in paged kv cache: total: X GiB`` -> GPU
  memory; ``Number of blocks in KV cache primary pool``, ``Number of tokens per block``,
  ``TRTGptModel maxBatchSize / maxSequenceLen / maxNumTokens``.

PyTorch backend (``[TRT-LLM] [I] ...``): ``Memory used after loading model weights
(inside torch)`` -> weights, ``Memory dynamically allocated during inference (inside
torch)`` -> activation peak, ``Memory used outside torch (e.g., NCCL and CUDA graphs)`` ->
non-torch, ``Peak memory during memory usage profiling (torch + non-torch)`` -> peak
total, ``device total memory`` -> GPU memory, ``max_seq_len=, max_num_tokens=,
max_batch_size=``.
"""

from __future__ import annotations

import re

from ._common import (
    NUM,
    Collector,
    Rule,
    measure_rule,
    measured_field,
    parse_decimal,
    parse_int,
    scan,
    setting_rule,
    sum_items,
    to_float,
)

FRAMEWORK = "trtllm"

MARKERS = {"[TensorRT-LLM]": 5, "[TRT-LLM]": 5, "MemUsageChange": 5, "paged KV cache": 3, "TensorRT": 2}

_BINARY = {"KB": "kib", "MB": "mib", "GB": "gib", "MiB": "mib", "GiB": "gib"}
_RANK = re.compile(r"^\s*\[(\d{1,4}),(\d{1,4})\]<std(?:out|err)>:|\[RANK (\d{1,4})\]")


def _rank(line):
    m = _RANK.search(line)
    return m.group(0) if m else ""


def _rules(c):
    m = lambda lit, pat, key, **kw: measure_rule(c, lit, pat, key, **kw)  # noqa: E731
    s = lambda lit, pat, key, fn=parse_int, **kw: setting_rule(c, lit, pat, key, fn, **kw)  # noqa: E731
    gib = {"unit": "gib"}
    version = re.compile(r"(?:TensorRT-LLM version: |Engine version )v?([\w.+-]{1,60})")
    return [
        Rule("version", version, lambda mm, line, _: (c.start(), c.setting("version", mm.group(1), fragment=line))),
        m("Loaded engine size", rf"Loaded engine size: {NUM} MiB", "weights.engine", unit="mib"),
        m("execution context memory", rf"Allocated {NUM} (MiB|GiB) for execution context memory", "exec_context",
          unit_group=2, units=_BINARY),
        m("for runtime buffers", rf"Allocated {NUM} (KB|MB|GB) GPU memory for runtime buffers", "runtime_buffers",
          unit_group=2, units=_BINARY),
        m("for decoder", rf"Allocated {NUM} (KB|MB|GB) GPU memory for decoder", "decoder", unit_group=2,
          units=_BINARY),
        m("paged KV cache", rf"Allocated {NUM} GiB for max tokens in paged KV cache", "kv", mode="last", **gib),
        m("paged KV cache", rf"Allocated {NUM} GiB for max tokens in paged KV cache \({NUM}\)", "kv_tokens",
          group=2, integer=True, mode="last"),
        m("primary pool", rf"Number of blocks in KV cache primary pool: {NUM}", "blocks", integer=True, mode="last"),
        # runtimes before the [MemUsageChange] KV line (0.8-0.9, gptManager): the pool in bytes and tokens
        m("for k/v cache", rf"Allocate {NUM} bytes for k/v cache", "kv", mode="last", unit="bytes"),
        m("tokens in paged KV cache", rf"Using {NUM} (?:total )?tokens in paged KV cache", "kv_tokens", integer=True,
          mode="last"),
        m("(inside torch)", rf"Memory used after loading model weights \(inside torch\) in memory usage profiling: "
                            rf"{NUM} GiB", "weights.torch", **gib),
        m("during inference", rf"Memory dynamically allocated during inference \(inside torch\) in memory usage "
                              rf"profiling: {NUM} GiB", "activation", **gib),
        m("outside torch (e.g.", rf"Memory used outside torch \(e\.g\., NCCL and CUDA graphs\) in memory usage "
                                 rf"profiling: {NUM} GiB", "non_torch", **gib),
        m("Peak memory during memory usage", rf"Peak memory during memory usage profiling \(torch \+ non-torch\): "
                                             rf"{NUM} GiB", "peak", **gib),
        s("paged kv cache: total", rf"paged kv cache: total: {NUM} GiB", "gpu_memory_gib",
          lambda r: to_float(parse_decimal(r))),
        s("device total memory", rf"device total memory {NUM} GiB", "gpu_memory_gib",
          lambda r: to_float(parse_decimal(r))),
        s("fraction is set", rf"fraction is set {NUM}", "free_gpu_memory_fraction", lambda r: to_float(parse_decimal(r))),
        s("tokens per block", rf"Number of tokens per block: {NUM}", "tokens_per_block"),
        s("maxBatchSize", rf"TRTGptModel maxBatchSize: {NUM}", "max_batch_size"),
        s("maxSequenceLen", rf"TRTGptModel maxSequenceLen: {NUM}", "max_seq_len"),
        s("maxNumTokens", rf"TRTGptModel maxNumTokens: {NUM}", "max_num_tokens"),
        s("max_seq_len=", rf"\bmax_seq_len={NUM}", "max_seq_len", overwrite=True),
        s("max_num_tokens=", rf"\bmax_num_tokens={NUM}", "max_num_tokens", overwrite=True),
        s("max_batch_size=", rf"\bmax_batch_size={NUM}", "max_batch_size", overwrite=True),
    ]


def _parts(run):
    measured, notes = {}, []
    for key, name in (("weights.torch", "weights"), ("weights.engine", "weights"), ("exec_context", "compute_buffer"),
                      ("activation", "activation_peak"), ("non_torch", "non_torch"), ("peak", "peak_total"),
                      ("kv", "kv_cache")):
        item = run.get(key)
        if item is not None and not any(k.startswith(name + "_") for k in measured):
            measured_field(measured, name, item.value, item.unit)
    other = [run.items[k] for k in ("runtime_buffers", "decoder") if k in run.items]
    if other:
        units = {it.unit for it in other}
        unit = units.pop() if len(units) == 1 and "kib" not in units else "mib"  # the schema has no KiB
        total, addends = sum_items(other, unit)
        measured_field(measured, "other", total, unit)
        notes.append(f"sum: other_{unit} = {addends} (runtime buffers + decoder; TensorRT-LLM's "
                     "'KB'/'MB'/'GB' are 2**10/2**20/2**30 bytes)")
    if "weights.engine" in run.items:
        notes.append("weights: TensorRT engine size; compute_buffer: TensorRT execution-context (activation) memory")
    if "non_torch" in run.items:
        notes.append("non_torch: TRT-LLM PyTorch backend 'used outside torch (NCCL and CUDA graphs)'")
    for key in ("kv_tokens", "blocks"):
        item = run.get(key)
        if item is not None:
            measured["kv_cache_tokens" if key == "kv_tokens" else "num_gpu_blocks"] = item.value
    if not measured:
        return None
    s = run.settings
    return {
        "measured": measured,
        "notes": notes,
        "framework_version": s.get("version"),
        "model": {"name_as_given": None},
        "gpu": {"memory_gib": s.get("gpu_memory_gib")},
        "workload": {"max_model_len": s.get("max_seq_len"), "max_num_seqs": s.get("max_batch_size"),
                     "max_num_batched_tokens": s.get("max_num_tokens")},
        "engine_settings": {k: s.get(k) for k in ("tokens_per_block", "free_gpu_memory_fraction")},
        "kv_cache_mode": "pool",
    }


def parse(lines):
    """Parse TensorRT-LLM log lines into ``[(Run, parts), ...]``, one per executor start."""
    c = Collector()
    scan(lines, _rules(c), on_line=_rank)
    return [(run, parts) for run in c.finish() if (parts := _parts(run)) is not None]
