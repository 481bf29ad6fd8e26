"""The estimator (fitting.estimator) on SIMULATED coefficient files from known coefficients.

The files come from tests/_simulated_coefficients.py: profiles of real architectures,
overheads drawn from known coefficients, fitted here by least squares. Checks: loading and
validation, the fitted values reproduced, per-GPU/total bookkeeping, tensor-parallel
weights, vectorised = one at a time, inverse queries consistent with forward ones,
warnings, calibration of the estimator's intervals, and the light import path.
"""

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _simulated_coefficients import simulate, write
from fitting.estimator import schema_lite as _schema_lite
from fitting.estimator import CoefficientFileError, Estimator
from fitting.physics.parameters import count_parameters
from fitting.data.registry import resolve_model

GIB = 2**30
REPRO_RTOL = 1e-9
SCHEMA = json.loads((Path(__file__).parents[1] / "fitting/schemas/coefficients-v2.schema.json").read_text())


@pytest.fixture(scope="module")
def vllm_sim():
    return simulate("vllm", seed=11)


@pytest.fixture(scope="module")
def vllm(vllm_sim):
    return Estimator(vllm_sim.doc)


@pytest.fixture(scope="module")
def tf_sim():
    return simulate("transformers", seed=12, residual_scale=0.03)


@pytest.fixture(scope="module")
def tf(tf_sim):
    return Estimator(tf_sim.doc)


# --------------------------------------------------------------------------- loading
def test_simulated_documents_are_valid_v2(vllm_sim, tf_sim):
    jsonschema = pytest.importorskip("jsonschema")
    for sim in (vllm_sim, tf_sim, simulate("tgi", status="unfitted")):
        jsonschema.validate(sim.doc, SCHEMA)


def test_load_dir_file_and_latest(tmp_path, vllm_sim):
    d = write(vllm_sim, tmp_path)
    a, b = Estimator.load(d), Estimator.load(d / "v0001.json")
    assert a.path.endswith("latest.json") and a.version == b.version == 1
    assert a.framework == "vllm" and a.selected_spec == "physical"


def test_unknown_schema_version_is_refused(tmp_path, vllm_sim):
    doc = copy.deepcopy(vllm_sim.doc)
    doc["schema_version"] = 3
    p = tmp_path / "v0002.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(CoefficientFileError, match=r"v0002.json: schema_version: unsupported schema version 3"):
        Estimator.load(p)


def test_version_1_files_are_refused_with_the_reason(tmp_path, vllm_sim):
    doc = copy.deepcopy(vllm_sim.doc)
    doc["schema_version"] = 1
    p = tmp_path / "v0001.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(CoefficientFileError, match=r"schema_version: schema version 1 is no longer read.*refit"):
        Estimator.load(p)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("specs"), "specs"),
    (lambda d: d["specs"]["physical"].update(error_mode="cubic"), "specs.physical.error_mode"),
    (lambda d: d["specs"]["physical"]["params"][0].pop("estimate"), "specs.physical.params[0]"),
    (lambda d: d.update(status="maybe"), "status"),
    (lambda d: d.update(selected_spec="nonesuch"), "selected_spec"),
    (lambda d: d["specs"]["physical"].update(covariance=[[1.0]]), "specs.physical.covariance"),
])
def test_invalid_documents_name_the_field(tmp_path, vllm_sim, mutate, field):
    doc = copy.deepcopy(vllm_sim.doc)
    mutate(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(CoefficientFileError) as err:
        Estimator.load(p)
    assert f"bad.json: {field}" in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(CoefficientFileError, match="no such coefficient file"):
        Estimator.load(tmp_path / "nope.json")
    with pytest.raises(CoefficientFileError, match="no latest.json"):
        Estimator.load(tmp_path)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CoefficientFileError, match="invalid JSON"):
        Estimator.load(tmp_path / "x.json")


def _mutations(doc):
    yield doc
    for path, value in [(("status",), "maybe"), (("version",), 0), (("created",), "yesterday"),
                        (("specs", "physical", "df_resid"), "many"), (("fallback",), {"source": "x"}),
                        (("profiles", "n_used"), -1), (("cuda_graph",), 3), (("extra_key",), 1),
                        (("specs", "physical", "params", 0, "identified"), "yes"),
                        (("specs", "physical", "data_ranges", "tp"), [1])]:
        d = copy.deepcopy(doc)
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        yield d


def test_light_validator_agrees_with_jsonschema(vllm_sim):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for doc in _mutations(vllm_sim.doc):
        assert (_schema_lite.first_error(doc, SCHEMA) is None) == validator.is_valid(doc)


# --------------------------------------------------------------------- forward facts
def test_from_file_is_load(tmp_path, vllm_sim):
    d = write(vllm_sim, tmp_path)
    a, b = Estimator.from_file(d), Estimator.load(d)
    assert a.path == b.path and a.document == b.document


@pytest.mark.parametrize("which", ["vllm", "tf"])
def test_summary_frame_in_statsmodels_shape(vllm, tf, which):
    """summary_frame(alpha): statsmodels' columns; obs intervals are the Prediction's own
    figures at the same alpha; the mean interval sits inside the observation interval and
    widens with the level."""
    est = vllm if which == "vllm" else tf
    p = est.predict("Qwen/Qwen2.5-7B-Instruct", batch_size=8, input_len=1024, output_len=256, alpha=0.10)
    sf = p.summary_frame()
    assert list(sf.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"]
    assert list(sf.index) == (["overhead", "non_kv", "cuda_graph", "total"] if which == "vllm"
                              else ["overhead", "non_kv", "total"])
    assert sf.loc["non_kv", "mean"] == pytest.approx(p.non_kv_gib, rel=1e-12)
    assert sf.loc["non_kv", "obs_ci_lower"] == pytest.approx(p.non_kv_lower_gib, rel=1e-12)
    assert sf.loc["non_kv", "obs_ci_upper"] == pytest.approx(p.non_kv_upper_gib, rel=1e-12)
    assert sf.loc["overhead", "obs_ci_lower"] == pytest.approx(p.overhead_lower_gib, rel=1e-9, abs=1e-12)
    assert sf.loc["total", "mean"] == pytest.approx(p.total_gib, rel=1e-12)
    assert sf.loc["total", "obs_ci_upper"] == pytest.approx(p.total_upper_gib, rel=1e-12)
    assert (sf["mean_se"] > 0).all()
    assert (sf["obs_ci_lower"] <= sf["mean_ci_lower"]).all() and (sf["mean_ci_upper"] <= sf["obs_ci_upper"]).all()
    wide, narrow = p.summary_frame(0.01), p.summary_frame(0.5)
    assert (wide["obs_ci_upper"] - wide["obs_ci_lower"] > narrow["obs_ci_upper"] - narrow["obs_ci_lower"]).all()
    assert (wide["mean_ci_upper"] - wide["mean_ci_lower"] > narrow["mean_ci_upper"] - narrow["mean_ci_lower"]).all()
    with pytest.raises(ValueError, match="alpha"):
        p.summary_frame(1.5)


def test_reproduces_fitted_values_pool(vllm, vllm_sim):
    """vLLM: the fitted response is non-KV; the CUDA-graph term its own fit."""
    for i, r in enumerate(vllm_sim.rows[:25]):
        p = vllm.predict(r["model"], tp=r["tp"], batch_size=r["batch_size"], input_len=r["input_len"],
                         output_len=r["output_len"], dtype="bfloat16",
                         max_num_batched_tokens=8192,  # the simulated profiles' budget
                         # the simulation's mechanics (no version: the V1 runner's Triton sampler)
                         framework_version="0.20.0")
        assert p.non_kv_gib == pytest.approx(vllm_sim.fitted_gib[i], rel=REPRO_RTOL)
        assert p.cuda_graph_gib == pytest.approx(vllm_sim.cg_fitted_gib[i], rel=REPRO_RTOL)


def test_reproduces_fitted_values_growing(tf, tf_sim):
    """transformers: the fitted response is the peak = total (no CUDA-graph term)."""
    for i, r in enumerate(tf_sim.rows[:25]):
        p = tf.predict(r["model"], tp=r["tp"], batch_size=r["batch_size"], input_len=r["input_len"],
                       output_len=r["output_len"], dtype="bfloat16",
                         max_num_batched_tokens=8192)  # the simulated profiles' budget
        assert p.total_gib == pytest.approx(tf_sim.fitted_gib[i], rel=REPRO_RTOL)
        assert p.cuda_graph_gib is None


@pytest.mark.parametrize("tp, pp", [(1, 1), (4, 1), (2, 2), (8, 1)])
def test_parts_add_up_and_all_gpus(vllm, tf, tp, pp):
    for est in (vllm, tf):
        p = est.predict("meta-llama/Llama-3.1-70B", tp=tp, pp=pp, batch_size=8, input_len=1000, output_len=200)
        assert p.n_gpus == tp * pp
        assert p.non_kv_gib == pytest.approx(p.weights_gib + p.activations_gib + p.overhead_gib, rel=1e-12)
        assert p.total_gib == pytest.approx(p.non_kv_gib + (p.cuda_graph_gib or 0.0) + p.kv_cache_gib, rel=1e-12)
        for a, b in [("total_all_gpus_gib", "total_gib"), ("total_all_gpus_lower_gib", "total_lower_gib"),
                     ("total_all_gpus_upper_gib", "total_upper_gib")]:
            assert getattr(p, a) == pytest.approx(getattr(p, b) * tp * pp, rel=1e-12)
        assert p.non_kv_lower_gib < p.non_kv_gib < p.non_kv_upper_gib
        assert p.total_lower_gib < p.total_gib < p.total_upper_gib


@pytest.mark.parametrize("model", ["meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B"])
def test_tp2_halves_weights_up_to_replicated_norms(vllm, model):
    w1 = vllm.predict(model, tp=1, batch_size=1, input_len=10).weights_gib * GIB
    w2 = vllm.predict(model, tp=2, batch_size=1, input_len=10).weights_gib * GIB
    replicated = count_parameters(resolve_model(model).architecture).norms * 2  # bf16 norm weights
    assert 0.0 <= 2 * w2 - w1 <= replicated + 1.0


def test_kv_cache_is_exact_workload_kv(vllm, tf):
    """KV per GPU = sequences x tokens (vLLM rounded up to 16-token blocks) x bytes per token;
    for vLLM the sequences are the workload's concurrency, not max_num_seqs."""
    arch = resolve_model("meta-llama/Llama-3.1-8B").architecture
    per_token = 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * 2 / 2  # K+V, bf16, tp=2
    p = vllm.predict("meta-llama/Llama-3.1-8B", tp=2, batch_size=256, concurrency=3, input_len=1000, output_len=1)
    assert p.kv_bytes_per_token == per_token
    assert p.kv_cache_gib * GIB == 3 * 1008 * per_token  # 1001 tokens -> 63 blocks of 16
    q = tf.predict("meta-llama/Llama-3.1-8B", tp=2, batch_size=3, input_len=1000, output_len=1)
    assert q.kv_cache_gib * GIB == 3 * 1001 * per_token


def test_vectorised_equals_one_at_a_time(vllm):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    n = 3000
    tp = rng.choice([1, 2, 4, 8], n)
    b = rng.integers(1, 300, n)
    il, ol = rng.integers(1, 20000, n), rng.integers(0, 2000, n)
    frame = vllm.predict("Qwen/Qwen2.5-32B", tp=tp, batch_size=b, input_len=il, output_len=ol)
    assert isinstance(frame, pd.DataFrame) and len(frame) == n
    for i in rng.choice(n, 6, replace=False):
        p = vllm.predict("Qwen/Qwen2.5-32B", tp=int(tp[i]), batch_size=int(b[i]), input_len=int(il[i]),
                         output_len=int(ol[i]))
        for col in ("weights_gib", "non_kv_gib", "non_kv_upper_gib", "kv_cache_gib", "total_gib",
                    "total_lower_gib", "total_upper_gib", "cuda_graph_upper_gib"):
            assert frame[col].iloc[i] == pytest.approx(getattr(p, col), rel=1e-12), col


def test_dataframe_of_mixed_models(vllm):
    pd = pytest.importorskip("pandas")
    cfg = pd.DataFrame({"model": ["meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B", "meta-llama/Llama-3.1-8B"],
                        "tp": [1, 2, 4], "batch_size": [4, 8, 16], "input_len": [100, 200, 300],
                        "output_len": [10, 20, 30], "kv_cache_dtype": ["auto", "fp8", "fp8"]})
    out = vllm.predict(cfg, gpu_memory_gib=79.19)
    assert list(out.index) == list(cfg.index) and "fit_probability" in out
    for i, row in cfg.iterrows():
        p = vllm.predict(row["model"], tp=row["tp"], batch_size=row["batch_size"], input_len=row["input_len"],
                         output_len=row["output_len"], kv_cache_dtype=row["kv_cache_dtype"])
        assert out["total_upper_gib"][i] == pytest.approx(p.total_upper_gib, rel=1e-12)


# ------------------------------------------------------------------- inverse queries
WORK = dict(input_len=6000, output_len=500)


@pytest.mark.parametrize("which", ["vllm", "tf"])
@pytest.mark.parametrize("confidence", [0.5, 0.95])
def test_max_batch_fits_and_one_more_does_not(vllm, tf, which, confidence):
    est = {"vllm": vllm, "tf": tf}[which]
    G = 40.0
    b = est.max_batch_size("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, confidence=confidence, **WORK)
    assert b >= 1
    key = "concurrency" if which == "vllm" else "batch_size"  # vLLM: the workload's, not max_num_seqs
    p_b = est.fit_probability("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, **{key: b}, **WORK)
    p_b1 = est.fit_probability("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, **{key: b + 1}, **WORK)
    assert p_b >= confidence > p_b1


@pytest.mark.parametrize("which", ["vllm", "tf"])
def test_max_context_fits_and_one_more_does_not(vllm, tf, which):
    est = {"vllm": vllm, "tf": tf}[which]
    L = est.max_context_len("Qwen/Qwen2.5-7B", gpu_memory_gib=24.0, confidence=0.9, batch_size=2)
    assert L >= 1
    fit = [est.fit_probability("Qwen/Qwen2.5-7B", gpu_memory_gib=24.0, batch_size=2, input_len=n, output_len=0)
           for n in (L, L + 1)]
    assert fit[0] >= 0.9 > fit[1]


def test_nothing_fits_gives_zero(tf):
    assert tf.max_batch_size("meta-llama/Llama-3.1-70B", gpu_memory_gib=24.0, **WORK) == 0


def test_fit_probability_is_the_predictive_cdf(tf):
    """P(total <= upper end of the 90 % interval) = 0.95, from the same distribution."""
    p = tf.predict("Qwen/Qwen2.5-7B", batch_size=4, input_len=1000, output_len=100, alpha=0.10)
    for g, expect in [(p.total_upper_gib, 0.95), (p.total_lower_gib, 0.05), (p.total_gib, 0.5)]:
        got = tf.fit_probability("Qwen/Qwen2.5-7B", gpu_memory_gib=g, batch_size=4, input_len=1000, output_len=100)
        assert got == pytest.approx(expect, abs=1e-9)


def test_vllm_pool_and_min_utilization(vllm_sim):
    est = Estimator(simulate("vllm", seed=11, cuda_graph=False).doc)  # fit probability = pool question only
    G, kw = 79.19, dict(batch_size=64, concurrency=64, input_len=4000, output_len=1000)
    u = est.min_gpu_memory_utilization("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, confidence=0.95, **kw)
    p_u = est.fit_probability("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, gpu_memory_utilization=u, **kw)
    p_less = est.fit_probability("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, gpu_memory_utilization=u - 0.001, **kw)
    assert p_u >= 0.95 > p_less
    t, lo, hi = est.kv_pool_tokens("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, gpu_memory_utilization=0.9, **kw)
    p = est.predict("meta-llama/Llama-3.1-8B", **kw)
    expect = (0.9 * G - p.non_kv_gib) * GIB / p.kv_bytes_per_token
    assert lo < t < hi and t % 16 == 0 and expect - 16 < t <= expect
    # one sequence as long as the point pool (same batch size, so the same non-KV) fits with
    # probability 1/2: the point is the median of the predictive distribution (the pool is
    # rounded down to whole 16-token blocks: about 2 MiB, a few hundredths of the now narrow
    # spread of the uncertain part)
    one = dict(batch_size=1, output_len=0)
    t1, _, _ = est.kv_pool_tokens("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, input_len=100, **one)
    half = est.fit_probability("meta-llama/Llama-3.1-8B", gpu_memory_gib=G, input_len=t1, **one)
    assert half == pytest.approx(0.5, abs=0.03) and half >= 0.5


def test_inverse_queries_only_where_they_apply(tf):
    with pytest.raises(ValueError, match="preallocate a KV pool"):
        tf.kv_pool_tokens("Qwen/Qwen2.5-7B", gpu_memory_gib=24.0)


# --------------------------------------------------------------------------- warnings
def test_warnings_outside_fitted_ranges(vllm):
    inside = vllm.predict("meta-llama/Llama-3.1-8B", tp=2, batch_size=16, input_len=100)
    assert not inside.warnings
    big = vllm.predict("meta-llama/Llama-3.1-405B", tp=8, batch_size=16, input_len=100)
    assert any("model size" in w and "outside the fitted data range" in w for w in big.warnings)
    batch = vllm.predict("meta-llama/Llama-3.1-8B", batch_size=1024, input_len=100)
    assert any(w.startswith("batch size 1024") for w in batch.warnings)
    frame = vllm.predict("meta-llama/Llama-3.1-8B", batch_size=np.array([16, 1024]), input_len=100)
    assert frame["outside_fitted_range"].tolist() == [False, True] and frame.attrs["warnings"]


def test_unfitted_framework_warns_and_keeps_wide_intervals():
    est = Estimator(simulate("tgi", status="unfitted").doc)
    p = est.predict("Qwen/Qwen2.5-7B", batch_size=4, input_len=1000, output_len=100)
    assert any("unfitted" in w for w in p.warnings)
    # fallback residual scale 0.35 on 5 df, on the uncertain part (the weights are exact)
    assert (p.non_kv_upper_gib - p.weights_gib) / (p.non_kv_gib - p.weights_gib) > 1.5
    assert p.non_kv_lower_gib > p.weights_gib


def test_bad_input_raises_clear_errors(vllm):
    with pytest.raises(ValueError, match="tp=3 does not divide num_attention_heads=32"):
        vllm.predict("meta-llama/Llama-3.1-8B", tp=3, input_len=10)
    with pytest.raises(ValueError, match="input_len must be a non-negative"):
        vllm.predict("meta-llama/Llama-3.1-8B", input_len=-1)
    with pytest.raises(KeyError, match="unknown model"):
        vllm.predict("no/such-model", input_len=10)
    with pytest.raises(ValueError, match="alpha"):
        vllm.predict("meta-llama/Llama-3.1-8B", input_len=10, alpha=1.5)


def test_defaults_are_the_frameworks_and_stated(vllm):
    p = vllm.predict("meta-llama/Llama-3.1-8B")
    # vLLM's own defaults where the GPU is not known (V1, vllm serve, below the 70 GiB tier)
    assert p.settings["batch_size"] == 256 and p.settings["max_num_batched_tokens"] == 2048
    assert p.settings["concurrency"] == 1 and p.settings["framework_version"]
    assert p.settings["input_len"] == resolve_model("meta-llama/Llama-3.1-8B").architecture.max_position_embeddings
    assert {"batch_size", "max_num_batched_tokens", "max_model_len", "dtype"} <= set(p.defaults_applied)


# ------------------------------------------------------------------------ calibration
def test_estimator_intervals_calibrated_on_fresh_simulated_profiles():
    """SIMULATED: 60 independent fits of 30 profiles; the estimator's 90 % non-KV intervals
    cover 87-93 % of 3000 fresh draws from the true coefficients at new configurations."""
    from _simulated_coefficients import TRUE_THETA, _draw, _features, _rows
    from fitting.overhead.specs import get_spec

    spec = get_spec("physical")
    rng = np.random.default_rng(99)
    covered = total = 0
    for k in range(60):
        est = Estimator(simulate("sglang", seed=1000 + k, n=30, residual_scale=0.05, cuda_graph=False).doc)
        rows = _rows(rng, 50, "sglang")
        x = _features(rows, "sglang")
        y = _draw(spec, x, TRUE_THETA["physical"], 0.05, rng)
        for r, yi in zip(rows, y):
            p = est.predict(r["model"], tp=r["tp"], batch_size=r["batch_size"], input_len=r["input_len"],
                            output_len=r["output_len"], dtype="bfloat16", alpha=0.10)
            covered += p.non_kv_lower_gib <= yi <= p.non_kv_upper_gib
            total += 1
    assert 0.87 <= covered / total <= 0.93, covered / total


# ------------------------------------------------------------------------ light import
def test_import_path_stays_light(tmp_path, vllm_sim):
    d = write(vllm_sim, tmp_path)
    code = textwrap.dedent(f"""
        import sys
        from fitting.estimator import Estimator
        from fitting.estimate import main
        est = Estimator.load({str(d)!r})
        est.predict("meta-llama/Llama-3.1-8B", tp=2, batch_size=8, input_len=1000, output_len=100)
        est.query("meta-llama/Llama-3.1-8B", batch_size=8, input_len=1000, gpu="H100")
        import io, contextlib
        with contextlib.redirect_stdout(io.StringIO()):
            main(["--params", {str(d)!r}, "--model", "Qwen/Qwen2.5-7B", "--gpu", "L40S", "--json"])
        heavy = [m for m in ("pandas", "statsmodels", "matplotlib", "jsonschema", "scipy") if m in sys.modules]
        print(",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout.strip()}"
