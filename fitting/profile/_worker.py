"""One transformers scenario in a fresh process: ``python -m fitting.profile._worker --scenario JSON ...``.

Writes ``{"status": "ok", "measured": ..., "details": ..., "versions": ...}`` or
``{"status": "error", "error_type": ..., "message": ...}`` to ``--result`` and exits
0 / 1. The parent (:func:`fitting.profile.transformers_runner.run_transformers_scenario`)
classifies failures from the message and this process's output.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from fitting.profile.records import write_json_atomic
from fitting.profile.study import Scenario
from fitting.profile.transformers_runner import (
    UNSUPPORTED_MARKER,
    UnsupportedScenario,
    measure_in_process,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fitting.profile._worker",
                                     description="Measure one transformers scenario (internal).")
    parser.add_argument("--scenario", required=True, help="scenario fields as JSON")
    parser.add_argument("--device", default="cuda:0", help="cuda:K or cpu")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)

    scenario = Scenario(**json.loads(args.scenario))
    try:
        payload = measure_in_process(scenario, device=args.device)
    except UnsupportedScenario as exc:
        print(f"{UNSUPPORTED_MARKER} {exc}", flush=True)
        write_json_atomic({"status": "error", "error_type": "UnsupportedScenario",
                           "message": f"{UNSUPPORTED_MARKER} {exc}"}, args.result)
        return 1
    except Exception as exc:  # every failure becomes a classified record in the parent
        traceback.print_exc()
        sys.stderr.flush()
        write_json_atomic({"status": "error", "error_type": type(exc).__name__,
                           "message": f"{type(exc).__name__}: {exc}"}, args.result)
        return 1
    payload["status"] = "ok"
    print("fitting.profile worker: " + " ".join(f"{k}={v}" for k, v in sorted(payload["measured"].items())),
          flush=True)
    write_json_atomic(payload, args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
