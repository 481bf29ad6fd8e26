"""optimum-benchmark reports -> public transformers profiles: ``python -m fitting.ingest.optimum_benchmark``.

Full optimum-benchmark reports (``benchmark.json``: ``config`` + ``environment`` +
``report``) of the PyTorch backend found in public repositories are kept **verbatim** (byte
for byte, as the repository holds them) under
``profiles/public/transformers/reports/<run>.report`` (the ``benchmark.json`` byte for byte); the loader skips that folder. Beside
each lies a small reviewed sidecar ``<run>.source.yaml``:

``url`` (required)
    permalink of the file at the commit it was copied from;
``date``
    when the run was made (the run's log), else the commit date;
``model``
    the Hugging Face id, only where the report's ``backend.model`` is a local path or
    ambiguous (a reviewed judgement); otherwise the report's id is used;
``weight_format`` / ``quantization``
    what the checkpoint holds when the report does not say it (pre-quantized checkpoints
    loaded without a ``quantization_config``, e.g. AQLM, VPTQ): ``model.weight_format`` and
    ``precision.quantization`` as the reviewer words them;
``dtype``
    the activation dtype when the report's ``torch_dtype`` is null and the quantizer's
    default is not in :data:`DTYPE_DEFAULTS`;
``gpu``
    the GPU model when ``environment.gpu`` does not name the run's devices unambiguously;
``flags``
    profile flags (list); those in :data:`EXCLUDING_FLAGS` keep the run out of fits;
``notes``
    free text (where the date, model and GPU came from; caveats).

Each report gives two profiles, one per phase of optimum-benchmark's text-generation
memory tracking (v0.5.0 / 0.6.0 ``scenarios/inference/scenario.py``,
``run_text_generation_memory_tracking``), both after the warm-up and latency runs in the
same process:

=================  ==========================  =============================================
report target      what ran                    profile
=================  ==========================  =============================================
``prefill``        ``generate`` with           ``workload.phase = "prefill"``,
                   ``max_new_tokens = 1``      ``output_len`` 1, ``context_len`` = prompt
``decode``         the whole ``generate``      ``workload.phase = "generate"``,
                   (``generate_kwargs``)       ``output_len`` = ``max_new_tokens``,
                                               ``context_len`` = prompt + new tokens
=================  ==========================  =============================================

Both are ``generate()`` calls, so the ``series`` of both says ``_generate_`` (the fit's
transformers settings then model generate's bookkeeping, e.g. last-position logits only).

Measures (``trackers/memory.py``; each per phase, torch peak statistics reset before it):

* ``peak_allocated_mb`` = ``max_allocated``: ``torch.cuda.max_memory_allocated`` / 1e6,
  summed over the visible devices;
* ``peak_reserved_mb`` = ``max_reserved``: ``torch.cuda.max_memory_reserved`` / 1e6, summed;
* ``peak_total_mb`` = ``max_global_vram``: NVML ``nvmlDeviceGetMemoryInfo(...).used``
  (device-level used memory, all processes) summed over ``device_ids``, sampled every
  10 ms during the call. This is the measure the earlier optimum-benchmark profiles store
  as ``peak_total`` (the 2023 tracker's ``max_memory_used``, NVML device used);
  ``max_process_vram`` (NVML per-process) is quoted in the evidence only. With more visible
  devices than the model uses (``device_map`` null) the device-level sum also counts idle
  and other users' devices, so no ``peak_total`` is stored (flag ``extra_visible_gpus``).

Both targets run after the warm-up and latency ``generate()`` calls of the same process with
no ``empty_cache()``: every profile gets the flag ``cache_from_warmup`` (its reserved and
NVML figures hold segments cached by those calls; the allocated peak does not).

Unit: ``"MB"`` = 1e6 bytes (``/ 1e6`` in the tracker), stored under ``_mb`` as printed.
Model placement: ``device_map`` null puts the model on one GPU (``gpu.count`` 1,
``per_gpu``); a ``device_map`` over several visible devices gives ``sum_over_gpus`` with
``gpu.count`` = the number of devices.

The profiles are written to ``profiles/public/transformers/`` with ``provenance.kind =
"public-log"``, ``source_file`` = the stored report, its sha256 and ``converter =
"fitting.ingest.optimum_benchmark <version>"``. Files this converter wrote before and no
longer produces are removed; files of other converters (``fitting.public_logs``,
``fitting.ingest.harvest``) are never touched, and both of those keep these files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from fitting.data.profiles import ProfileError, profile_converter, validate_profile, write_converter_output
from fitting.version import __version__

__all__ = ["CONVERTER", "DTYPE_DEFAULTS", "EXCLUDING_FLAGS", "OptimumBenchmarkError", "Report",
           "convert_report", "convert_reports", "main", "read_report", "write_reports"]

CONVERTER = f"fitting.ingest.optimum_benchmark {__version__}"
FRAMEWORK = "transformers"
REPORTS_DIR = "reports"
#: A stored report is optimum-benchmark's ``benchmark.json`` byte for byte under this suffix, so that
#: under ``profiles/`` only profiles end in ``.json``.
REPORT_SUFFIX = ".report"
SIDECAR_SUFFIX = ".source.yaml"
SIDECAR_KEYS = ("url", "date", "model", "weight_format", "quantization", "dtype", "gpu", "flags", "notes")

#: report target -> (profile phase, what ran)
PHASES = {
    "prefill": ("prefill", "generate() with max_new_tokens=1 (optimum-benchmark prefill target)"),
    "decode": ("generate", "the whole generate() call (optimum-benchmark decode target)"),
}

#: Flags that keep a profile out of default fits, with the reason written.
EXCLUDING_FLAGS = {
    "quantized_at_load": "the weights were quantized in the measured process at load (GPTQ calibration): the "
                         "allocator still holds the calibration's segments and the checkpoint is not the one named",
    "kernel_not_modelled": "a quantized kernel whose load-time repacking and buffers the physics does not model "
                           "(resident memory well above the checkpoint's weights)",
    "model_id_unresolved": "model not identified by an exact Hugging Face id",
    "failed_run": "figure from a failed run",
}

#: transformers' dtype when ``torch_dtype`` is null, per quantization method (the
#: quantizers' ``update_torch_dtype`` in transformers 4.47-4.50).
DTYPE_DEFAULTS = {
    "awq": ("float16", "torch_dtype null: transformers' AwqQuantizer.update_torch_dtype loads float16"),
    "gptq": ("float16", "torch_dtype null: transformers' GptqHfQuantizer.update_torch_dtype loads float16"),
    "torchao:int4_weight_only": ("bfloat16", "torch_dtype null: transformers' TorchAoHfQuantizer.update_torch_dtype "
                                             "sets bfloat16 for int4_weight_only"),
}

_MEASURES = (("peak_allocated_mb", "max_allocated"), ("peak_reserved_mb", "max_reserved"),
             ("peak_total_mb", "max_global_vram"))


class OptimumBenchmarkError(ValueError):
    """A report or its sidecar is unusable; the message names the file and the field."""

    def __init__(self, path, field: str, reason: str):
        self.path, self.field, self.reason = str(path), field, reason
        super().__init__(f"{path}: {field}: {reason}")


@dataclass(frozen=True)
class Report:
    """One stored report, its sidecar and where they are."""

    path: Path
    rel: str             # path as recorded in provenance.source_file
    run: str             # file name stem
    data: dict
    sidecar: dict
    sidecar_path: Path
    sha256: str


# --------------------------------------------------------------------------- reading

def _get(obj, dotted: str, path, *, types=None, required=True, allow_none=False):
    """The value at ``dotted`` (``config.backend.model``) or an error naming it."""
    cur = obj
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            if required:
                raise OptimumBenchmarkError(path, dotted, "missing field")
            return None
        cur = cur[key]
    if cur is None:
        if allow_none or not required:
            return None
        raise OptimumBenchmarkError(path, dotted, "is null")
    if types is not None and (not isinstance(cur, types) or isinstance(cur, bool) and bool not in _tuple(types)):
        names = "/".join(t.__name__ for t in _tuple(types))
        raise OptimumBenchmarkError(path, dotted, f"expected {names}, got {type(cur).__name__} {cur!r}")
    return cur


def _tuple(types):
    return types if isinstance(types, tuple) else (types,)


def read_report(path, root) -> Report:
    """Read ``<root>/transformers/reports/<run>.report`` and its ``<run>.source.yaml``.

    Raises
    ------
    OptimumBenchmarkError
        Unreadable or invalid JSON, no sidecar, an unknown sidecar key or no ``url``.
    """
    path, root = Path(path), Path(root)
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise OptimumBenchmarkError(path, "file", f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise OptimumBenchmarkError(path, "json", f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                                  f"{exc.msg}") from None
    if not isinstance(data, dict):
        raise OptimumBenchmarkError(path, "json", f"a report is a JSON object, got {type(data).__name__}")
    side_path = path.with_name(path.stem + SIDECAR_SUFFIX)
    try:
        sidecar = yaml.safe_load(side_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptimumBenchmarkError(side_path, "file", f"no sidecar beside the report ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise OptimumBenchmarkError(side_path, "yaml", f"invalid YAML: {exc}") from None
    if not isinstance(sidecar, dict):
        raise OptimumBenchmarkError(side_path, "yaml", "a sidecar is a mapping of key: value")
    for key, value in sidecar.items():
        if key not in SIDECAR_KEYS:
            raise OptimumBenchmarkError(side_path, str(key), f"unknown sidecar key; expected {', '.join(SIDECAR_KEYS)}")
        if key == "flags":
            if not isinstance(value, list) or not all(isinstance(f, str) and re.fullmatch(r"[a-z0-9_]+", f)
                                                      for f in value):
                raise OptimumBenchmarkError(side_path, "flags", "a list of lower_snake_case flags")
        elif value is not None and not isinstance(value, str):
            raise OptimumBenchmarkError(side_path, str(key), f"expected text, got {type(value).__name__}")
    if not sidecar.get("url"):
        raise OptimumBenchmarkError(side_path, "url", "missing field (permalink of the report at its commit)")
    try:
        rel = "profiles/public/" + path.relative_to(root).as_posix()
    except ValueError:
        rel = path.name
    return Report(path, rel, path.stem, data, sidecar, side_path, hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------- converting

def _slug(text, limit=40):
    s = re.sub(r"[^A-Za-z0-9]+", "-", text or "unnamed").strip("-").lower()
    return s[:limit].rstrip("-") or "unnamed"


def _device_ids(value, path) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", value):
        return [int(v) for v in value.split(",")]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise OptimumBenchmarkError(path, "config.backend.device_ids", f"expected '0' / '2,4' / [0, 1], got {value!r}")


def _quantization(backend: dict, src: Report) -> tuple[str | None, str | None, str | None]:
    """(method key, precision.quantization, description) from the report or the sidecar."""
    p = src.path
    scheme = backend.get("quantization_scheme")
    qcfg = backend.get("quantization_config") or {}
    if not isinstance(qcfg, dict):
        raise OptimumBenchmarkError(p, "config.backend.quantization_config", f"expected an object, got {qcfg!r}")
    method = scheme or qcfg.get("quant_method")
    side = src.sidecar.get("quantization")
    if not method:
        return None, side, None
    method = str(method).lower()

    def need(key, types=int):
        v = qcfg.get(key)
        if v is None or not isinstance(v, types) or isinstance(v, bool):
            raise OptimumBenchmarkError(p, f"config.backend.quantization_config.{key}",
                                        f"missing or not {types.__name__} ({method} quantization)")
        return v

    if method in ("awq", "gptq"):
        bits = need("bits")
        group = qcfg.get("group_size", 128)  # AwqConfig / GPTQConfig default
        name = f"{method}-int{bits}-g{group}"
        if method == "gptq" and qcfg.get("use_exllama") and bits == 4:
            kernel = (qcfg.get("exllama_config") or {}).get("version", 1)
            name += f" (exllama v{kernel} kernel)"
        desc = f"{method} {bits}-bit group {group}" + ("" if "group_size" in qcfg else " (group size: config default)")
        if method == "awq" and qcfg.get("version"):
            desc += f", AwqConfig version {qcfg['version']!r}"
        return method, side or name, desc
    if method == "torchao":
        qtype = need("quant_type", str)
        if qtype == "int4_weight_only":
            group = qcfg.get("group_size", 128)
            return f"torchao:{qtype}", side or f"int4wo-g{group}", f"torchao {qtype} group {group}"
        return f"torchao:{qtype}", side, f"torchao {qtype}"
    if method == "fbgemm_fp8":
        return method, side or "fp8-per-channel", "FBGEMM FP8 (fp8 e4m3 weights, fp32 scale per output row)"
    return method, side, method


def _dtype(backend: dict, qkey: str | None, src: Report) -> tuple[str, str | None]:
    stated = backend.get("torch_dtype")
    if stated not in (None, "auto"):
        if not isinstance(stated, str):
            raise OptimumBenchmarkError(src.path, "config.backend.torch_dtype", f"expected text, got {stated!r}")
        return stated, None
    if src.sidecar.get("dtype"):
        return src.sidecar["dtype"], f"torch_dtype {stated!r}: dtype {src.sidecar['dtype']} from the sidecar"
    if qkey in DTYPE_DEFAULTS:
        return DTYPE_DEFAULTS[qkey]
    raise OptimumBenchmarkError(src.path, "config.backend.torch_dtype",
                                f"{stated!r} and no default known for quantization {qkey!r}: set dtype in "
                                f"{src.sidecar_path.name}")


def _gpu(env: dict, ids: list[int], src: Report) -> str:
    if src.sidecar.get("gpu"):
        return src.sidecar["gpu"]
    names = _get(env, "gpu", src.path, types=list) if "gpu" in env else None
    if names is None:
        raise OptimumBenchmarkError(src.path, "config.environment.gpu", "missing field (or set gpu in the sidecar)")
    picked = {names[i] for i in ids if 0 <= i < len(names)}
    if len(picked) != 1 or any(not (0 <= i < len(names)) for i in ids):
        raise OptimumBenchmarkError(src.path, "config.environment.gpu",
                                    f"devices {ids} of {names} do not name one GPU model: set gpu in the sidecar")
    return picked.pop()


def convert_report(src: Report) -> list[dict]:
    """The two profiles (prefill, decode) of one report.

    Raises
    ------
    OptimumBenchmarkError
        A field the conversion needs is missing or malformed (the message names the JSON path).
    """
    d, p = src.data, src.path
    cfg = _get(d, "config", p, types=dict)
    backend = _get(d, "config.backend", p, types=dict)
    for key, want in (("name", "pytorch"), ("library", "transformers"), ("task", "text-generation"),
                      ("device", "cuda")):
        got = _get(d, f"config.backend.{key}", p, types=str)
        if got != want:
            raise OptimumBenchmarkError(p, f"config.backend.{key}", f"{got!r}: only {want!r} reports are converted")
    if _get(d, "config.backend.no_weights", p, required=False):
        raise OptimumBenchmarkError(p, "config.backend.no_weights", "true: random weights are not converted")
    model_given = _get(d, "config.backend.model", p, types=str)
    model_id = src.sidecar.get("model") or model_given
    ids = _device_ids(_get(d, "config.backend.device_ids", p), p)
    device_map = _get(d, "config.backend.device_map", p, allow_none=True)
    env = _get(d, "config.environment", p, types=dict)
    tf_version = _get(d, "config.environment.transformers_version", p, types=str)
    torch_version = _get(d, "config.backend.version", p, types=str)
    ob_version = _get(d, "config.environment.optimum_benchmark_version", p, types=str)
    acc_version = _get(d, "config.environment.accelerate_version", p, required=False)
    scenario = _get(d, "config.scenario", p, types=dict)
    if _get(d, "config.scenario.memory", p, types=bool) is not True:
        raise OptimumBenchmarkError(p, "config.scenario.memory", "false: the run tracked no memory")
    batch = _get(d, "config.scenario.input_shapes.batch_size", p, types=int)
    prompt = _get(d, "config.scenario.input_shapes.sequence_length", p, types=int)
    max_new = _get(d, "config.scenario.generate_kwargs.max_new_tokens", p, types=int)
    min_new = _get(d, "config.scenario.generate_kwargs.min_new_tokens", p, types=int)
    if min_new != max_new:
        raise OptimumBenchmarkError(p, "config.scenario.generate_kwargs.min_new_tokens",
                                    f"{min_new} != max_new_tokens {max_new}: the number of new tokens is not fixed")
    gen_kwargs = scenario["generate_kwargs"]
    gpu_name = _gpu(env, ids, src)

    qkey, quant, qdesc = _quantization(backend, src)
    dtype, dtype_note = _dtype(backend, qkey, src)
    attn = backend.get("attn_implementation")
    attn_text = attn or "sdpa (attn_implementation null: transformers' default for Llama since 4.36)"
    cache_impl = gen_kwargs.get("cache_implementation") or backend.get("cache_implementation")

    flags = set(src.sidecar.get("flags") or ())
    # every measured call follows the warm-up and latency generate() calls in the same
    # process, with no empty_cache(): reserved and NVML figures hold their cached segments
    flags.add("cache_from_warmup")
    n_visible = len(ids)
    if device_map:
        n_gpu, scope = n_visible, ("sum_over_gpus" if n_visible > 1 else "per_gpu")
    else:
        n_gpu, scope = 1, "per_gpu"
        if n_visible > 1:
            flags.add("extra_visible_gpus")
    keep_total = "extra_visible_gpus" not in flags

    versions = f"transformers {tf_version}; torch {torch_version}"
    if acc_version:
        versions += f"; accelerate {acc_version}"
    versions += f"; optimum-benchmark {ob_version}"
    reasons = [EXCLUDING_FLAGS[f] for f in sorted(flags) if f in EXCLUDING_FLAGS]

    out = []
    for target, (phase, what) in PHASES.items():
        mem_path = f"report.{target}.memory"
        _get(d, mem_path, p, types=dict)
        unit = _get(d, f"{mem_path}.unit", p, types=str)
        if unit != "MB":
            raise OptimumBenchmarkError(p, f"{mem_path}.unit", f"{unit!r}: only 'MB' (1e6 bytes) is known")
        measured, used = {}, []
        for field, key in _MEASURES:
            if field == "peak_total_mb" and not keep_total:
                continue
            v = _get(d, f"{mem_path}.{key}", p, types=(int, float))
            if v < 0:
                raise OptimumBenchmarkError(p, f"{mem_path}.{key}", f"negative memory {v!r}")
            measured[field] = float(v)
            used.append(f"{mem_path}.{key} = {v}")
        process_vram = _get(d, f"{mem_path}.max_process_vram", p, types=(int, float), required=False)
        if process_vram is not None:
            used.append(f"{mem_path}.max_process_vram = {process_vram} (not stored)")
        if not keep_total:
            gv = _get(d, f"{mem_path}.max_global_vram", p, types=(int, float), required=False)
            used.append(f"{mem_path}.max_global_vram = {gv} (not stored: sums {n_visible} visible devices)")
        new_tokens = 1 if target == "prefill" else max_new
        context = prompt if target == "prefill" else prompt + max_new
        if cache_impl == "static":
            context = prompt + max_new  # the static cache built by the first generate() is reused
        evidence = (f"{src.rel}: config.backend.model = {model_given!r}; input_shapes batch_size {batch}, "
                    f"sequence_length {prompt}; generate_kwargs max_new_tokens {max_new}; device_ids "
                    f"{_get(d, 'config.backend.device_ids', p)!r}; " + "; ".join(used) + " (MB)")
        notes = [
            f"One optimum-benchmark run ({src.run}), report target '{target}': {what}, measured after the "
            f"warm-up and latency generate() calls in the same process (no empty_cache).",
            "peak_allocated_mb = max_allocated (torch.cuda.max_memory_allocated / 1e6 summed over the visible "
            "devices, peak statistics reset before the call); peak_reserved_mb = max_reserved "
            "(torch.cuda.max_memory_reserved / 1e6, likewise; it keeps the segments cached by the earlier calls).",
            ("peak_total_mb = max_global_vram: NVML device-level used memory (nvmlDeviceGetMemoryInfo.used, all "
             "processes) summed over device_ids, sampled every 10 ms during the call; the measure earlier "
             "optimum-benchmark profiles store as peak_total (2023 max_memory_used, NVML device used). "
             "max_process_vram (NVML, this process only) is quoted in the evidence, not stored."
             if keep_total else
             f"No peak_total: max_global_vram sums NVML device-used memory over all {n_visible} visible devices "
             f"({_get(d, 'config.backend.device_ids', p)!r}) while device_map null puts the model on one; the torch "
             "figures of the idle devices are 0, so allocated and reserved are the one GPU's."),
            "Printed unit 'MB' = 1e6 bytes (optimum-benchmark trackers/memory.py divides bytes by 1e6; v0.5.0, "
            "same in 0.6.0).",
        ]
        if scope == "sum_over_gpus":
            notes.append(f"device_map {device_map!r} over devices {ids}: accelerate splits the layers over the "
                         f"{n_visible} GPUs (sequential, one GPU busy at a time), recorded as parallel.pp "
                         f"{n_visible}; every figure is the sum over the {n_visible} GPUs.")
        if dtype_note:
            notes.append(dtype_note + ".")
        if qdesc:
            notes.append(f"Quantization from the report: {qdesc}.")
        if cache_impl:
            notes.append(f"generate cache_implementation {cache_impl!r}.")
        if src.sidecar.get("model") and src.sidecar["model"] != model_given:
            notes.append(f"Model id {src.sidecar['model']!r} is a reviewed judgement (sidecar); the report gives "
                         f"{model_given!r}.")
        if src.sidecar.get("notes"):
            notes.append(str(src.sidecar["notes"]).strip())
        engine_settings = {"attention_impl": attn_text}
        if cache_impl:
            engine_settings["cache_implementation"] = cache_impl
        if device_map:
            engine_settings["device_map"] = str(device_map)
        if backend.get("torch_compile"):
            engine_settings["torch_compile"] = True
        precision = {"dtype": dtype, "quantization": quant, "kv_cache_dtype": dtype}
        model = {"id": model_id, "name_as_given": model_given}
        wf = src.sidecar.get("weight_format") or (quant if quant else None)
        if wf:
            model["weight_format"] = wf
        pid = f"{FRAMEWORK}-{_slug(model_id)}-" + hashlib.sha256(f"{src.sha256}:{target}".encode()).hexdigest()[:10]
        profile = {
            "schema_version": 1,
            "profile_id": pid,
            "framework": FRAMEWORK,
            "framework_version": versions,
            "framework_variant": "transformers generate() via optimum-benchmark (pytorch backend, process launcher)",
            "model": model,
            "gpu": {"name": gpu_name, "count": n_gpu},
            "parallel": {"pp": n_gpu} if scope == "sum_over_gpus" else None,
            "workload": {"batch_size": batch, "input_len": prompt, "output_len": new_tokens,
                         "context_len": context, "phase": phase},
            "precision": {k: v for k, v in precision.items() if v is not None},
            "engine_settings": engine_settings,
            "kv_cache_mode": "growing",
            "measured": measured,
            "measured_scope": scope,
            "measurement_notes": " ".join(notes),
            "series": f"optimum-benchmark-{src.run}_generate_{'prefill-1tok' if target == 'prefill' else f'decode-{max_new}tok'}",
            "use_in_fit": not reasons,
            "flags": sorted(flags),
            "provenance": {k: v for k, v in {
                "kind": "public-log",
                "url": src.sidecar["url"],
                "evidence": evidence,
                "date": src.sidecar.get("date"),
                "notes": f"optimum-benchmark config name {cfg.get('name')!r}; report target '{target}'.",
                "source_file": src.rel,
                "source_sha256": src.sha256,
                "converter": CONVERTER,
            }.items() if v is not None},
        }
        if profile["parallel"] is None:
            del profile["parallel"]
        if reasons:
            profile["exclude_reason"] = "; ".join(reasons)
        try:
            out.append(validate_profile(profile))
        except ProfileError as exc:
            raise OptimumBenchmarkError(p, exc.field, f"converted profile invalid: {exc.reason}") from None
    return out


def convert_reports(root) -> tuple[list[dict], list[str]]:
    """Convert every ``<root>/transformers/reports/*.report``.

    Returns
    -------
    (profiles, problems)
        Profiles in file order; ``problems`` lists the reports left out with the reason
        (``<file>: <field>: <reason>``).
    """
    root = Path(root)
    profiles, problems = [], []
    for path in sorted((root / FRAMEWORK / REPORTS_DIR).glob("*" + REPORT_SUFFIX)):
        try:
            profiles.extend(convert_report(read_report(path, root)))
        except OptimumBenchmarkError as exc:
            problems.append(str(exc))
    seen = {}
    for prof in profiles:
        if prof["profile_id"] in seen:
            problems.append(f"duplicate profile id {prof['profile_id']} ({seen[prof['profile_id']]})")
        seen[prof["profile_id"]] = prof["provenance"]["source_file"]
    return profiles, problems


def is_ours(path) -> bool:
    """True when ``path`` is a profile this converter wrote."""
    return (profile_converter(path) or "").startswith("fitting.ingest.optimum_benchmark")


def write_reports(profiles: list[dict], root) -> list[Path]:
    """Write the profiles to ``<root>/transformers/`` (atomic per file); remove this converter's stale files."""
    return write_converter_output(profiles, root, "fitting.ingest.optimum_benchmark", (FRAMEWORK,))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitting.ingest.optimum_benchmark",
        description="Convert the optimum-benchmark reports under ROOT/transformers/reports/*.report (each with its "
                    "<run>.source.yaml) into profiles under ROOT/transformers/ (one per phase: prefill, decode).")
    parser.add_argument("--root", default="profiles/public", help="profile root (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="convert and list, write nothing")
    args = parser.parse_args(argv)
    profiles, problems = convert_reports(args.root)
    for problem in problems:
        print(f"left out: {problem}", file=sys.stderr)
    if not args.dry_run:
        write_reports(profiles, args.root)
    print(f"{'profile':<66}{'phase':<10}{'alloc MB':>12}{'in fit':>8}")
    for p in profiles:
        print(f"{p['profile_id']:<66}{p['workload']['phase']:<10}{p['measured']['peak_allocated_mb']:>12.1f}"
              f"{'yes' if p['use_in_fit'] else 'no':>8}")
    print(f"{len(profiles)} profile(s) from {len({p['provenance']['source_file'] for p in profiles})} report(s)"
          + (" (dry run: nothing written)" if args.dry_run else ""))
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
