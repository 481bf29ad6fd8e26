"""Convert the harvested public measurements into schema-v1 profiles.

Reads ``vllm.jsonl``, ``other_frameworks.jsonl`` and ``sweeps.jsonl`` (see the README in
that folder) and writes one profile per measured run to
``<out>/<framework>/<profile_id>.json``::

    python -m fitting.public_logs --src ../shared/data/public-logs --out profiles/public

Rules (the reviewed tables are in :mod:`fitting.data.public_logs_rules`):

* every figure is kept exactly as printed, its unit in the measured field's suffix
  (``weights_gib: 14.96``, ``peak_total_mb: 29152.98``, llama.cpp ``kv_cache_mib: 3072.0``);
  the printed unit, the base assumed and why are stated in ``measurement_notes``;
* every source record becomes exactly one profile, except the optimum-benchmark
  Dec-2023 sweep, whose ``_alloc``/``_resv``/``_used`` series of one run and phase are
  merged into one profile with ``peak_allocated``/``peak_reserved``/``peak_total``;
  ``provenance.source_lines`` lists the source lines of every profile;
* nothing is dropped or "fixed": records with an unnamed model, an unverified unit, a
  patched or forked build, unified memory, non-NVIDIA hardware, ... are kept with
  ``use_in_fit: false``, an ``exclude_reason`` and ``flags``;
* output is deterministic: stable content-hash profile ids, fixed key order; files of
  earlier runs that are no longer produced are removed;
* bad input never aborts the conversion: a source line that is not a JSON object, a
  record the conversion rules cannot read, or a profile that fails schema validation
  (e.g. a negative "estimate minus actual" figure) is left out and listed with its
  reason (:class:`Rejected`); every other record is converted;
* the output folder is replaced as a whole: the profiles are written to a staging folder
  beside it, which is then renamed into place, so an error never leaves a half-written
  folder. Files of other converters in it (the harvested logs of
  :mod:`fitting.ingest.harvest`, anything under ``logs/``) are carried over unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from fitting.data import public_logs_rules as R
from fitting.data.profiles import FRAMEWORKS, ProfileError, validate_profile, write_profile
from fitting.version import __version__

__all__ = ["UNIT_BASE_REASON", "CONVERTER", "SOURCE_FILES", "Conversion", "Rejected", "SourceRecord", "convert",
           "convert_all", "is_converter_output", "main", "read_sources", "write_profiles"]

SOURCE_FILES = ("vllm.jsonl", "other_frameworks.jsonl", "sweeps.jsonl")
#: How ``provenance.source_file`` names a source (machine-independent).
SOURCE_PREFIX = "shared/data/public-logs/"
CONVERTER = f"fitting.public_logs {__version__}"  # the CLI that writes them


@dataclass(frozen=True)
class SourceRecord:
    """One line of a source file."""

    file: str
    line: int  # 1-based
    data: dict
    sha256: str


@dataclass(frozen=True)
class Rejected:
    """A source line left out of the conversion, with the reason."""

    file: str
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Conversion:
    """Result of :func:`convert_all`: the profiles and the source lines left out."""

    profiles: list
    rejected: list


def read_sources(src, rejected: list | None = None) -> list[SourceRecord]:
    """Read the three source files.

    Parameters
    ----------
    src : str or Path
        Folder holding ``vllm.jsonl``, ``other_frameworks.jsonl``, ``sweeps.jsonl``.
    rejected : list, optional
        Where a line that is not a JSON object goes (as :class:`Rejected`). Without it,
        such a line raises.

    Returns
    -------
    list of SourceRecord
        In file order, then line order.

    Raises
    ------
    FileNotFoundError
        A source file is missing.
    ValueError
        ``rejected`` not given and a line is not a JSON object (message names file and line).
    """
    src = Path(src)
    out = []
    for name in SOURCE_FILES:
        path = src / name
        raw = path.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        for i, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                problem = None if isinstance(obj, dict) else "expected a JSON object"
            except json.JSONDecodeError as exc:
                problem = f"invalid JSON: {exc.msg}"
            if problem is not None:
                if rejected is None:
                    raise ValueError(f"{path}: line {i}: {problem}")
                rejected.append(Rejected(name, i, problem))
                continue
            out.append(SourceRecord(name, i, obj, sha))
    return out


# --------------------------------------------------------------------------- helpers

def _slug(text: str | None, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unnamed").strip("-").lower()
    return (s[:limit].rstrip("-")) or "unnamed"


def _profile_id(framework: str, model_label: str | None, records: list[SourceRecord]) -> str:
    payload = json.dumps([[r.file, r.data] for r in records], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:10]
    return f"{framework}-{_slug(model_label)}-{digest}"


def _resolve_model(name: str | None, quant: str | None = None) -> tuple[dict, list[str]]:
    """Model block and flags for a model name exactly as the source gave it."""
    model = {"id": None, "name_as_given": name}
    if name in R.MODEL_TABLE:
        model["id"], fmt = R.MODEL_TABLE[name]
        model["weight_format"] = fmt if fmt is not None else quant
        return model, []
    if name is None or R.UNNAMED.search(name):
        return model, ["model_unnamed"]
    if R.HF_ID.match(name):
        model["id"] = name
        model["weight_format"] = quant
        return model, []
    return model, ["model_id_unresolved"]


def _family(printed: str) -> str:
    low = printed.lower()
    for prefix, family in R.FRAMEWORK_PREFIXES:
        if low.startswith(prefix):
            return family
    raise ValueError(f"unknown framework {printed!r} (add it to FRAMEWORK_PREFIXES)")


def _is_plain_dtype(text: str | None) -> bool:
    return bool(text) and bool(R.PLAIN_DTYPES.match(text.strip()))


def _caveats(file: str, rec: dict) -> tuple[list[str], list[str]]:
    """Flags and exclusion reasons from the reviewed caveat and source rules."""
    flags, reasons = [], []
    for flag, reason, fields, rx in R.CAVEAT_RULES:
        text = " | ".join(str(rec.get(f) or "") for f in fields)
        if rx.search(text):
            flags.append(flag)
            if reason:
                reasons.append(reason)
    for rule_file, pred, flag, reason in R.SOURCE_RULES:
        if rule_file == file and pred(rec):
            if flag:
                flags.append(flag)
            if reason:
                reasons.append(reason)
    return flags, reasons


def _extra_figures(file: str, rec: dict) -> tuple[dict, list[str], list[str]]:
    """Figures read from evidence/notes by the reviewed EXTRA_FIGURES patterns."""
    found, flags, notes = {}, [], []
    for rule_file, pred, field, rx, name, extra_flags, note in R.EXTRA_FIGURES:
        if rule_file != file or not pred(rec):
            continue
        matches = {m.group(1) for m in rx.finditer(rec.get(field) or "")}
        if len(matches) != 1:
            continue  # absent, or ambiguous (several different figures): keep only the text
        figure = matches.pop()
        value = int(figure) if name in ("kv_cache_tokens", "num_gpu_blocks") else float(figure)
        if name in found:
            if found[name] != value:
                raise ValueError(f"{file}: conflicting figures for {name}: {found[name]} vs {value}")
            continue
        found[name] = value
        flags.extend(extra_flags)
        if note:
            notes.append(note)
    return found, flags, notes


#: Exclusion reason of a profile whose printed unit may be decimal or binary (flag
#: ``unit_base_unverified``); fitting.overhead.unit_bases decides such sources in the refit.
UNIT_BASE_REASON = "unit base not verified (printed 'MB'/'GB' may be decimal or binary)"


def _finish(profile: dict, flags: list[str], reasons: list[str]) -> dict:
    model = profile["model"]
    if model.get("id") is None:
        reasons.insert(0, "model not identified by an exact Hugging Face id")
    if not any(v is not None for v in profile["measured"].values()):
        flags.append("no_exact_figure")
        reasons.append("no exact figure printed (only approximate text, kept in evidence)")
    if "unit_base_unverified" in flags:
        reasons.append(UNIT_BASE_REASON)
    if "measure_unverified" in flags:
        reasons.append("what was measured is not stated by the source")
    profile["flags"] = sorted(set(flags))
    uniq = list(dict.fromkeys(reasons))
    profile["use_in_fit"] = not uniq
    profile["exclude_reason"] = "; ".join(uniq) if uniq else None
    out = _prune(profile)
    out["model"] = {"id": model.get("id"), **out.get("model", {})}  # model.id is required, null when unknown
    return out


def _prune(obj):
    """Drop None values and empty containers (the schema treats absent as missing)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("measured", "flags"):
                out[k] = _prune(v) if v is not None else ({} if k == "measured" else [])
                continue
            v = _prune(v)
            if v is None or (isinstance(v, (dict, list)) and not v):
                continue
            out[k] = v
        return out
    if isinstance(obj, list):
        return [_prune(v) for v in obj]
    return obj


def _provenance(records: list[SourceRecord]) -> dict:
    first = records[0].data
    evidence = list(dict.fromkeys(r.data.get("evidence") or "" for r in records))
    notes = list(dict.fromkeys(r.data.get("notes") for r in records if r.data.get("notes")))
    return {
        "kind": "public-log",
        "url": first.get("source_url"),
        "ref": first.get("source_ref"),
        "evidence": " || ".join(e for e in evidence if e) or "(no evidence text in the source record)",
        "date": first.get("source_date"),
        "notes": " || ".join(notes) or None,
        "source_file": SOURCE_PREFIX + records[0].file,
        "source_sha256": records[0].sha256,
        "source_lines": [r.line for r in records],
        "converter": CONVERTER,
    }


def _gib_or_mib(value: float, text: str, llamacpp: bool) -> tuple[str, float]:
    """Choose the printed unit for a figure the dataset stored as GiB.

    The dataset stores llama.cpp's MiB figures as MiB/1024 (exact). A figure is written
    back in MiB when that reproduces a printed MiB figure (or, for llama.cpp, a sum of
    printed MiB figures to two decimals); figures printed in GiB stay GiB.
    """
    if value == 0:
        return "gib", value
    literal = f"{value:g}"
    if re.search(rf"(?<![\d.]){re.escape(literal)}(?:\.0+)?\s*(?:GiB|G\b)", text):
        return "gib", value
    mib = value * 1024
    clean = abs(mib * 100 - round(mib * 100)) < 1e-6
    if not clean:
        return "gib", value
    printed = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)\s*MiB", text)]
    if any(abs(p - mib) < 0.005 for p in printed) or llamacpp:
        return "mib", round(mib, 2)
    return "gib", value


# --------------------------------------------------------------------------- vllm.jsonl

_VLLM_MEMORY = ("weights_gib", "non_torch_gib", "activation_peak_gib", "kv_cache_gib", "cuda_graph_gib")


def _vllm_notes(d: dict, measured: dict, extra_notes: list[str]) -> str:
    ev = d.get("evidence") or ""
    parts = ["Units as printed by vLLM: GiB (vLLM computes bytes/2**30; the 'GB' label of V0's 'Loading model "
             "weights took X GB' line is the same GiB figure). Memory figures per GPU; kv_cache_tokens and "
             "num_gpu_blocks engine-wide."]
    if "peak_torch_memory" in ev:
        parts.append("Log format: V0 v0.6.4 era 'Memory profiling results' (peak_torch includes the weights; "
                     "activation not printed separately, activation_peak left absent).")
    elif "model weights take" in ev:
        parts.append("Log format: V0 Dec-2024 profiling table: non_torch = all non-torch memory (CUDA context, "
                     "NCCL/custom all-reduce buffers, cuBLAS); activation_peak = torch peak increase after weights load.")
    elif "torch peak memory increase" in ev or "non-torch forward increase" in ev:
        parts.append("Log format: V1 DEBUG: non_torch = only the non-torch increase during the profiling forward pass.")
    elif "Actual usage is" in ev:
        parts.append("Log format: V1 >= ~0.10 'Actual usage is W GiB for weight, A GiB for peak activation, N GiB "
                     "for non-torch memory, and G GiB for CUDAGraph memory'.")
    if "cuda_graph_gib" in measured:
        parts.append("cuda_graph_gib: actual CUDA-graph memory (capture log, 'CUDAGraph memory' or pool size; the "
                     "record's notes say which).")
    if d.get("cuda_graph_est_gib") is not None:
        parts.append("engine_settings.cuda_graph_estimate_gib is vLLM's own estimate of CUDA-graph memory (used to "
                     "size the KV pool), not a measurement.")
    if "free_after_boot_mib" in measured:
        parts.append("free_after_boot_mib: free device memory after start-up as read by the author (nvidia-smi style).")
    if "peak_total_mib" in measured:
        parts.append("peak_total_mib: whole-card NVML peak during the benchmark (includes the preallocated KV pool).")
    parts.extend(extra_notes)
    return " ".join(parts)


def _from_vllm(rec: SourceRecord) -> dict:
    d = rec.data
    model, flags = _resolve_model(d.get("model_id"))
    measured = {k: d[k] for k in _VLLM_MEMORY if d.get(k) is not None}
    for k in ("kv_cache_tokens", "num_gpu_blocks"):
        if d.get(k) is not None:
            measured[k] = d[k]
    if d.get("free_after_boot_mib") is not None:
        measured["free_after_boot_mib"] = d["free_after_boot_mib"]
    if d.get("gpu_used_mib") is not None:
        measured["peak_total_mib"] = d["gpu_used_mib"]
    extra, extra_flags, extra_notes = _extra_figures(rec.file, d)
    for k, v in extra.items():
        measured.setdefault(k, v)
    if d.get("source_url") in R.VLLM_SOURCE_LINES:
        extra_notes.append(R.VLLM_SOURCE_LINES[d["source_url"]] + ".")
    settings = {
        "gpu_memory_utilization": d.get("gpu_memory_utilization"),
        "enforce_eager": d.get("enforce_eager"),
        "block_size": d.get("block_size"),
        "cuda_graph_estimate_gib": d.get("cuda_graph_est_gib"),
    }
    ev = d.get("evidence") or ""
    est = re.search(r"Estimated CUDA graph memory: ([\d.]+) GiB", ev)
    if (d.get("cuda_graph_est_gib") is None and est and d.get("cuda_graph_gib") is not None
            and float(est.group(1)) == d["cuda_graph_gib"]
            and not re.search(r"actual|took|CUDAGraph memory|Graph capturing", ev)):
        # The only CUDA-graph figure is vLLM's estimate: it is a setting-like estimate, not a measurement.
        settings["cuda_graph_estimate_gib"] = measured.pop("cuda_graph_gib")
        extra_notes.append("The record's cuda_graph_gib came from an 'Estimated CUDA graph memory' line only: kept as "
                           "engine_settings.cuda_graph_estimate_gib (an estimate), not as a measurement.")
    tp, pp = d.get("tp"), d.get("pp")
    profile = {
        "schema_version": 1,
        "profile_id": _profile_id("vllm", d.get("model_id"), [rec]),
        "framework": "vllm",
        "framework_version": d.get("vllm_version"),
        "engine": d.get("engine"),
        "model": model,
        "gpu": {"name": d.get("gpu_name"), "memory_gib": d.get("gpu_total_gib"),
                "count": tp * (pp or 1) if tp else None},
        "parallel": {"tp": tp, "pp": pp},
        "workload": {"batch_size": d.get("batch_size"), "max_model_len": d.get("max_model_len"),
                     "max_num_seqs": d.get("max_num_seqs"), "max_num_batched_tokens": d.get("max_num_batched_tokens")},
        "precision": {"dtype": d.get("dtype"), "quantization": d.get("quantization"),
                      "kv_cache_dtype": d.get("kv_cache_dtype")},
        "engine_settings": settings,
        "kv_cache_mode": "pool",
        "measured": measured,
        "measured_scope": "per_gpu",
        "measurement_notes": _vllm_notes(d, measured, extra_notes),
        "series": d.get("series"),
        "provenance": _provenance([rec]),
    }
    cflags, reasons = _caveats(rec.file, d)
    return _finish(profile, flags + extra_flags + cflags, reasons)


# --------------------------------------------------------------------------- other_frameworks.jsonl

_OTHER_FIELDS = (("weights_gib", "weights"), ("weights_cpu_gib", "weights_cpu"), ("kv_cache_gib", "kv_cache"),
                 ("compute_buffer_gib", "compute_buffer"), ("cuda_graph_gib", "cuda_graph"), ("other_gib", "other"))

_FAMILY_NOTES = {
    "llamacpp": "llama.cpp prints buffer sizes in MiB: figures kept in MiB as printed (the dataset stored MiB/1024, "
                "converted back exactly); figures the log printed in GiB stay GiB. weights = model buffer(s) on the "
                "GPU, weights_cpu = host part, kv_cache = KV buffer, compute_buffer = CUDA compute buffer (2023 builds: "
                "'VRAM scratch buffer').",
    "sglang": "SGLang prints 'GB' but computes bytes/2**30, so its figures are GiB, copied as printed; per GPU. "
              "weights = 'Load weight end ... mem usage', kv_cache = K size + V size, cuda_graph = 'Capture cuda graph "
              "end ... mem usage', other = Mamba/recurrent state; kv_cache_tokens = KV pool tokens.",
    "trtllm": "TensorRT-LLM: figures per GPU as printed (GiB; MiB where the log printed MiB). weights = engine size or "
              "'inside torch' memory after loading; compute_buffer = TensorRT execution-context (activation) memory "
              "or the PyTorch backend's 'dynamically allocated during inference'; kv_cache = 'Allocated X GiB for max "
              "tokens in paged KV cache' (kv_cache_tokens in brackets); other = PyTorch backend 'outside torch'.",
    "tgi": "Hugging Face TGI: kv_cache_tokens = 'max batch total tokens' (KV capacity after warmup).",
    "transformers": "transformers: torch.cuda.max_memory_allocated()/1024**3 as printed (GiB).",
}


def _total_quantity(notes: str) -> str:
    return "peak_allocated" if "max_memory_allocated" in notes else "peak_total"


def _other_settings(batch_setting: str | None) -> dict:
    out = {"batch_setting": batch_setting}
    for rx, name, typ in R.SETTING_PATTERNS:
        m = rx.search(batch_setting or "")
        if m and name not in out:
            out[name] = typ(m.group(1))
    return out


def _from_other(rec: SourceRecord) -> dict:
    d = rec.data
    printed = d["framework"]
    family = _family(printed)
    quant = d.get("model_quant")
    model, flags = _resolve_model(d.get("model_id"), None if _is_plain_dtype(quant) else quant)
    if d.get("model_file_gib") is not None:
        model["file_size_gib"] = d["model_file_gib"]
    text = f"{d.get('evidence') or ''} | {d.get('notes') or ''}"
    measured, unit_notes = {}, []
    llamacpp = family == "llamacpp"
    for src, quantity in _OTHER_FIELDS:
        if d.get(src) is not None:
            unit, value = _gib_or_mib(d[src], text, llamacpp)
            measured[f"{quantity}_{unit}"] = value
    if d.get("total_reported_gib") is not None:
        quantity = _total_quantity(d.get("notes") or "")
        unit, value = _gib_or_mib(d["total_reported_gib"], text, llamacpp)
        measured[f"{quantity}_{unit}"] = value
        unit_notes.append(f"{quantity}_{unit}: the record's total_reported figure; what it is: see provenance.notes "
                          "(nvidia-smi reading, a profiled peak, or the framework's own total of its buffers).")
    extra, extra_flags, extra_notes = _extra_figures(rec.file, d)
    for k, v in extra.items():
        measured.setdefault(k, v)
    num = d.get("num_gpus")
    scope = "per_gpu"
    if llamacpp and num and num > 1 and re.search(r"\bsums?\b|summed", d.get("notes") or "", re.I):
        scope = "sum_over_gpus"
        unit_notes.append("Multi-GPU llama.cpp run: weights, kv_cache, compute_buffer and totals are sums over the "
                          "devices (per-device figures in provenance.notes).")
    variant = None if printed in R.PLAIN_FRAMEWORK_NAMES else printed
    notes = " ".join([_FAMILY_NOTES[family]] + unit_notes + extra_notes)
    profile = {
        "schema_version": 1,
        "profile_id": _profile_id(family, d.get("model_id"), [rec]),
        "framework": family,
        "framework_version": d.get("framework_version"),
        "framework_variant": variant,
        "model": model,
        "gpu": {"name": d.get("gpu_name"), "memory_gib": d.get("gpu_total_gib"), "count": num},
        "parallel": {"tp": d.get("tp")},
        "workload": {"context_len": d.get("n_ctx_or_max_len")},
        "precision": {"dtype": quant if _is_plain_dtype(quant) else None,
                      "quantization": None if _is_plain_dtype(quant) else quant,
                      "kv_cache_dtype": d.get("kv_cache_dtype")},
        "engine_settings": _other_settings(d.get("batch_setting")),
        "kv_cache_mode": "pool" if family in R.POOL_FRAMEWORKS else "growing",
        "measured": measured,
        "measured_scope": scope,
        "measurement_notes": notes,
        "provenance": _provenance([rec]),
    }
    cflags, reasons = _caveats(rec.file, d)
    return _finish(profile, flags + extra_flags + cflags, reasons)


# --------------------------------------------------------------------------- sweeps.jsonl

def _sweep_quantity(measure: str) -> tuple[str, str | None]:
    for rx, quantity, note in R.SWEEP_MEASURES:
        if rx.search(measure):
            return quantity, note
    raise ValueError(f"no measured quantity for sweep measure {measure[:80]!r} (add it to SWEEP_MEASURES)")


def _sweep_unit(d: dict) -> tuple[str, str | None, str]:
    for pred, printed, suffix, flag, reason in R.SWEEP_UNITS:
        if pred(d):
            if d.get("unit") != printed:
                raise ValueError(f"sweep series {d.get('series')!r}: unit {d.get('unit')!r}, expected {printed!r}")
            return suffix, flag, reason
    raise ValueError(f"no unit rule for sweep series {d.get('series')!r} (add it to SWEEP_UNITS)")


def _sweep_groups(records: list[SourceRecord]) -> list[list[SourceRecord]]:
    """One group per run: Dec-2023 optimum-benchmark _alloc/_resv/_used merge, the rest single."""
    groups: dict[tuple, list[SourceRecord]] = {}
    order: list[tuple] = []
    for rec in records:
        d = rec.data
        series = d.get("series") or ""
        base, _, suffix = series.rpartition("_")
        if series.startswith("optimum-benchmark-dec2023") and suffix in R.MERGE_SUFFIXES:
            key = ("merge", base, d.get("model_id"), d.get("dtype_or_quant"), d.get("attention_impl"),
                   d.get("batch_size"), d.get("input_len"), d.get("output_len"))
        else:
            key = ("single", rec.line)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(rec)
    return [groups[k] for k in order]


def _from_sweep_group(group: list[SourceRecord]) -> dict:
    """:func:`_from_sweeps`, after checking that a merged run has each measure once."""
    kinds = Counter((r.data.get("series") or "").rpartition("_")[2] for r in group)
    if len(group) > 1 and max(kinds.values()) > 1:
        raise ValueError(f"two records of the same measure for one run: lines {[r.line for r in group]}")
    return _from_sweeps(group)


def _sweep_phase(series: str) -> str | None:
    parts = re.split(r"[_]", series)
    for part in reversed(parts):
        if part in R.PHASES:
            return R.PHASES[part]
    return None


def _from_sweeps(group: list[SourceRecord]) -> dict:
    group = sorted(group, key=lambda r: r.line)
    first = group[0].data
    family = _family(first["framework"])
    dq = first.get("dtype_or_quant")
    measured, notes = {}, []
    for applies, text, where in R.SWEEP_QUANTIZATION:
        if applies(first):
            dq = text
            notes.append(where + ".")
            break
    model, flags = _resolve_model(first.get("model_id"), None if _is_plain_dtype(dq) else dq)
    merged = len(group) > 1 or (first.get("series") or "").startswith("optimum-benchmark-dec2023")
    for rec in group:
        d = rec.data
        quantity, qnote = _sweep_quantity(d["measure"])
        suffix, uflag, ureason = _sweep_unit(d)
        if merged:
            quantity = R.MERGE_SUFFIXES[d["series"].rpartition("_")[2]]
        name = f"{quantity}_{suffix}"
        if name in measured:
            raise ValueError(f"sweeps.jsonl line {rec.line}: {name} twice in one profile")
        measured[name] = d["value"]
        if uflag:
            flags.append(uflag)
        note = f"{name} = {d['measure'].rstrip('. ')}."
        if qnote:
            note += f" ({qnote})"
            if qnote in R.SWEEP_MEASURE_FLAGS:
                flags.append(R.SWEEP_MEASURE_FLAGS[qnote])
        note += f" Printed unit '{d['unit']}': {ureason}."
        if merged:
            note += f" [series {d['series']!r}, line {rec.line}]"
        notes.append(note)
        if quantity == "peak_unspecified":
            flags.append("measure_unverified")
        for applies, q, flag in R.SWEEP_SERIES_FLAGS:
            if q == quantity and applies(d) and flag not in flags:
                flags.append(flag)
    series = first.get("series")
    if merged:
        series = series.rpartition("_")[0]
        notes.append("One optimum-benchmark run and phase: its per-measure series (_alloc = max_memory_allocated, "
                     "_resv = max_memory_reserved, _used = NVML device used) are merged into this profile.")
    workload = {"batch_size": first.get("batch_size"), "input_len": first.get("input_len"),
                "output_len": first.get("output_len"), "context_len": first.get("context_len"),
                "phase": _sweep_phase(first.get("series") or "")}
    for applies, fields, where in R.SWEEP_WORKLOAD_DEFAULTS:
        if applies(first):
            for key, value in fields.items():
                if workload.get(key) is None:
                    workload[key] = value
                    if key in ("input_len", "output_len") and workload.get("input_len") is not None:
                        workload["context_len"] = workload["input_len"] + (workload.get("output_len") or 0)
            notes.append(where + ".")
            break
    if workload["phase"] == "prefill" and (workload["output_len"] or 0) > 1 and workload["input_len"]:
        # The figure covers one forward pass over the prompt: describe that workload, keep the run's in the notes.
        notes.append(f"Workload is that of the measured prefill pass (output_len 0, context_len = input_len); the "
                     f"source record gives the benchmark run's output_len {workload['output_len']} and context_len "
                     f"{workload['context_len']}.")
        workload["output_len"], workload["context_len"] = 0, workload["input_len"]
    gpu_name = first.get("gpu_name")
    for applies, name, where in R.SWEEP_GPU_NAMES:
        if applies(first):
            gpu_name = name
            notes.append(where + ".")
            break
    settings = {"attention_impl": first.get("attention_impl")}
    m = re.search(r"n_ubatch[^=\d]*= (\d+)", first.get("notes") or "")
    if m:
        settings["n_ubatch"] = int(m.group(1))
    printed = first["framework"]
    profile = {
        "schema_version": 1,
        "profile_id": _profile_id(family, first.get("model_id"), group),
        "framework": family,
        "framework_version": first.get("framework_version"),
        "framework_variant": None if printed in R.PLAIN_FRAMEWORK_NAMES else printed,
        "model": model,
        "gpu": {"name": gpu_name, "memory_gib": first.get("gpu_total_gib"), "count": first.get("num_gpus")},
        "workload": workload,
        "precision": {"dtype": dq if _is_plain_dtype(dq) else None,
                      "quantization": None if _is_plain_dtype(dq) else dq,
                      "kv_cache_dtype": first.get("kv_cache_dtype")},
        "engine_settings": settings,
        "kv_cache_mode": "pool" if family in R.POOL_FRAMEWORKS else "growing",
        "measured": measured,
        "measured_scope": "per_gpu",
        "measurement_notes": " ".join(notes),
        "series": series,
        "provenance": _provenance(group),
    }
    cflags, reasons = [], []
    for rec in group:
        f, r = _caveats(rec.file, rec.data)
        cflags += f
        reasons += r
    return _finish(profile, flags + cflags, reasons)


# --------------------------------------------------------------------------- driver

#: What a conversion rule raises on a record it cannot read (a missing key, a wrong type).
_RECORD_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


def _checked(build, records: list[SourceRecord], rejected: list) -> dict | None:
    """``build()`` validated as a profile, or None with every source line in ``rejected``."""
    try:
        profile = build()
        validate_profile(profile)
    except ProfileError as exc:
        reason = f"fails validation: {exc.field}: {exc.reason}"
    except _RECORD_ERRORS as exc:
        reason = f"cannot convert: {type(exc).__name__}: {exc}"
    else:
        return profile
    rejected.extend(Rejected(r.file, r.line, reason) for r in records)
    return None


def convert_all(src) -> Conversion:
    """Convert every source record into profiles (not written); bad records are left out.

    Parameters
    ----------
    src : str or Path
        Folder with the three ``*.jsonl`` files.

    Returns
    -------
    Conversion
        ``profiles`` in source order (vllm, other_frameworks, sweeps), each one valid;
        ``rejected``: the source lines left out (not a JSON object, not convertible, or
        the profile fails validation, e.g. a negative figure), each with its reason. A
        record whose profile id another record already produced is rejected as a duplicate.

    Raises
    ------
    FileNotFoundError
        A source file is missing.
    """
    rejected: list[Rejected] = []
    records = read_sources(src, rejected)
    by_file = defaultdict(list)
    for rec in records:
        by_file[rec.file].append(rec)
    built = [(_checked(lambda r=r: _from_vllm(r), [r], rejected), [r]) for r in by_file["vllm.jsonl"]]
    built += [(_checked(lambda r=r: _from_other(r), [r], rejected), [r]) for r in by_file["other_frameworks.jsonl"]]
    groups = _sweep_groups(by_file["sweeps.jsonl"])
    built += [(_checked(lambda g=g: _from_sweep_group(g), g, rejected), g) for g in groups]
    profiles, seen = [], {}
    for profile, recs in built:
        if profile is None:
            continue
        first = seen.get(profile["profile_id"])
        if first is not None:
            rejected.extend(Rejected(r.file, r.line, f"duplicate profile id {profile['profile_id']!r} (identical "
                                                     f"source record, kept from {first})") for r in recs)
            continue
        seen[profile["profile_id"]] = f"{recs[0].file} line {recs[0].line}"
        profiles.append(profile)
    rejected.sort(key=lambda r: (SOURCE_FILES.index(r.file), r.line))
    return Conversion(profiles, rejected)


def convert(src) -> list[dict]:
    """The profiles of :func:`convert_all` (bad records left out; see ``convert_all(src).rejected``)."""
    return convert_all(src).profiles


def is_converter_output(path) -> bool:
    """True when ``path`` (a ``<out>/<framework>/*.json`` file) belongs to this converter.

    A file belongs to it unless it is a profile that names another converter in
    ``provenance.converter`` (e.g. ``fitting.ingest.harvest``): those are carried over
    unchanged by :func:`write_profiles`. Unreadable files and profiles without a converter
    are this converter's leftovers.
    """
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True
    converter = ((obj.get("provenance") or {}).get("converter") if isinstance(obj, dict) else None) or ""
    return not isinstance(converter, str) or not converter or converter.startswith("fitting.public_logs")


def _carry_over(out: Path, staging: Path, clean: bool) -> None:
    """Copy into ``staging`` what ``out`` holds that this conversion does not rewrite."""
    if not out.is_dir():
        return
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out)
        ours = (len(rel.parts) == 2 and rel.parts[0] in FRAMEWORKS and path.suffix == ".json"
                and is_converter_output(path))
        if ours and clean:
            continue
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def write_profiles(profiles: list[dict], out, clean: bool = True) -> list[Path]:
    """Write profiles to ``<out>/<framework>/<profile_id>.json``, replacing ``out`` as a whole.

    The profiles (validated) and what ``out`` holds besides this converter's files are
    written to a staging folder beside ``out``, which then takes the place of ``out``
    (two renames). On any error the staging folder is removed and ``out`` is left as it was.

    Parameters
    ----------
    profiles : list of dict
    out : str or Path
        Output root (``profiles/public``).
    clean : bool, default True
        Leave out ``*.json`` files under ``<out>/<framework>/`` that this conversion did
        not produce (:func:`is_converter_output`); other converters' files and other
        folders are always kept.

    Returns
    -------
    list of Path
        Files written (their final paths under ``out``), in input order.

    Raises
    ------
    ProfileError
        A profile is invalid (``out`` unchanged).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    old = None
    try:
        _carry_over(out, staging, clean)
        written = [write_profile(p, staging / p["framework"]) for p in profiles]
        os.chmod(staging, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
        os.rename(staging, out)
    except BaseException:
        if old is not None and not out.exists():  # put the previous folder back
            os.rename(old / out.name, out)
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [out / p.relative_to(staging) for p in written]


def _summary(profiles: list[dict]) -> str:
    lines = [f"{'framework':<14}{'profiles':>9}{'in fit':>8}{'excluded':>10}"]
    total = Counter(p["framework"] for p in profiles)
    used = Counter(p["framework"] for p in profiles if p["use_in_fit"])
    for fw in FRAMEWORKS:
        if total[fw]:
            lines.append(f"{fw:<14}{total[fw]:>9}{used[fw]:>8}{total[fw] - used[fw]:>10}")
    lines.append(f"{'total':<14}{sum(total.values()):>9}{sum(used.values()):>8}{sum(total.values()) - sum(used.values()):>10}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: convert the public logs and write the profiles."""
    parser = argparse.ArgumentParser(
        prog="python -m fitting.public_logs",
        description="Convert the harvested public GPU-memory measurements (vllm.jsonl, other_frameworks.jsonl, "
                    "sweeps.jsonl) into schema-v1 profiles under OUT/<framework>/.")
    parser.add_argument("--src", default="../shared/data/public-logs", help="folder with the three .jsonl files "
                        "(default: %(default)s)")
    parser.add_argument("--out", default="profiles/public", help="output root (default: %(default)s)")
    parser.add_argument("--no-clean", action="store_true", help="keep *.json files under OUT/<framework>/ that this "
                        "conversion did not produce")
    parser.add_argument("--strict", action="store_true", help="write nothing and exit 1 when a source record is "
                        "rejected (default: convert the others, list the rejected ones, exit 0)")
    args = parser.parse_args(argv)
    try:
        result = convert_all(args.src)
        if result.rejected:
            print(f"{len(result.rejected)} source record(s) left out:", file=sys.stderr)
            for rej in result.rejected:
                print(f"  {rej}", file=sys.stderr)
            if args.strict:
                print("error: --strict: nothing written", file=sys.stderr)
                return 1
        write_profiles(result.profiles, args.out, clean=not args.no_clean)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(_summary(result.profiles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
