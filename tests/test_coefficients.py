"""Coefficient files: schema contract, versioning, atomic and concurrent writes (SIMULATED fits)."""

from __future__ import annotations

import copy
import json
import multiprocessing as mp

import pytest

from _sim_profiles import simulated_observations
from fitting.estimator import coefficients as co
from fitting.overhead.fit import fit_framework
from fitting.overhead.log_scaling import log_scaling_test

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(scope="module")
def fitted():
    obs = simulated_observations("vllm", sigma_log=0.01, seed=31, n_per_model=8)
    fit = fit_framework(obs)
    return fit, log_scaling_test(obs, seed_fit=fit.specs["seed"], boxcox_fit=fit.specs["boxcox"])


@pytest.fixture(scope="module")
def doc(fitted):
    fit, h = fitted
    return co.build_coefficients(fit, h, input_sha=SHA_A, seed=0)


def _without_created(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith('"created"'))


def test_written_file_validates_and_round_trips(doc, tmp_path):
    res = co.write_coefficients(doc, tmp_path)
    assert res.status == "new" and res.version == 1 and res.path.name == "v0001.json"
    loaded = co.load_coefficients(res.path)
    assert json.loads(co.dumps(loaded)) == loaded
    assert {k: v for k, v in loaded.items() if k not in ("version", "created")} == doc
    seed = loaded["specs"]["seed"]
    assert [p["name"] for p in seed["params"]] == ["baseline_gib", "proportional", "multi_gpu", "batch_scaling"]
    assert len(seed["covariance"]) == 4 and all(len(r) == 4 for r in seed["covariance"])
    assert seed["error_mode"] == "log_uncertain_part" and seed["residual_scale"] > 0
    em = seed["error_model"]
    assert em["kind"] == "log_uncertain_part" and em["within_scale"] == seed["residual_scale"]
    assert em["between_rule"] in ("estimated", "conservative") and em["df"] >= 1 and em["n_groups"] >= 3
    assert seed["cv"]["scheme"] == "leave-one-architecture-out" and "predictions" not in seed["cv"]
    assert (tmp_path / "vllm" / "latest.json").read_bytes() == res.path.read_bytes()


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("input_sha256"), "input_sha256"),
    (lambda d: d.update(status="maybe"), "status"),
    (lambda d: d["specs"]["seed"]["params"][0].update(se="big"), "specs.seed.params.0.se"),
    (lambda d: d.update(selected_spec="nope"), "selected_spec"),
    (lambda d: d["specs"]["seed"]["covariance"].pop(), "specs.seed.covariance"),
    (lambda d: d.update(fallback={"source": "seed-plan constants"}), "fallback"),
])
def test_schema_rejects_bad_documents_naming_the_field(doc, mutate, field):
    bad = copy.deepcopy(doc)
    bad.update(version=1, created="2026-01-01T00:00:00Z")
    mutate(bad)
    with pytest.raises(co.CoefficientError, match=field.replace(".", r"\.")):
        co.validate_coefficients(bad, "x.json")


def test_unchanged_inputs_write_no_new_version(doc, tmp_path):
    first = co.write_coefficients(doc, tmp_path)
    again = co.write_coefficients(copy.deepcopy(doc), tmp_path)
    assert again.status == "unchanged" and again.version == 1
    assert again.message == "unchanged, still v0001"
    assert sorted(p.name for p in (tmp_path / "vllm").glob("v*.json")) == ["v0001.json"]
    changed = dict(doc, input_sha256=SHA_B)
    new = co.write_coefficients(changed, tmp_path)
    assert new.status == "new" and new.version == 2 and new.previous["version"] == 1
    assert (tmp_path / "vllm" / "latest.json").read_bytes() == new.path.read_bytes()
    assert first.path.read_text() != new.path.read_text()
    assert co.load_coefficients(first.path)["input_sha256"] == SHA_A   # v0001 untouched


def test_new_version_when_code_or_seed_changes(doc, tmp_path):
    co.write_coefficients(doc, tmp_path)
    assert co.write_coefficients(dict(doc, code_sha256=SHA_B), tmp_path).version == 2
    assert co.write_coefficients(dict(doc, code_sha256=SHA_B, seed=1), tmp_path).version == 3


def test_same_fit_gives_byte_identical_files_apart_from_created(fitted, tmp_path):
    fit, h = fitted
    obs = simulated_observations("vllm", sigma_log=0.01, seed=31, n_per_model=8)
    refit = fit_framework(obs)
    h2 = log_scaling_test(obs, seed_fit=refit.specs["seed"], boxcox_fit=refit.specs["boxcox"])
    a = co.write_coefficients(co.build_coefficients(fit, h, input_sha=SHA_A, seed=0), tmp_path / "a",
                              created="2026-01-01T00:00:00Z")
    b = co.write_coefficients(co.build_coefficients(refit, h2, input_sha=SHA_A, seed=0), tmp_path / "b",
                              created="2026-06-30T12:00:00Z")
    ta, tb = a.path.read_text(), b.path.read_text()
    assert ta != tb
    assert _without_created(ta) == _without_created(tb)


def _writer(args):
    template, out_dir, sha, n = args
    from fitting.estimator import coefficients

    with open(template) as fh:
        base = json.load(fh)
    versions = []
    for i in range(n):
        versions.append(coefficients.write_coefficients(dict(base, input_sha256=sha, seed=i), out_dir).version)
    return versions


def test_concurrent_writers_leave_valid_files_only(doc, tmp_path):
    (tmp_path / "template.json").write_text(json.dumps(doc))
    out = tmp_path / "fp"
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        tpl = str(tmp_path / "template.json")
        got = pool.map(_writer, [(tpl, str(out), SHA_A, 6), (tpl, str(out), SHA_B, 6)])
    files = sorted((out / "vllm").glob("v*.json"))
    assert len(files) == 12 and sorted(v for vs in got for v in vs) == list(range(1, 13))
    for f in files:
        co.load_coefficients(f)
    assert co.load_coefficients(out / "vllm" / "latest.json")["version"] == 12
    leftovers = [p.name for p in (out / "vllm").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_unfitted_framework_file_is_valid(tmp_path):
    obs = simulated_observations("sglang", n_models=2, n_per_model=3)
    fit = fit_framework(obs)
    d = co.build_coefficients(fit, None, input_sha=SHA_A, seed=0)
    res = co.write_coefficients(d, tmp_path)
    loaded = co.load_coefficients(res.path)
    assert loaded["status"] == "unfitted" and loaded["fallback"]["source"] == "seed-plan constants"
    assert all(p["se"] is None and not p["identified"] for p in loaded["specs"]["seed"]["params"])
    assert loaded["specs"]["seed"]["params"][1]["estimate"] == 0.08
