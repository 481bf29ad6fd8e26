"""``python -m fitting.refit`` end to end on SIMULATED profile files (tmp folders only)."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from _sim_profiles import TRUE_SEED, write_simulated_profiles
from fitting.estimator import coefficients as co
from fitting.refit import main, refit

FRAMEWORKS = ("vllm", "transformers")


def _args(profiles, out, reports, *extra):
    fw = [a for f in FRAMEWORKS for a in ("--framework", f)]
    return [str(profiles), "--out", str(out), "--reports", str(reports), *fw, *extra]


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim_profiles")
    for i, fw in enumerate(FRAMEWORKS):
        write_simulated_profiles(d, fw, n_per_model=8, sigma_log=0.01, seed=40 + i)
    return d


@pytest.fixture(scope="module")
def first_run(sim_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("run1")
    rc = main(_args(sim_dir, base / "fp", base / "rep"))
    return rc, base


def _without_created(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith('"created"'))


def test_refit_recovers_simulated_coefficients_within_95_ci(first_run):
    rc, base = first_run
    assert rc == 0
    for fw in FRAMEWORKS:
        doc = co.load_coefficients(base / "fp" / fw / "v0001.json")
        assert doc["status"] == "fitted" and doc["profiles"]["n_used"] == 48
        seed = doc["specs"]["seed"]
        df = seed["df_resid"]
        t = stats.t.ppf(0.975, df)
        for p, true in zip(seed["params"], TRUE_SEED):
            assert p["identified"], p
            assert p["ci_lower"] <= true <= p["ci_upper"], (fw, p)
            assert abs(p["estimate"] - true) <= t * p["se"] * (1 + 1e-9)
        assert json.loads(co.dumps(doc)) == doc          # round trip through the schema
        assert (base / "rep" / f"{fw}.md").is_file()
        assert (base / "rep" / "figures" / f"{fw}_batch_curve.png").is_file()


def test_second_refit_creates_no_new_version(sim_dir, first_run, capsys):
    rc, base = first_run
    capsys.readouterr()
    assert main(_args(sim_dir, base / "fp", base / "rep")) == 0
    out = capsys.readouterr().out
    assert "vllm: unchanged, still v0001" in out and "transformers: unchanged, still v0001" in out
    assert sorted(p.name for p in (base / "fp" / "vllm").glob("v*.json")) == ["v0001.json"]


def test_same_inputs_and_seed_give_byte_identical_files(sim_dir, first_run, tmp_path):
    _, base = first_run
    assert main(_args(sim_dir, tmp_path / "fp", tmp_path / "rep", "--no-reports")) == 0
    for fw in FRAMEWORKS:
        a = (base / "fp" / fw / "v0001.json").read_text()
        b = (tmp_path / "fp" / fw / "v0001.json").read_text()
        assert _without_created(a) == _without_created(b)


def _refit_worker(args):
    profiles, out = args
    return [(o.framework, o.write.status, o.write.version)
            for o in refit(profiles, out_dir=out, frameworks=["vllm"], cv=False, write_reports=False)]


def test_two_refits_at_once_leave_valid_files_only(sim_dir, tmp_path):
    out = tmp_path / "fp"
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(_refit_worker, [(str(sim_dir), str(out))] * 2)
    statuses = sorted(r[0][1] for r in got)
    assert statuses == ["new", "unchanged"]
    files = sorted(p.name for p in (out / "vllm").iterdir())
    assert files == [".lock", "latest.json", "v0001.json"]
    for name in ("latest.json", "v0001.json"):
        co.load_coefficients(out / "vllm" / name)


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("broken")
    write_simulated_profiles(d, "vllm", n_per_model=4, sigma_log=0.01, seed=50)
    bad = d / "vllm" / "sim-broken-file.json"
    bad.write_text('{"schema_version": 1, "profile_id": "sim-broken-file", "framework": "vllm"')
    return d, bad


def test_strict_mode_fails_naming_the_broken_file(broken_dir, tmp_path, capsys):
    d, bad = broken_dir
    rc = main([str(d), "--out", str(tmp_path / "fp"), "--reports", str(tmp_path / "rep"), "--strict",
               "--framework", "vllm"])
    assert rc == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "fp").exists()


def test_default_mode_fits_the_rest_and_reports_the_skipped_file(broken_dir, tmp_path, capsys):
    d, bad = broken_dir
    rc = main([str(d), "--out", str(tmp_path / "fp"), "--reports", str(tmp_path / "rep"),
               "--framework", "vllm", "--no-cv"])
    assert rc == 0
    assert str(bad) in capsys.readouterr().err
    doc = co.load_coefficients(tmp_path / "fp" / "vllm" / "latest.json")
    assert doc["status"] == "fitted" and doc["profiles"]["n_used"] == 24
    assert [s["path"] for s in doc["profiles"]["skipped_files"]] == [str(bad)]
    report = (tmp_path / "rep" / "vllm.md").read_text()
    assert "Skipped files" in report and str(bad) in report


def test_nothing_fittable_exits_nonzero_with_a_message(tmp_path, capsys):
    d = tmp_path / "few"
    recs = write_simulated_profiles(d, "vllm", n_per_model=1, seed=60)
    assert len(recs) == 6
    for p in recs[2:]:
        p.unlink()
    rc = main([str(d), "--out", str(tmp_path / "fp"), "--reports", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert rc == 1 and "nothing could be fitted" in err
    doc = co.load_coefficients(tmp_path / "fp" / "vllm" / "latest.json")
    assert doc["status"] == "unfitted" and doc["fallback"]["source"] == "seed-plan constants"


def test_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "fp")]) == 2
    assert "no such profile directory" in capsys.readouterr().err


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "fitting.refit", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=False)
    assert res.returncode == 0
    for flag in ("--out", "--reports", "--framework", "--seed", "--strict"):
        assert flag in res.stdout


def test_report_shows_change_from_previous_version(sim_dir, tmp_path):
    out, rep = tmp_path / "fp", tmp_path / "rep"
    refit(sim_dir, out_dir=out, reports_dir=rep, frameworks=["vllm"], cv=False)
    moved = tmp_path / "moved"
    write_simulated_profiles(moved, "vllm", n_per_model=8, sigma_log=0.01, seed=40,
                             true=(1.6, 0.03, 0.05, 0.004))
    (oc,) = refit(moved, out_dir=out, reports_dir=rep, frameworks=["vllm"], cv=False)
    assert oc.write.version == 2
    text = (rep / "vllm.md").read_text()
    assert "Previous: v0001" in text
    assert "| seed | baseline_gib |" in text and "**yes**" in text
    assert np.isfinite(oc.document["specs"]["seed"]["params"][0]["estimate"])
