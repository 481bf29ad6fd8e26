"""vLLM backend: one ``vllm bench latency`` run per scenario.

The command is an argument list (no shell). The run's log is kept; its memory lines are
parsed by the ingest parser (:func:`fitting.ingest.parse_log`), and the per-GPU peak seen
by the driver is sampled with NVML in a background thread for the whole run (vLLM's
engine core is a child process, which torch counters in the parent cannot see).

vLLM preallocates its KV pool from ``gpu_memory_utilization``: the NVML peak is that
fraction of the GPU, whatever the model. What the fit uses is the non-KV footprint the
log reports (weights, non-torch memory, activation peak, CUDA graphs).
"""

from __future__ import annotations

import os
import re

from fitting.ingest import NoMeasurementsError, parse_log
from fitting.profile._proc import run_logged
from fitting.profile.errors import classify_error
from fitting.profile.nvml import NvmlSampler, visible_gpu_indices
from fitting.profile.records import RunResult

#: Log lines kept as evidence (the memory figures vLLM prints at start-up).
_EVIDENCE_RE = re.compile(
    r"(weights took|Model loading took|[Mm]emory profiling|memory usage|KV cache|GPU blocks|"
    r"CUDA graph|cuda graph|Maximum concurrency|non_torch|peak_torch|activation)"
)


def resolve_trust_remote_code(scenario, entry=None) -> bool:
    """The study's explicit ``trust_remote_code`` if given, else the registry entry's (default False)."""
    if scenario.trust_remote_code is not None:
        return bool(scenario.trust_remote_code)
    return bool(getattr(entry, "trust_remote_code", False))


def build_vllm_command(scenario, *, trust_remote_code: bool = False, executable: str = "vllm",
                       num_iters_warmup: int = 1, num_iters: int = 1, output_json=None) -> list[str]:
    """The ``vllm bench latency`` argument list of a scenario.

    Parameters
    ----------
    scenario : Scenario
        ``input_len``/``output_len`` in tokens, ``batch_size`` sequences, ``tp`` GPUs.
    trust_remote_code : bool
        Adds ``--trust-remote-code`` (from :func:`resolve_trust_remote_code`).
    executable : str
        The ``vllm`` entry point.
    num_iters_warmup, num_iters : int
        Latency iterations; memory does not depend on them, so one of each.
    output_json : path, optional
        ``--output-json`` target for the latency numbers.

    Returns
    -------
    list of str
        E.g. ``["vllm", "bench", "latency", "--model", "Qwen/Qwen2.5-7B", "--input-len", "512", ...]``.
    """
    argv = [
        executable, "bench", "latency",
        "--model", scenario.model,
        "--input-len", str(scenario.input_len),
        "--output-len", str(scenario.output_len),
        "--batch-size", str(scenario.batch_size),
        "--tensor-parallel-size", str(scenario.tp),
        "--dtype", scenario.dtype,
        "--kv-cache-dtype", scenario.kv_cache_dtype,
        "--max-model-len", str(scenario.context_len),
        "--gpu-memory-utilization", repr(float(scenario.gpu_memory_utilization)),
        "--num-iters-warmup", str(num_iters_warmup),
        "--num-iters", str(num_iters),
    ]
    if scenario.quantization:
        argv += ["--quantization", scenario.quantization]
    if scenario.enforce_eager:
        argv.append("--enforce-eager")
    if scenario.load_format == "dummy":
        argv += ["--load-format", "dummy"]
    if trust_remote_code:
        argv.append("--trust-remote-code")
    if output_json is not None:
        argv += ["--output-json", str(output_json)]
    return argv


def parse_vllm_log(text: str) -> dict:
    """Memory figures of a vLLM log, via the ingest parser (imported here, lazily).

    Returns
    -------
    dict
        ``measured`` (schema-v1 fields as printed; empty when the log has no memory line),
        ``engine``, ``framework_version``, ``evidence`` (the lines as printed) and
        ``notes`` of the last engine start in the log.
    """

    try:
        profiles = parse_log(text, framework="vllm", source_name="vllm bench latency log")
    except NoMeasurementsError:
        return {"measured": {}, "engine": None, "framework_version": None, "evidence": "", "notes": "",
                "engine_settings": {}}
    last = profiles[-1]
    eng = last.get("engine_settings") or {}
    return {
        "measured": {k: v for k, v in (last.get("measured") or {}).items() if v is not None},
        "engine": last.get("engine"),
        "framework_version": last.get("framework_version"),
        "evidence": (last.get("provenance") or {}).get("evidence") or "",
        "notes": last.get("measurement_notes") or "",
        # what the log itself says decides mechanisms: the GPU model runner, the torch.compile
        # cache state (a cold compile counts its temporaries as activations) and vLLM's own
        # CUDA-graph estimate
        "engine_settings": {k: eng[k] for k in ("model_runner", "compile_cache", "cuda_graph_estimate_gib")
                            if eng.get(k) is not None},
    }


def _evidence(text: str, limit: int = 2000) -> str:
    lines = [ln.strip() for ln in text.splitlines() if _EVIDENCE_RE.search(ln)]
    return "\n".join(lines)[-limit:]


def run_vllm_scenario(scenario, *, log_path, trust_remote_code: bool = False, timeout_s: float | None = None,
                      device: str = "cuda:0", executable: str = "vllm") -> RunResult:
    """Run one scenario with ``vllm bench latency`` and measure it.

    Parameters
    ----------
    scenario : Scenario
    log_path : path
        Where the run's output goes.
    trust_remote_code : bool
    timeout_s : float, optional
        Wall-clock limit, seconds; the whole process group is stopped at it.
    device : str
        First CUDA device (``cuda:K``); ``tp`` GPUs from there are sampled.
    executable : str
        The ``vllm`` entry point.

    Returns
    -------
    RunResult
        ``measured``: the parsed log figures plus ``peak_total_bytes`` (NVML, per GPU,
        maximum over the run's GPUs, minus the memory in use before the start).
    """
    argv = build_vllm_command(scenario, trust_remote_code=trust_remote_code, executable=executable)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sampler = NvmlSampler(visible_gpu_indices(device, scenario.tp))
    sampler.start()
    try:
        proc = run_logged(argv, log_path, timeout_s=timeout_s, env=env)
    finally:
        sampler.stop()
    if proc.timed_out or proc.returncode != 0:
        error = classify_error(proc.log_text, timed_out=proc.timed_out, timeout_s=timeout_s,
                               returncode=proc.returncode)
        return RunResult(False, command=argv, error=error, wall_s=proc.wall_s)
    parsed = parse_vllm_log(proc.log_text)
    measured = dict(parsed["measured"])
    notes = ["Figures from vLLM's own start-up log (parsed by fitting.ingest), per GPU, as printed."]
    if parsed["notes"]:
        notes.append(parsed["notes"])
    if sampler.available and sampler.peak_bytes:
        peaks = sampler.peak_over_baseline_bytes()
        measured["peak_total_bytes"] = int(max(peaks.values()))
        notes.append("peak_total_bytes: NVML device 'used' peak over the run minus 'used' before the start, "
                     "maximum over the run's GPUs; it includes the preallocated KV pool "
                     f"(gpu_memory_utilization={scenario.gpu_memory_utilization}).")
    if not measured:
        error = classify_error(proc.log_text + "\nno memory figure found in the vLLM log", returncode=0)
        return RunResult(False, command=argv, error=error, wall_s=proc.wall_s)
    evidence = parsed["evidence"] or _evidence(proc.log_text)
    versions = {"vllm_version_printed": parsed["framework_version"]} if parsed["framework_version"] else {}
    return RunResult(True, measured=measured, command=argv, evidence=evidence, notes=" ".join(notes),
                     engine=parsed["engine"], wall_s=proc.wall_s, versions=versions,
                     engine_settings={**parsed["engine_settings"], "nvml_samples": sampler.samples})
