"""``python -m fitting.profile``: dry run, errors as records, --resume, --shard, --budget-s.

The runs use the SIMULATED stand-in ``vllm`` of test_profile_vllm (real log lines and a real
OOM message; nothing is written under profiles/).
"""

import json
from pathlib import Path

import pytest
import yaml

from fitting.profile.__main__ import main
from fitting.profile.study import load_study, shard

from _profile_fakes import fake_vllm

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("fitting.data.registry")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_VLLM_CALLS", str(calls))
    exe = fake_vllm(tmp_path)
    study = tmp_path / "study.yaml"
    # batch 64 -> OOM (final), batch 32 -> crash (unknown, retried), others succeed
    study.write_text(yaml.safe_dump({"name": "cli-test", "timeout_s": 30, "defaults": {"load_format": "dummy"},
                                     "grid": {"model": ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B"],
                                              "batch_size": [1, 8, 32, 64]}}))
    out = tmp_path / "out"

    def run(*extra):
        return main([str(study), "--out", str(out), "--vllm-executable", str(exe), "--no-progress", *extra])

    def n_calls():
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    return study, out, run, n_calls


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--shard" in capsys.readouterr().out


def test_dry_run_prints_every_scenario_and_command(capsys):
    path = ROOT / "studies" / "multi_gpu.yaml"
    assert main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if not ln.startswith("#")]
    study = load_study(path)
    assert [ln.split("\t")[0] for ln in lines] == [s.id for s in study.scenarios]
    assert all("vllm bench latency --model" in ln and "--load-format dummy" in ln for ln in lines)


def test_dry_run_transformers_backend(capsys):
    assert main([str(ROOT / "studies" / "device_smoke.yaml"), "--dry-run", "--backend", "transformers"]) == 0
    out = capsys.readouterr().out
    assert "-m fitting.profile._worker --device cuda:0" in out


def test_bad_study_and_bad_shard_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: {model: a/x, batch_size: 0}\n")
    assert main([str(bad), "--dry-run"]) == 2
    assert f"{bad}: grid.batch_size:" in capsys.readouterr().err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: x\ngrid: {model: no-such-org/no-such-model}\n")
    assert main([str(unknown), "--dry-run"]) == 2
    assert "model" in capsys.readouterr().err
    assert main([str(ROOT / "studies" / "moe.yaml"), "--dry-run", "--shard", "3/2"]) == 2


def test_errors_become_records_and_resume_skips_final_ones(setup):
    study, out, run, n_calls = setup
    assert run() == 0
    assert n_calls() == 8
    profiles = sorted(p.stem for p in out.glob("*.json"))
    errors = {p.stem: json.loads(p.read_text()) for p in (out / "errors").glob("*.json")}
    assert len(profiles) == 4 and len(errors) == 4
    kinds = sorted(e["kind"] for e in errors.values())
    assert kinds == ["out_of_memory", "out_of_memory", "unknown", "unknown"]
    assert all(e["final"] == (e["kind"] == "out_of_memory") for e in errors.values())
    logs = list((out / "logs").glob("*.log"))
    assert len(logs) == 8
    # resume: profiles and final (OOM) records are skipped, the 2 crashes are retried
    assert run("--resume") == 0
    assert n_calls() == 8 + 2
    # without --resume everything runs again
    assert run() == 0
    assert n_calls() == 8 + 2 + 8


def test_shards_cover_the_study_once(setup):
    study, out, run, n_calls = setup
    for k in (1, 2, 3):
        assert run("--shard", f"{k}/3") == 0
    assert n_calls() == 8  # union of the shards = the study, no scenario twice
    done = {p.stem for p in out.glob("*.json")} | {p.stem for p in (out / "errors").glob("*.json")}
    assert done == {s.id for s in load_study(study).scenarios}
    assert run("--resume") == 0 and n_calls() == 8 + 2  # only the non-final failures again
    parts = [{s.id for s in shard(load_study(study).scenarios, k, 3)} for k in (1, 2, 3)]
    assert sum(len(p) for p in parts) == 8


def test_budget_leaves_the_rest_for_resume(setup):
    study, out, run, n_calls = setup
    assert run("--budget-s", "0") == 0  # nothing starts once the budget is spent
    assert n_calls() == 0 and not out.exists() or not any(out.glob("*.json"))
    assert run("--resume") == 0
    assert n_calls() == 8
