#!/usr/bin/env bash
# Run a transformers-backend profiling study on a bare CUDA machine and leave the results in $OUT.
#
#   bash scripts/device_study.sh prepare            # on a machine with PyPI: wheels -> .whl/ (git-ignored)
#   bash scripts/device_study.sh run [STUDY.yaml]   # on the GPU machine (no network): install .whl/, run, pack
#
# The GPU machine is expected to have python3 with a CUDA build of torch, nvidia-ml-py, pyyaml and tqdm
# (the workplace's CUDA image has them). `prepare` downloads what it may lack, for CPython 3.12 on
# x86-64 Linux: transformers (the version the tests here ran with, which has the fp8 KV cache) and the
# regex it checks at import, jsonschema and its dependencies (profile validation). `run` installs them into /tmp/site without
# network, runs the study (default studies/device_smoke.yaml, --budget-s 420 so that it ends within
# ~8 minutes), and writes to $OUT: profiles.tar.gz (the profiles, errors/ and logs/), study.log,
# env.txt. docs/profiling.md says what to do with them.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-run}
STUDY=${2:-studies/device_smoke.yaml}
WHEEL_DIR=${WHEEL_DIR:-.whl}
BUDGET_S=${BUDGET_S:-420}
TRANSFORMERS_VERSION=${TRANSFORMERS_VERSION:-5.24.0}

case "$MODE" in
prepare)
    PY=${PYTHON:-python3}
    [ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
    if EXCLUDE=$(git rev-parse --git-path info/exclude 2>/dev/null) && ! grep -qx "/$WHEEL_DIR/" "$EXCLUDE" 2>/dev/null; then
        mkdir -p "$(dirname "$EXCLUDE")" && echo "/$WHEEL_DIR/" >> "$EXCLUDE"
    fi
    mkdir -p "$WHEEL_DIR"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEEL_DIR" \
        "transformers==$TRANSFORMERS_VERSION" jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
        referencing==0.37.0 rpds-py==2026.9.1 regex==2026.11.19
    ls -l "$WHEEL_DIR"
    du -sh "$WHEEL_DIR"
    ;;
run)
    OUT=${OUT:-$PWD/device-out}
    WORK=${WORK:-/tmp/device-profiles}
    mkdir -p "$OUT" "$WORK"
    PY=${PYTHON:-python3}
    if compgen -G "$WHEEL_DIR/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEEL_DIR"/*.whl
        export PYTHONPATH="/tmp/site:$PWD"
    else
        echo "no wheels in $WHEEL_DIR: using the machine's packages (run 'prepare' first for fp8 KV and validation)"
        export PYTHONPATH="$PWD"
    fi
    export PYTHONUNBUFFERED=1
    {
        date -u +%Y-%m-%dT%H:%M:%SZ
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
        "$PY" - <<'EOF'
import importlib.metadata as md, sys
import torch
print("python", sys.version.split()[0])
for d in ("torch", "transformers", "nvidia-ml-py", "jsonschema", "pyyaml", "tqdm"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "MISSING")
print("cuda available", torch.cuda.is_available(), "torch cuda", torch.version.cuda)
assert torch.cuda.is_available(), "no CUDA device"
EOF
    } 2>&1 | tee "$OUT/env.txt"
    set +e
    "$PY" -m fitting.profile "$STUDY" --backend transformers --out "$WORK" --resume \
        --budget-s "$BUDGET_S" --no-progress 2>&1 | tee "$OUT/study.log"
    status=${PIPESTATUS[0]}
    set -e
    tar -C "$WORK" -czf "$OUT/profiles.tar.gz" .
    echo "profiles: $(find "$WORK" -maxdepth 1 -name '*.json' | wc -l)," \
         "errors: $(find "$WORK/errors" -name '*.json' 2>/dev/null | wc -l), exit $status" | tee -a "$OUT/study.log"
    exit "$status"
    ;;
*)
    echo "usage: bash scripts/device_study.sh prepare | run [STUDY.yaml]" >&2
    exit 2
    ;;
esac
