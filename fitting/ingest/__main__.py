"""``python -m fitting.ingest LOGFILE...``: framework logs -> profile JSON files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fitting.data.profiles import dumps_profile, write_profile

from . import FRAMEWORKS, NoMeasurementsError, parse_log


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m fitting.ingest",
        description="Read vLLM, llama.cpp, SGLang, TensorRT-LLM or TGI start-up logs and write one schema-v1 "
                    "profile per engine start (provenance kind 'ingested-log'). What the log does not state "
                    "comes from --model/--gpu/--gpu-memory-gib or stays missing.",
    )
    p.add_argument("logs", nargs="+", metavar="LOGFILE", help="log file(s) to read")
    p.add_argument("--framework", default="auto", choices=("auto", *FRAMEWORKS),
                   help="which framework printed the log (default: detect from the text)")
    p.add_argument("--out", default="profiles/ingested", metavar="DIR",
                   help="output directory; profiles go to DIR/<framework>/<profile_id>.json "
                        "(default: profiles/ingested)")
    p.add_argument("--dry-run", action="store_true", help="print the profiles as JSON instead of writing files")
    p.add_argument("--model", help="model id (Hugging Face id or registry alias) when the log does not name it")
    p.add_argument("--gpu", help="GPU name, e.g. 'NVIDIA H100 80GB HBM3'")
    p.add_argument("--gpu-memory-gib", type=float, metavar="GIB", help="memory of one GPU in GiB (2**30 bytes)")
    return p


def main(argv=None):
    """Run the CLI; returns the exit code (1 when a log had no measurements)."""
    args = _parser().parse_args(argv)
    if args.gpu_memory_gib is not None and not args.gpu_memory_gib > 0:
        print("error: --gpu-memory-gib must be positive", file=sys.stderr)
        return 2
    overrides = {"model": args.model, "gpu": args.gpu, "gpu_memory_gib": args.gpu_memory_gib}
    status = 0
    for name in args.logs:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            status = max(status, 2)
            continue
        try:
            profiles = parse_log(data, args.framework, source_name=path.name, overrides=overrides)
        except NoMeasurementsError as exc:
            print(f"no measurements found in {path}" + (f" ({exc.reason})" if exc.reason else ""), file=sys.stderr)
            status = max(status, 1)
            continue
        for profile in profiles:
            if args.dry_run:
                print(dumps_profile(profile), end="")
            else:
                target = write_profile(profile, Path(args.out) / profile["framework"])
                print(f"{path}: wrote {target}")
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
