"""Hugging Face TGI (text-generation-inference) logs -> profiles.

TGI prints little memory: after warmup the router logs ``Setting max batch total tokens
to N`` (the KV pool in tokens, all shards together) and newer versions ``KV-cache blocks:
N, size: S``. A warmup that runs out of memory prints torch's ``Currently allocated :
X GiB`` (kept as ``peak_allocated``, out of fits: it is a failed start). Settings come
from the launcher (``Args { model_id: ..., num_shard: Some(2), ... }``, ``Sharding model
on N processes``, ``Default `max_total_tokens` to N``, ``Default
`max_batch_prefill_tokens` to N``).
"""

from __future__ import annotations

import re

from ._common import (
    NUM,
    Collector,
    Rule,
    as_fraction,
    measure_rule,
    measured_field,
    parse_int,
    scan,
    setting_rule,
)

FRAMEWORK = "tgi"

MARKERS = {"text_generation_launcher": 5, "text_generation_router": 5, "Setting max batch total tokens": 5,
           "text-generation-inference": 3}

_ARGS = re.compile(r"\b(model_id|num_shard|quantize|dtype|kv_cache_dtype|max_total_tokens|max_batch_prefill_tokens|"
                   r"cuda_memory_fraction): (?:Some\(\s*)?(\"[^\"]{0,300}\"|[\w.]{1,60})")
#: Lines of one pretty-printed ``Args {`` block joined at most (TGI 2.x/3.x print one field per line).
_MAX_ARGS_LINES = 400
_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}


def _args(c, line):
    c.start()
    found = []
    for m in _ARGS.finditer(line):
        key, raw = m.group(1), m.group(2).strip('"')
        if raw == "None":
            continue
        found.append(f"{key}={raw}")
        if key in ("num_shard", "max_total_tokens", "max_batch_prefill_tokens"):
            c.setting(key, parse_int(raw))
        elif key == "cuda_memory_fraction":
            c.setting(key, as_fraction(raw))
        elif key == "dtype":
            c.setting(key, _DTYPES.get(raw.lower()))
        else:
            c.setting(key, raw.lower() if key != "model_id" else raw)
    if found:
        c.run.add_evidence("[settings] " + ", ".join(found))


def _rules(c):
    m = lambda lit, pat, key, **kw: measure_rule(c, lit, pat, key, **kw)  # noqa: E731
    s = lambda lit, pat, key, fn=parse_int, **kw: setting_rule(c, lit, pat, key, fn, **kw)  # noqa: E731
    return [
        Rule("Args {", re.compile(r"Args \{"), lambda mm, line, _: _args(c, line)),
        m("Setting max batch total tokens", rf"Setting max batch total tokens to {NUM}", "kv_tokens", integer=True),
        m("KV-cache blocks", rf"KV-cache blocks: {NUM}", "blocks", integer=True),
        s("KV-cache blocks", rf"KV-cache blocks: {NUM}, size: {NUM}", "block_size", group=2),
        m("Currently allocated", rf"Currently allocated\s*:\s*{NUM} GiB", "oom_allocated", unit="gib"),
        s("Sharding model on", rf"Sharding model on {NUM} processes", "num_shard", marker=True),
        s("Default `max_total_tokens`", rf"Default `max_total_tokens` to {NUM}", "max_total_tokens"),
        s("Default `max_batch_prefill_tokens`", rf"Default `max_batch_prefill_tokens` to {NUM}",
          "max_batch_prefill_tokens"),
        s("Using config", r"Using config Some\((\w{1,60})\)", "architecture", str),
    ]


def _parts(run):
    measured, notes, flags = {}, [], []
    out = {}
    tokens = run.get("kv_tokens")
    if tokens is not None:
        measured["kv_cache_tokens"] = tokens.value
        notes.append("kv_cache_tokens: TGI's 'max batch total tokens' (KV pool of all shards, in tokens)")
    blocks = run.get("blocks")
    if blocks is not None:
        measured["num_gpu_blocks"] = blocks.value
    oom = run.get("oom_allocated")
    if oom is not None:
        measured_field(measured, "peak_allocated", oom.value, "gib")
        flags.append("out_of_memory")
        out = {"use_in_fit": False,
               "exclude_reason": "warmup ran out of memory: peak_allocated is torch's allocation at the failure, "
                                 "a lower bound of what the start needed, not a working configuration"}
    if not measured:
        return None
    s = run.settings
    return {
        "measured": measured,
        "notes": notes,
        "flags": flags,
        "model": {"name_as_given": s.get("model_id")},
        "parallel": {"tp": s.get("num_shard")},
        "gpu": {"count": s.get("num_shard")},  # TGI runs one shard process per GPU
        "workload": {"max_model_len": s.get("max_total_tokens"),
                     "max_num_batched_tokens": s.get("max_batch_prefill_tokens")},
        "precision": {"dtype": s.get("dtype"), "quantization": s.get("quantize"),
                      "kv_cache_dtype": s.get("kv_cache_dtype")},
        "engine_settings": {k: s.get(k) for k in ("cuda_memory_fraction", "block_size", "architecture")},
        "kv_cache_mode": "pool",
        **out,
    }


def _join_args_blocks(lines):
    """Yield the lines with each pretty-printed launcher block (a line ending in ``Args {``, its
    fields one per line, then a line ``}``) joined into one line, as older TGI prints it."""
    block = None
    for line in lines:
        if block is None:
            if line.rstrip().endswith("Args {"):
                block = [line.rstrip()]
            else:
                yield line
            continue
        block.append(line.strip())
        if line.strip() == "}" or len(block) > _MAX_ARGS_LINES:
            yield " ".join(block)
            block = None
    if block is not None:
        yield " ".join(block)


def parse(lines):
    """Parse TGI log lines into ``[(Run, parts), ...]``, one per launch."""
    c = Collector()
    scan(_join_args_blocks(lines), _rules(c))
    return [(run, parts) for run in c.finish() if (parts := _parts(run)) is not None]
