"""Turn a scenario's outcome into a file: a schema-v1 profile, or an error record.

Layout of an output directory (``--out``)::

    <out>/<scenario_id>.json          profile (fitting/schemas/profile-v1.schema.json), provenance "measured"
    <out>/errors/<scenario_id>.json   error record (kind, final, message, details, log tail, command, environment)
    <out>/logs/<scenario_id>.log      everything the run printed

A profile or a *final* error record means "done" for ``--resume``.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fitting.data.profiles import validate_profile, write_profile
from fitting.profile.errors import ErrorInfo
from fitting.profile.nvml import gpu_info
from fitting.units import BYTES_PER_GIB
from fitting.version import __version__

ERROR_SCHEMA = "fitting.profile.error/1"
_VERSIONED = ("torch", "transformers", "vllm", "nvidia-ml-py", "accelerate")
#: Environment variables that change memory behaviour, recorded when set.
_ENV_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "CUDA_VISIBLE_DEVICES", "VLLM_USE_V1", "VLLM_ATTENTION_BACKEND",
             "VLLM_ALLOW_LONG_MAX_MODEL_LEN")


@dataclass
class RunResult:
    """What a runner measured for one scenario.

    Attributes
    ----------
    ok : bool
    measured : dict
        Schema-v1 ``measured`` fields (``<quantity>_<unit>``, e.g. ``peak_allocated_bytes``;
        ``kv_cache_tokens``, ``num_gpu_blocks``). Per GPU.
    command : list of str
        The exact argument list that ran.
    evidence : str
        The numbers exactly as printed by the run.
    error : ErrorInfo or None
        Set when ``ok`` is false.
    engine_settings : dict
        Extra scalar settings to record (e.g. the KV-cache implementation).
    notes : str
        What each figure is (``measurement_notes``).
    versions : dict
        Versions the run itself reported (e.g. the worker's torch and CUDA).
    engine : str or None
        Engine generation where it matters (vLLM ``v0``/``v1``).
    flags : list of str
    wall_s : float
    """

    ok: bool
    measured: dict = field(default_factory=dict)
    command: list = field(default_factory=list)
    evidence: str = ""
    error: ErrorInfo | None = None
    engine_settings: dict = field(default_factory=dict)
    notes: str = ""
    versions: dict = field(default_factory=dict)
    engine: str | None = None
    flags: list = field(default_factory=list)
    wall_s: float = 0.0


# --------------------------------------------------------------------------- paths and status


def profile_path(out_dir, scenario) -> Path:
    """``<out>/<scenario_id>.json``."""
    return Path(out_dir) / f"{scenario.id}.json"


def error_path(out_dir, scenario) -> Path:
    """``<out>/errors/<scenario_id>.json``."""
    return Path(out_dir) / "errors" / f"{scenario.id}.json"


def log_path(out_dir, scenario) -> Path:
    """``<out>/logs/<scenario_id>.log``."""
    return Path(out_dir) / "logs" / f"{scenario.id}.log"


def scenario_status(out_dir, scenario) -> str:
    """``"profiled"``, ``"failed_final"`` (a final error record), ``"failed_retry"`` or ``"todo"``."""
    if profile_path(out_dir, scenario).exists():
        return "profiled"
    path = error_path(out_dir, scenario)
    if path.exists():
        try:
            final = bool(json.loads(path.read_text()).get("final"))
        except (OSError, ValueError):
            final = False
        return "failed_final" if final else "failed_retry"
    return "todo"


def write_json_atomic(obj, path) -> Path:
    """Write ``obj`` as indented JSON via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# --------------------------------------------------------------------------- environment


def _version(dist: str):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_environment(gpu_indices=(0,)) -> dict:
    """GPU name, driver, CUDA and package versions of this machine (no CUDA context is created).

    Parameters
    ----------
    gpu_indices : sequence of int
        NVML indices of the GPUs the scenario uses.
    """

    env = {"python": platform.python_version(), "platform": platform.platform(), "fitting": __version__}
    env.update(gpu_info(list(gpu_indices)))
    env["versions"] = {d: _version(d) for d in _VERSIONED}
    env["env_vars"] = {k: os.environ[k] for k in _ENV_VARS if k in os.environ}
    try:  # torch.version.cuda does not touch the GPU
        import torch  # optional dependency (profile extra)

        env["torch_cuda"] = torch.version.cuda
    except Exception:
        env["torch_cuda"] = None
    return env


# --------------------------------------------------------------------------- records


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _command_text(command) -> str:
    return shlex.join([str(a) for a in command]) if command else ""


def profile_record(scenario, result: RunResult, *, environment: dict, study_name: str | None = None,
                   weight_format: str | None = None, trust_remote_code: bool | None = None) -> dict:
    """Build the schema-v1 profile of a successful run.

    Parameters
    ----------
    scenario : Scenario
    result : RunResult
        ``ok`` must be true.
    environment : dict
        From :func:`collect_environment` (updated with ``result.versions``).
    study_name : str, optional
        Recorded as ``series``.
    weight_format : str, optional
        The registry's weight format of the model (quantized checkpoints).
    trust_remote_code : bool, optional
        What the run used.

    Returns
    -------
    dict
        A profile valid against ``profile-v1.schema.json`` (checked with
        :func:`fitting.data.profiles.validate_profile`, which raises ``ProfileError``).
    """
    if not result.ok:
        raise ValueError("profile_record needs a successful RunResult")
    env = dict(environment)
    env.update({k: v for k, v in result.versions.items() if v is not None})
    backend = scenario.backend
    framework_version = (env.get("versions") or {}).get(backend)
    total = env.get("gpu_memory_total_bytes")
    pool = backend == "vllm"
    settings = {
        "enforce_eager": scenario.enforce_eager,
        "load_format": scenario.load_format,
        "trust_remote_code": trust_remote_code,
    }
    if pool:
        settings["gpu_memory_utilization"] = scenario.gpu_memory_utilization
    settings.update(result.engine_settings)
    flags = list(result.flags)
    if scenario.load_format == "dummy" or backend == "transformers":
        flags.append("random_weights")
    record = {
        "schema_version": 1,
        "profile_id": scenario.id,
        "framework": backend,
        "framework_version": framework_version,
        "framework_variant": "vllm bench latency" if pool else "fitting.profile transformers runner (generate)",
        "engine": result.engine,
        "model": {"id": scenario.model, "name_as_given": scenario.model, "weight_format": weight_format},
        "gpu": {"name": env.get("gpu_name"), "memory_gib": total / BYTES_PER_GIB if total else None,
                "count": scenario.tp},
        "parallel": {"tp": scenario.tp, "pp": 1},
        "workload": {
            "batch_size": scenario.batch_size,
            "input_len": scenario.input_len,
            "output_len": scenario.output_len,
            "context_len": scenario.context_len,
            "max_model_len": scenario.context_len if pool else None,
        },
        "precision": {"dtype": scenario.dtype, "quantization": scenario.quantization,
                      "kv_cache_dtype": scenario.kv_cache_dtype},
        "engine_settings": {k: v for k, v in settings.items() if isinstance(v, (str, int, float, bool)) or v is None},
        "kv_cache_mode": "pool" if pool else "growing",
        "measured": dict(result.measured),
        "measured_scope": "per_gpu",
        "measurement_notes": result.notes or None,
        "series": study_name,
        "use_in_fit": True,
        "exclude_reason": None,
        "flags": sorted(set(flags)),
        "provenance": {
            "kind": "measured",
            "evidence": result.evidence or "(no output captured)",
            "date": _now(),
            "run_id": scenario.id,
            "ref": f"study {study_name}" if study_name else None,
            "command": _command_text(result.command),
            "environment": env,
            "converter": f"fitting.profile {env.get('fitting')}",
        },
    }

    validate_profile(record)
    return record


def error_record(scenario, error: ErrorInfo, *, environment: dict, command=(), study_name: str | None = None,
                 wall_s: float | None = None) -> dict:
    """Build the error record of a failed scenario (see :data:`ERROR_SCHEMA`).

    The record keeps the whole scenario, the classified error (with the size that failed
    for ``out_of_memory``), the exact command and the environment, so that the failure is
    data: an out-of-memory error marks the memory frontier.
    """
    return {
        "schema": ERROR_SCHEMA,
        "scenario_id": scenario.id,
        "study": study_name,
        "backend": scenario.backend,
        "scenario": scenario.to_dict(),
        **error.to_dict(),
        "command": _command_text(command),
        "environment": environment,
        "date": _now(),
        "wall_s": wall_s,
    }


def write_outcome(out_dir, scenario, result: RunResult, *, environment: dict, study_name=None,
                  weight_format=None, trust_remote_code=None) -> Path:
    """Write the profile (and drop a stale error record) or the error record; return the path."""
    if result.ok:

        record = profile_record(scenario, result, environment=environment, study_name=study_name,
                                weight_format=weight_format, trust_remote_code=trust_remote_code)
        path = write_profile(record, out_dir)
        stale = error_path(out_dir, scenario)
        if stale.exists():
            stale.unlink()
        return path
    record = error_record(scenario, result.error, environment=environment, command=result.command,
                          study_name=study_name, wall_s=result.wall_s)
    return write_json_atomic(record, error_path(out_dir, scenario))
