"""python -m fitting.plan: GPU x tp candidates with probabilities, ranked by GPUs used, then headroom."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fitting import plan as P
from fitting.estimator import Estimator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vllm():
    return Estimator.from_file(ROOT / "fitted_params" / "vllm")


def test_ranking_and_qualification(vllm):
    rows = P.plan(vllm, "meta-llama/Llama-3.1-70B-Instruct", gpus=["H100-80GB", "L40S", "MI300X"], context=32768,
                  concurrency=16)
    assert rows and rows[0]["qualifies"]
    quals = [r for r in rows if r["qualifies"]]
    # qualifying candidates first, then by GPUs used, then by headroom
    assert rows[: len(quals)] == quals
    keys = [(r["n_gpus"], -r["headroom_gib"]) for r in quals]
    assert keys == sorted(keys)
    for r in quals:
        assert r["starts_probability"] >= 0.95 and r["workload_fit_probability"] >= 0.95
        assert r["max_concurrency_at_workload"] >= 16
        assert r["total_gib"] == pytest.approx(r["per_gpu_gib"] * r["n_gpus"])
    # a 70B model in bf16 does not start on one 48 GiB card
    one_l40s = next(r for r in rows if r["gpu"] == "L40S" and r["tp"] == 1)
    assert not one_l40s["qualifies"] and one_l40s["starts_probability"] < 0.05


def test_tp_that_does_not_divide_the_heads_is_skipped(vllm):
    rows = P.plan(vllm, "Qwen/Qwen2.5-7B-Instruct", gpus=["H100-80GB"], tps=(1, 2, 3, 4))
    assert sorted(r["tp"] for r in rows) == [1, 2, 4]  # 28 heads: tp 3 is not possible


def test_growing_frameworks_are_refused():
    est = Estimator.from_file(ROOT / "fitted_params" / "transformers")
    with pytest.raises(ValueError, match="KV pool"):
        P.plan(est, "meta-llama/Llama-3.1-8B", gpus=["H100-80GB"])


def test_cli_json_and_help(capsys):
    assert P.main(["--model", "Qwen/Qwen3-8B", "--gpus", "H100-80GB", "L4", "--concurrency", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["framework"] == "vllm" and {c["gpu"] for c in doc["candidates"]} == {"H100-80GB", "L4"}
    assert P.main(["--model", "Qwen/Qwen3-8B", "--gpus", "H100-80GB"]) == 0
    assert "P(start)" in capsys.readouterr().out
    assert P.main(["--model", "Qwen/Qwen3-8B", "--gpus", "NoSuchGPU"]) == 2
    out = subprocess.run([sys.executable, "-m", "fitting.plan", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "--concurrency" in out.stdout


def test_default_candidates_are_the_gpus_the_fits_have_seen(capsys):
    """Every profile the fits use ran on NVIDIA GPUs: without --gpus the planner tries those,
    says so, and adds AMD and the rest only with --vendor all."""
    from fitting.data.gpus import GPUS

    assert P.main(["--model", "Qwen/Qwen2.5-7B-Instruct", "--offline", "--tp", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["candidates"]
    assert rows and {GPUS[r["gpu"]].vendor for r in rows} == {"NVIDIA"}
    assert P.main(["--model", "Qwen/Qwen2.5-7B-Instruct", "--offline", "--tp", "1", "--vendor", "all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["candidates"]
    assert {"NVIDIA", "AMD"} <= {GPUS[r["gpu"]].vendor for r in rows}
    assert P.main(["--model", "Qwen/Qwen2.5-7B-Instruct", "--offline", "--tp", "1"]) == 0
    assert "the fits have seen NVIDIA runs only" in capsys.readouterr().out
    assert P.main(["--model", "Qwen/Qwen2.5-7B-Instruct", "--offline", "--vendor", "intel"]) == 2


def test_an_amd_gpu_answer_says_the_fit_has_not_seen_it():
    est = Estimator.from_file(Path(__file__).resolve().parents[1] / "fitted_params" / "vllm")
    amd = est.query("Qwen/Qwen2.5-7B-Instruct", gpu="MI300X")
    nvidia = est.query("Qwen/Qwen2.5-7B-Instruct", gpu="H100-80GB")
    assert any("AMD GPU" in w and "not validated" in w for w in amd["warnings"])
    assert not any("not validated" in w for w in nvidia["warnings"])


def test_an_unfitted_engine_qualifies_by_its_upper_bound_and_sglang_by_its_reserve():
    """SGLang has no fit, so no calibrated probability: a candidate qualifies when the upper end of
    the seed plan's wide non-KV interval and the workload's KV fit in mem_fraction_static x G
    (``qualifies_by`` says so), and only if the rest of the GPU holds what SGLang allocates after
    its pool. Qwen2.5-7B at 8 x 8,192 tokens: an H100 qualifies at SGLang's default fraction; at
    0.95 an RTX 4090 or L4 leaves about 1.2 GiB for the ~1.8 GiB its graphs and workspaces need."""
    est = Estimator.from_file(ROOT / "fitted_params" / "sglang")
    assert est.status != "fitted"
    rows = P.plan(est, "Qwen/Qwen2.5-7B-Instruct", gpus=["H100-80GB"], tps=(1,), context=8192, concurrency=8)
    (h100,) = rows
    assert h100["starts_probability"] is None and h100["qualifies"]
    assert h100["qualifies_by"] == "uncalibrated upper bound" and h100["reserve_holds"]
    small = P.plan(est, "Qwen/Qwen2.5-7B-Instruct", gpus=["RTX-4090", "L4"], tps=(1,), context=8192, concurrency=8,
                   gpu_memory_utilization=0.95)
    assert small and all(not r["qualifies"] and not r["reserve_holds"] and r["headroom_gib"] > 0 for r in small)
    text = P.format_plan(small, model="Qwen/Qwen2.5-7B-Instruct", framework="sglang")
    assert "the reserve after the pool is too small" in text
