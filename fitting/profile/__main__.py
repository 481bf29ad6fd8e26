"""``python -m fitting.profile STUDY.yaml``: run a profiling study, one scenario at a time.

Every scenario ends as a file: a schema-v1 profile ``<out>/<id>.json`` or an error record
``<out>/errors/<id>.json``; a failing scenario never stops the study. ``--resume`` skips
scenarios with a profile or a final error record; ``--shard K/N`` runs the K-th of N
disjoint parts (a Slurm array: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``
with ``--array=1-N``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from fitting.data.registry import resolve_model
from fitting.profile import records
from fitting.profile.errors import ErrorInfo
from fitting.profile.nvml import visible_gpu_indices
from fitting.profile.study import (
    StudyError,
    load_study,
    parse_shard,
    shard,
    with_backend,
)
from fitting.profile.transformers_runner import (
    run_transformers_scenario,
    worker_command,
)
from fitting.profile.vllm_runner import (
    build_vllm_command,
    resolve_trust_remote_code,
    run_vllm_scenario,
)

DEFAULT_TIMEOUT_S = 1800.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fitting.profile",
        description="Run a GPU-memory profiling study (studies/*.yaml) and write one profile or error record "
                    "per scenario.")
    p.add_argument("study", help="study YAML file (e.g. studies/batch_scaling.yaml)")
    p.add_argument("--backend", choices=("vllm", "transformers"), default=None,
                   help="run the study's scenarios with this backend (default: each scenario's own, vllm)")
    p.add_argument("--out", default="profiles/measured/", help="output directory (default: profiles/measured/)")
    p.add_argument("--dry-run", action="store_true", help="print the scenarios and their commands; run nothing")
    p.add_argument("--shard", default=None, metavar="K/N", help="run only the K-th of N disjoint shards (1 <= K <= N)")
    p.add_argument("--resume", action="store_true",
                   help="skip scenarios that already have a profile or a final error record in --out")
    p.add_argument("--timeout-s", type=float, default=None,
                   help=f"time limit of one scenario, seconds (default: the study's timeout_s, else {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--budget-s", type=float, default=None,
                   help="start no scenario after this many seconds; the rest is left for --resume")
    p.add_argument("--device", default="cuda:0", help="first CUDA device, cuda:K (default cuda:0)")
    p.add_argument("--vllm-executable", default="vllm", help="the vllm command (default: vllm)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _resolve_entries(scenarios, study_path):
    """Registry entry of every model of the study; a bad id is reported like a bad study field."""

    entries = {}
    for sc in scenarios:
        if sc.model in entries:
            continue
        try:
            entries[sc.model] = resolve_model(sc.model)
        except LookupError as exc:  # UnknownModelError (close ids listed), IncompleteModelError
            raise StudyError(study_path, "model", str(exc)) from None
    return entries


def _command(sc, entry, args, out_dir):
    if sc.backend == "vllm":
        argv = build_vllm_command(sc, trust_remote_code=resolve_trust_remote_code(sc, entry),
                                  executable=args.vllm_executable)
    else:
        argv = worker_command(sc, device=args.device,
                              result_path=records.log_path(out_dir, sc).with_suffix(".result"))
    return shlex.join(argv)


def _run_one(sc, entry, args, out_dir, timeout_s):
    log = records.log_path(out_dir, sc)
    if sc.backend == "vllm":
        return run_vllm_scenario(sc, log_path=log, trust_remote_code=resolve_trust_remote_code(sc, entry),
                                 timeout_s=timeout_s, device=args.device, executable=args.vllm_executable)
    return run_transformers_scenario(sc, log_path=log, device=args.device, timeout_s=timeout_s)


def main(argv=None) -> int:
    """Entry point; returns 0 when the study ran (errors are records), 2 on a bad study or option."""
    args = _parser().parse_args(argv)

    try:
        study = load_study(args.study)
        scenarios = with_backend(study.scenarios, args.backend)
        if args.shard:
            k, n = parse_shard(args.shard)
            scenarios = shard(scenarios, k, n)
        entries = _resolve_entries(scenarios, args.study)
    except (StudyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    timeout_s = args.timeout_s or study.timeout_s or DEFAULT_TIMEOUT_S
    shard_text = f" (shard {args.shard})" if args.shard else ""

    if args.dry_run:
        print(f"# study {study.name}: {len(scenarios)} scenarios{shard_text}, out {out_dir}, timeout {timeout_s:g} s")
        for sc in scenarios:
            status = records.scenario_status(out_dir, sc)
            print(f"{sc.id}\t[{status}]\t{_command(sc, entries[sc.model], args, out_dir)}")
        return 0

    envs = {}
    counts = Counter()
    start = time.monotonic()
    bar = tqdm(scenarios, desc=study.name, unit="scenario", disable=args.no_progress, file=sys.stderr)
    for i, sc in enumerate(bar, 1):
        status = records.scenario_status(out_dir, sc)
        if args.resume and status in ("profiled", "failed_final"):
            counts["skipped"] += 1
            continue
        if args.budget_s is not None and time.monotonic() - start > args.budget_s:
            counts["left_for_resume"] += 1
            continue
        bar.set_postfix_str(sc.id[-40:])
        if sc.tp not in envs:
            envs[sc.tp] = records.collect_environment(visible_gpu_indices(args.device, sc.tp))
        entry = entries[sc.model]
        try:
            result = _run_one(sc, entry, args, out_dir, timeout_s)
        except Exception as exc:  # a bug or an unexpected failure: a record, not a crash
            result = records.RunResult(False, error=ErrorInfo("unknown", f"{type(exc).__name__}: {exc}", {},
                                                              traceback.format_exc()[-4000:]))
        kwargs = dict(environment=envs[sc.tp], study_name=study.name,
                      weight_format=getattr(entry, "weight_format", None),
                      trust_remote_code=resolve_trust_remote_code(sc, entry))
        try:
            records.write_outcome(out_dir, sc, result, **kwargs)
        except Exception as exc:  # e.g. the measurement does not make a valid profile
            bad = records.RunResult(False, command=result.command, wall_s=result.wall_s,
                                    error=ErrorInfo("unknown", f"could not write the profile: {exc}", {},
                                                    result.evidence[-4000:]))
            records.write_outcome(out_dir, sc, bad, **kwargs)
            result = bad
        outcome = "profiled" if result.ok else f"error:{result.error.kind}"
        counts[outcome] += 1
        if args.no_progress:
            print(f"[{i}/{len(scenarios)}] {sc.id}: {outcome} ({result.wall_s:.1f} s)", file=sys.stderr, flush=True)
    bar.close()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
    print(f"study {study.name}{shard_text}: {len(scenarios)} scenarios: {summary}; out {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
