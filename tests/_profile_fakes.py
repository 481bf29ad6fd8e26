"""SIMULATED stand-in for the ``vllm`` executable, for the profiling tests (no GPU, no vLLM).

It prints log lines quoted from real vLLM issues: the start-up memory lines of
https://github.com/vllm-project/vllm/issues/10517 (Llama-3.1-8B on an RTX 3090) and the
out-of-memory message of https://github.com/vllm-project/vllm/issues/16343.
"""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

REAL_LOG = textwrap.dedent("""\
    INFO 12-02 10:00:00 model_runner.py:1077] Loading model weights took 14.9888 GB
    INFO 12-02 10:00:05 worker.py:232] Memory profiling results: total_gpu_memory=23.58GiB initial_memory_usage=15.34GiB peak_torch_memory=17.06GiB memory_usage_post_profile=15.35GiB non_torch_memory=0.35GiB kv_cache_size=3.81GiB gpu_memory_utilization=0.90
    INFO 12-02 10:00:05 gpu_executor.py:113] # GPU blocks: 1952, # CPU blocks: 2048
    INFO 12-02 10:00:05 gpu_executor.py:117] Maximum concurrency for 20000 tokens per request: 1.56x
    """)
REAL_OOM = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a total capacity of "
            "23.68 GiB of which 212.81 MiB is free.")  # https://github.com/vllm-project/vllm/issues/16343


def fake_vllm(tmp_path: Path) -> Path:
    """A stand-in ``vllm``: batch 64 -> OOM, batch 32 -> crash, batch 99 -> hang, else the real log.
    Every call appends its argv to $FAKE_VLLM_CALLS."""
    script = tmp_path / "vllm"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import json, os, sys, time
        with open(os.environ["FAKE_VLLM_CALLS"], "a") as fh:
            fh.write(json.dumps(sys.argv[1:]) + "\\n")
        batch = int(sys.argv[sys.argv.index("--batch-size") + 1])
        if batch == 64:
            print("Traceback (most recent call last):\\n" + {REAL_OOM!r}, file=sys.stderr); sys.exit(1)
        if batch == 32:
            print("Segmentation fault", file=sys.stderr); sys.exit(139)
        if batch == 99:
            time.sleep(60)
        sys.stdout.write({REAL_LOG!r}); sys.exit(0)
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script
