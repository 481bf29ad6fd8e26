"""SGLang start-up logs -> profiles.

Lines read (``[2026-02-04 11:30:29 TP0] ...``; the ``TPn``/``DPn``/``PPn`` tags are the
rank):

* ``Load weight begin. avail mem=X GB`` -> free_before_load (free device memory after CUDA and
  distributed init: ``model_runner.py`` reads it with ``torch.cuda.mem_get_info``);
* ``Load weight end. ... mem usage=X GB`` -> weights;
* ``KV Cache is allocated. [dtype: torch.X, ]#tokens: N, K size: X GB, V size: Y GB``
  (or ``KV size: X GB`` for MLA) -> KV pool and its tokens (several pools of a hybrid
  model add up);
* ``Mamba Cache is allocated. ... conv_state size: X GB, ssm_state size: Y GB`` -> other;
* ``Capture cuda graph end. ... mem usage=X GB`` (and from 0.5.18 ``Capture target prefill /
  decode CUDA graph end``, ``Capture piecewise CUDA graph end``, summed) -> CUDA graphs;
* ``max_total_num_tokens=N, chunked_prefill_size=..., max_prefill_tokens=...,
  max_running_requests=..., context_len=...`` and ``server_args`` / ``ServerArgs(...)``
  (``tp_size``, ``mem_fraction_static``, ``model_path``, ``dtype``, ``kv_cache_dtype``,
  ``quantization``, ``context_length``), or the ``python -m sglang.launch_server --flag value``
  command (a command written over several lines ending in ``\\`` is read as one line).

SGLang prints "GB" but divides by 2**30 (``get_available_gpu_memory`` and the KV-pool
log), so its values are recorded as GiB.
"""

from __future__ import annotations

import re

from ._common import (
    NUM,
    Collector,
    Rule,
    as_fraction,
    clean_value,
    kv_pattern,
    measure_rule,
    measured_field,
    parse_decimal,
    parse_int,
    scan,
    setting_rule,
    sum_items,
)

FRAMEWORK = "sglang"

MARKERS = {
    "sglang": 1, "Load weight end": 5, "KV Cache is allocated": 5, "Memory pool end": 5,
    "max_total_num_tokens": 5, "Capture cuda graph": 3, "mem_fraction_static": 5,
}

_RANK = re.compile(r"^\s*\[(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ?)?((?:[A-Z]{2,3}\d{1,4} ?){0,4})\]")
_ARGS = kv_pattern(("tp_size", "pp_size", "dp_size", "mem_fraction_static", "model_path", "served_model_name",
                    "dtype", "kv_cache_dtype", "quantization", "context_length", "cuda_graph_max_bs",
                    "page_size", "disable_cuda_graph", "max_total_tokens"), "eq")
_CLI = kv_pattern(("tp_size", "tp", "model_path", "model", "mem_fraction_static", "dtype", "kv_cache_dtype",
                   "quantization", "context_length"), "cli")
_GIB = {"unit": "gib"}


def _rank(line):
    m = _RANK.match(line)
    return m.group(1).strip() if m else ""


def _primary(rank):
    """True for the first rank (``""``, ``TP0``, ``DP0 TP0``, ...): only it opens runs."""
    return not re.search(r"[1-9]", rank)


_KV_SIZES = (("kv_k", re.compile(rf"\bK size: {NUM} ?GB")), ("kv_v", re.compile(rf"\bV size: {NUM} ?GB")),
             ("kv_kv", re.compile(rf"\bKV size: {NUM} ?GB")))
_KV_TOKENS = re.compile(rf"#tokens: {NUM}")
_KV_DTYPE = re.compile(r"dtype: torch\.(\w{1,20})")


def _kv(c, m, line, rank):
    for key, pattern in _KV_SIZES:
        mm = pattern.search(line)
        if mm:
            c.add(key, parse_decimal(mm.group(1)), "gib", rank=rank, line=line, mode="sum")
    tokens = _KV_TOKENS.search(line)
    if tokens:
        c.add("kv_tokens", parse_int(tokens.group(1)), None, rank=rank, line=line, mode="sum")
    dtype = _KV_DTYPE.search(line)
    if dtype:
        c.setting("kv_cache_dtype", dtype.group(1))


def _args(c, line, rank, pattern):
    if _primary(rank):
        c.start()
    found = []
    for m in pattern.finditer(line):
        key, raw = m.group(1).replace("-", "_"), clean_value(m.group(2))
        found.append(f"{key}={raw}")
        if key in ("tp_size", "tp", "pp_size", "dp_size", "context_length"):
            c.setting({"tp": "tp_size"}.get(key, key), parse_int(raw) if raw else None)
        elif key == "mem_fraction_static":
            c.setting(key, as_fraction(raw))
        elif key in ("model_path", "model", "served_model_name"):
            c.setting({"model": "model_path"}.get(key, key), raw)
        elif key in ("dtype", "kv_cache_dtype", "quantization") and raw not in (None, "auto"):
            c.setting(key, raw)
        elif key in ("cuda_graph_max_bs", "page_size", "max_total_tokens") and raw not in (None, "None"):
            c.setting(key, parse_int(raw))
        elif key == "disable_cuda_graph" and raw in ("True", "False"):
            c.setting(key, raw == "True")
    if found:
        c.run.add_evidence("[settings] " + ", ".join(found))


def _rules(c):
    m = lambda lit, pat, key, **kw: measure_rule(c, lit, pat, key, **kw)  # noqa: E731
    s = lambda lit, pat, key, fn=parse_int, **kw: setting_rule(c, lit, pat, key, fn, **kw)  # noqa: E731
    return [
        Rule("Load weight begin", re.compile(r"Load weight begin"),
             lambda mm, line, rank: c.start() if _primary(rank) else None),
        Rule("server_args", re.compile(r"server_args"), lambda mm, line, rank: _args(c, line, rank, _ARGS)),
        Rule("sglang.launch_server", re.compile(r"sglang\.launch_server"),
             lambda mm, line, rank: _args(c, line, rank, _CLI)),
        Rule("Load weight begin", re.compile(rf"Load weight begin\..{{0,40}}?avail mem={NUM} ?GB"),
             lambda mm, line, rank: c.add("free_before_load", parse_decimal(mm.group(1)), "gib", rank=rank,
                                          line=line) if _primary(rank) else None),
        m("Load weight end", rf"Load weight end\..{{0,300}}?mem usage={NUM} ?GB", "weights", **_GIB),
        Rule("KV Cache is allocated", re.compile(r"KV Cache is allocated"),
             lambda mm, line, rank: _kv(c, mm, line, rank)),
        m("conv_state size", rf"conv_state size: {NUM} ?GB", "mamba_conv", mode="sum", **_GIB),
        m("ssm_state size", rf"ssm_state size: {NUM} ?GB", "mamba_ssm", mode="sum", **_GIB),
        # one line per captured graph set: "Capture cuda graph end" (to 0.5.x), "Capture piecewise CUDA
        # graph end", and from 0.5.18 "Capture target prefill/decode CUDA graph end": summed
        Rule("raph end", re.compile(rf"Capture (?:target \w{{1,20}} |piecewise )?(?:cuda|CUDA) graph end\..{{0,200}}?"
                                    rf"mem usage={NUM} ?GB"),
             lambda mm, line, rank: c.add("cuda_graph", parse_decimal(mm.group(1)), "gib", rank=rank, line=line,
                                          mode="sum")),
        m("max_total_num_tokens=", rf"max_total_num_tokens={NUM}", "kv_tokens.summary", integer=True),
        s("Using KV cache dtype", r"Using KV cache dtype: torch\.(\w{1,20})", "kv_cache_dtype", str),
        s("context_len=", rf"\bcontext_len={NUM}", "context_len"),
        s("max_running_requests=", rf"max_running_requests={NUM}", "max_running_requests"),
        s("chunked_prefill_size=", rf"chunked_prefill_size={NUM}", "chunked_prefill_size"),
        s("max_prefill_tokens=", rf"max_prefill_tokens={NUM}", "max_prefill_tokens"),
        s("Load weight end", r"Load weight end\..{0,200}?dtype=torch\.(\w{1,20})", "dtype", str),
        s("Load weight end", r"Load weight end\..{0,200}?type=(\w{1,80})", "architecture", str),
    ]


def _parts(run):
    measured, notes = {}, []
    for key, name in (("weights", "weights"), ("free_before_load", "free_before_load")):
        item = run.get(key)
        if item is not None:
            measured_field(measured, name, item.value, "gib")
    graphs = run.sums.get("cuda_graph", [])
    if graphs:
        total, addends = sum_items(graphs, "gib")
        measured_field(measured, "cuda_graph", total, "gib")
        if len(graphs) > 1:
            notes.append(f"sum: cuda_graph_gib = {addends} (one capture per graph set)")
    kv_items = [it for key in ("kv_k", "kv_v", "kv_kv") for it in run.sums.get(key, [])]
    if kv_items:
        total, addends = sum_items(kv_items, "gib")
        measured_field(measured, "kv_cache", total, "gib")
        if len(kv_items) > 1:
            notes.append(f"sum: kv_cache_gib = {addends} (K and V sizes of every KV pool)")
    mamba = run.sums.get("mamba_conv", []) + run.sums.get("mamba_ssm", [])
    if mamba:
        total, addends = sum_items(mamba, "gib")
        measured_field(measured, "other", total, "gib")
        notes.append("other: Mamba conv_state + ssm_state cache" + (f"; sum: other_gib = {addends}"
                                                                     if len(mamba) > 1 else ""))
    tokens = run.sums.get("kv_tokens", [])
    if len(tokens) == 1:
        measured["kv_cache_tokens"] = tokens[0].value
    elif len(tokens) > 1:
        notes.append("several KV pools with their own token counts: kv_cache_tokens not recorded")
    elif run.get("kv_tokens.summary") is not None:
        measured["kv_cache_tokens"] = run.get("kv_tokens.summary").value
    if not measured:
        return None
    notes.append("SGLang prints 'GB' but computes bytes / 2**30: recorded as GiB")
    s = run.settings
    return {
        "measured": measured,
        "notes": notes,
        "model": {"name_as_given": s.get("model_path") or s.get("served_model_name")},
        "parallel": {"tp": s.get("tp_size"), "pp": s.get("pp_size")},
        "workload": {"max_model_len": s.get("context_len") or s.get("context_length")},
        "precision": {"dtype": s.get("dtype"), "kv_cache_dtype": s.get("kv_cache_dtype"),
                      "quantization": s.get("quantization")},
        "engine_settings": {k: s.get(k) for k in ("mem_fraction_static", "max_running_requests",
                                                  "chunked_prefill_size", "max_prefill_tokens", "architecture",
                                                  "cuda_graph_max_bs", "page_size", "disable_cuda_graph",
                                                  "max_total_tokens")},
        "kv_cache_mode": "pool",
    }


_CONTINUED = re.compile(r"\\\s*$")
_MAX_CONTINUATIONS = 64


def _join_commands(lines):
    """Yield the lines with a ``sglang.launch_server`` command that a source wrote over several
    lines (each ending in a backslash) joined into one line, so that its ``--flag value`` settings
    are read; every other line passes unchanged."""
    it = iter(lines)
    for line in it:
        if "sglang.launch_server" not in line or not _CONTINUED.search(line):
            yield line
            continue
        parts = [_CONTINUED.sub("", line)]
        for _ in range(_MAX_CONTINUATIONS):
            nxt = next(it, None)
            if nxt is None:
                break
            parts.append(_CONTINUED.sub("", nxt).strip())
            if not _CONTINUED.search(nxt):
                break
        yield " ".join(p for p in parts if p)


def parse(lines):
    """Parse SGLang log lines into ``[(Run, parts), ...]``, one per server start."""
    c = Collector()
    scan(_join_commands(lines), _rules(c), on_line=_rank)
    return [(run, parts) for run in c.finish() if (parts := _parts(run)) is not None]
