"""``python -m fitting.estimate``: flags, JSON keys and units, table, bad input.

Runs on SIMULATED coefficient files for every framework, and on the real
``fitted_params/<framework>/latest.json`` files where they exist (validated against the
real schema with jsonschema first).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _simulated_coefficients import simulate, write
from fitting import estimate, physics
from fitting.data.frameworks import FRAMEWORKS
from fitting.data.registry import resolve_model

ROOT = Path(__file__).parents[1]
GIB = 2**30
FLAGS = ("--framework", "--model", "--config", "--params", "--tp", "--pp", "--batch-size", "--input-len",
         "--output-len", "--max-model-len", "--max-num-batched-tokens", "--dtype", "--quantization",
         "--kv-cache-dtype", "--gpu", "--gpu-memory-gib", "--gpu-memory-utilization", "--confidence", "--alpha",
         "--json")
BASE_KEYS = {"framework", "model", "params_version", "weights_gib", "activations_gib", "overhead_gib", "non_kv_gib",
             "non_kv_lower_gib", "non_kv_upper_gib", "cuda_graph_gib", "kv_cache_gib", "kv_bytes_per_token",
             "total_gib", "total_lower_gib", "total_upper_gib", "total_all_gpus_gib", "alpha", "warnings"}
GPU_KEYS = {"fit_probability", "max_batch_size", "max_context_len"}
VLLM_GPU_KEYS = {"kv_pool_tokens", "kv_pool_tokens_lower", "kv_pool_tokens_upper", "min_gpu_memory_utilization"}
REAL = sorted(ROOT.glob("fitted_params/*/latest.json"))


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fitted_params")
    for i, fw in enumerate(FRAMEWORKS):
        write(simulate(fw, seed=40 + i, status="unfitted" if fw == "pytorch" else "fitted"), d)
    return d


def _run(argv, capsys):
    rc = estimate.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _params_cases():
    cases = [pytest.param(("sim", fw), id=f"simulated-{fw}") for fw in FRAMEWORKS]
    cases += [pytest.param(("real", p), id=f"real-{p.parent.name}") for p in REAL]
    return cases


@pytest.fixture(params=_params_cases())
def params_file(request, sim_dir):
    kind, x = request.param
    if kind == "sim":
        return sim_dir / x / "latest.json"
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "fitting/schemas/coefficients-v2.schema.json").read_text())
    jsonschema.validate(json.loads(x.read_text()), schema)
    return x


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as e:
        estimate.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text


def test_json_keys_and_units(params_file, capsys):
    model = "Qwen/Qwen2.5-7B"
    rc, out, err = _run(["--params", str(params_file), "--model", model, "--tp", "2", "--batch-size", "4",
                         "--input-len", "1000", "--output-len", "200", "--gpu", "L40S", "--json"], capsys)
    assert rc == 0, err
    r = json.loads(out)
    fw = r["framework"]
    assert BASE_KEYS | GPU_KEYS <= set(r)
    # the engines that preallocate a KV pool (vLLM, SGLang, TGI, TensorRT-LLM) answer the pool questions
    assert (VLLM_GPU_KEYS <= set(r)) == (fw in ("vllm", "sglang", "tgi", "trtllm"))
    assert r["model"] == model and isinstance(r["params_version"], int) and r["alpha"] == 0.10
    # units: GiB per GPU are the physics' bytes / 2**30; bytes per token per GPU
    arch = resolve_model(model).architecture
    # (llama.cpp keeps the token embeddings in host memory)
    assert r["weights_gib"] * GIB == pytest.approx(physics.weight_bytes_per_gpu(
        arch, dtype="bfloat16", tp=2, embedding_on_gpu=fw != "llamacpp"), rel=1e-12)
    assert r["kv_bytes_per_token"] == physics.kv_bytes_per_token(arch, dtype="bfloat16", tp=2)
    block = 16 if fw == "vllm" else None
    # KV-pool engines: --batch-size is the engine's max_num_seqs, the workload is one sequence
    # unless --concurrency says otherwise; growing frameworks: 4 sequences
    seqs = r["settings"]["concurrency"] if r["kv_cache_mode"] == "pool" else 4
    assert seqs == (1 if r["kv_cache_mode"] == "pool" else 4)
    kv_bytes = physics.kv_cache_bytes(arch, num_tokens=1200, num_seqs=seqs, dtype="bfloat16", tp=2, block_size=block)
    assert r["kv_cache_gib"] * GIB == pytest.approx(kv_bytes, rel=1e-12)
    assert r["non_kv_gib"] == pytest.approx(r["weights_gib"] + r["activations_gib"] + r["overhead_gib"], rel=1e-12)
    cg = r["cuda_graph_gib"] or 0.0
    assert r["total_gib"] == pytest.approx(r["non_kv_gib"] + cg + r["kv_cache_gib"], rel=1e-12)
    assert r["total_all_gpus_gib"] == pytest.approx(2 * r["total_gib"], rel=1e-12)
    assert r["non_kv_lower_gib"] < r["non_kv_gib"] < r["non_kv_upper_gib"]
    assert r["total_lower_gib"] < r["total_gib"] < r["total_upper_gib"]
    if r["status"] == "fitted":
        assert 0.0 <= r["fit_probability"] <= 1.0
    else:  # seed-plan constants: no calibrated probability
        assert r["fit_probability"] is None and r["fit_probability_status"].startswith("uncalibrated")
    assert isinstance(r["max_batch_size"], int) and isinstance(r["max_context_len"], int)
    assert isinstance(r["warnings"], list)
    if fw in ("vllm", "sglang"):
        assert r["kv_pool_tokens_lower"] <= r["kv_pool_tokens"] <= r["kv_pool_tokens_upper"]
        assert r["min_gpu_memory_utilization"] is None or 0 < r["min_gpu_memory_utilization"] <= 1
    if json.loads(Path(params_file).read_text())["status"] == "unfitted":
        assert any("unfitted" in w for w in r["warnings"])


def test_no_gpu_no_gpu_keys(sim_dir, capsys):
    rc, out, _ = _run(["--params", str(sim_dir / "llamacpp"), "--model", "Qwen/Qwen2.5-7B", "--input-len", "512",
                       "--json"], capsys)
    r = json.loads(out)
    assert rc == 0 and not (GPU_KEYS & set(r)) and r["cuda_graph_gib"] is None


def test_table_by_default_states_defaults(sim_dir, capsys):
    rc, out, _ = _run(["--params", str(sim_dir / "vllm"), "--model", "meta-llama/Llama-3.1-8B",
                       "--input-len", "2000", "--gpu", "H100"], capsys)
    assert rc == 0
    # vLLM V1's own max_num_seqs default on a >= 70 GiB non-A100 GPU is 1024
    for text in ("meta-llama/Llama-3.1-8B on vllm", "defaults:",
                 "batch_size=1024 (vLLM's max_num_seqs default on this GPU)",
                 "max_num_batched_tokens=8192", "gpu_memory_utilization=1.0 (vLLM 0.34.0's default", "non-KV", "total", "KV pool",
                 "engine starts", "max concurrency @", "largest max_model_len to start", "min utilization to start",
                 "H100-80GB"):
        assert text in out, text


def test_framework_folder_found_by_name(sim_dir, tmp_path, capsys, monkeypatch):
    """Without --params: ./fitted_params/<framework>/ of the working directory."""
    shutil.copytree(sim_dir / "sglang", tmp_path / "fitted_params" / "sglang")
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(["--framework", "sglang", "--model", "Qwen/Qwen2.5-7B", "--input-len", "10", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["framework"] == "sglang"


@pytest.mark.parametrize("argv, needle", [
    (["--model", "no/such-model"], "unknown model"),
    (["--model", "meta-llama/Llama-3.1-8B", "--tp", "3"], "tp=3 does not divide num_attention_heads=32"),
    (["--model", "meta-llama/Llama-3.1-8B", "--input-len", "-5"], "--input-len must not be negative"),
    (["--model", "meta-llama/Llama-3.1-8B", "--dtype", "float7"], "unknown dtype"),
    (["--model", "meta-llama/Llama-3.1-8B", "--gpu", "A100"], "ambiguous"),
    (["--model", "meta-llama/Llama-3.1-8B", "--gpu", "h100", "--confidence", "1.5"], "confidence"),
    (["--config", "/no/such/config.json"], "config"),
    ([], "give --model"),
])
def test_bad_input_one_line_nonzero(sim_dir, capsys, argv, needle):
    rc, out, err = _run(["--params", str(sim_dir / "vllm")] + argv, capsys)
    assert rc == estimate.EXIT_BAD_INPUT and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_unknown_schema_version_exits_nonzero(sim_dir, tmp_path, capsys):
    doc = json.loads((sim_dir / "vllm" / "latest.json").read_text())
    doc["schema_version"] = 7
    p = tmp_path / "v0009.json"
    p.write_text(json.dumps(doc))
    rc, _, err = _run(["--params", str(p), "--model", "meta-llama/Llama-3.1-8B"], capsys)
    assert rc == 2 and "schema_version: unsupported schema version 7" in err and len(err.strip().splitlines()) == 1


def _asym(d):
    c = d["specs"]["physical"]["covariance"]
    c[0][1] = c[1][0] + 1.0


def _negvar(d):
    c = d["specs"]["physical"]["covariance"]
    c[0][0] = -abs(c[0][0]) - 1e-3


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["specs"]["physical"]["error_model"].update(within_scale=-0.1),
     "specs.physical.error_model.within_scale"),
    (lambda d: d["specs"]["physical"]["error_model"].update(between_scale=-0.2),
     "specs.physical.error_model.between_scale"),
    (lambda d: d["specs"]["physical"]["error_model"].update(within_scale=None),
     "specs.physical.error_model.within_scale"),
    (lambda d: d["specs"]["physical"]["error_model"].update(df=0), "specs.physical.error_model.df"),
    (lambda d: d["specs"]["physical"].update(residual_scale=-1.0), "specs.physical.residual_scale"),
    (_negvar, "specs.physical.covariance"),
    (_asym, "specs.physical.covariance"),
])
def test_corrupt_coefficient_files_exit_2_naming_the_field(sim_dir, tmp_path, capsys, mutate, field):
    """Negative scale or variance, a null scale, df 0, an asymmetric or non-PSD covariance:
    exit 2 with one line naming the field, never a NaN reaching an integer conversion."""
    doc = json.loads((sim_dir / "vllm" / "latest.json").read_text())
    mutate(doc)
    p = tmp_path / "v0001.json"
    p.write_text(json.dumps(doc))
    rc, out, err = _run(["--params", str(p), "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100"], capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], err


def test_unfitted_framework_prints_no_calibrated_probability(tmp_path, capsys):
    from _simulated_coefficients import simulate, write

    d = write(simulate("tgi", status="unfitted"), tmp_path)
    rc, out, _ = _run(["--params", str(d), "--model", "Qwen/Qwen2.5-7B", "--gpu", "H100", "--batch-size", "4",
                       "--input-len", "1000"], capsys)
    assert rc == 0 and "SEED-PLAN CONSTANTS, NOT FITTED" in out and "uncalibrated" in out
    rc, out, _ = _run(["--params", str(d), "--model", "Qwen/Qwen2.5-7B", "--gpu", "H100", "--batch-size", "4",
                       "--input-len", "1000", "--json"], capsys)
    r = json.loads(out)
    assert r["status"] == "unfitted" and r["fit_probability"] is None
    assert r["fit_probability_status"].startswith("uncalibrated")


def test_config_json_path(sim_dir, tmp_path, capsys):
    cfg = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256, "torch_dtype": "bfloat16",
           "max_position_embeddings": 8192, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rc, out, err = _run(["--params", str(sim_dir / "transformers"), "--config", str(tmp_path / "config.json"),
                         "--input-len", "100", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["weights_gib"] > 0


def test_real_process_json(sim_dir):
    out = subprocess.run([sys.executable, "-m", "fitting.estimate", "--params", str(sim_dir / "vllm"), "--model",
                          "meta-llama/Llama-3.1-70B", "--tp", "4", "--batch-size", "32", "--input-len", "8192",
                          "--output-len", "0", "--kv-cache-dtype", "fp8", "--gpu", "H100", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert BASE_KEYS | GPU_KEYS | VLLM_GPU_KEYS <= set(r)


# ----------------------------------------------------------------------------- the model source chain
def test_the_answer_says_which_source_answered(capsys):
    rc, out, _ = _run(["--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--offline"], capsys)
    assert rc == 0
    assert "answered by the registry" in out and "weights per GPU (tp=1, pp=1, bfloat16): 14.96 GiB language model" in out
    rc, out, _ = _run(["--model", "meta-llama/Llama-3.1-8B", "--offline", "--json"], capsys)
    src = json.loads(out)["model_source"]
    assert rc == 0 and src["source"] == "registry" and src["unmodelled_weight_bytes"] == {}


def test_a_local_checkpoint_folder_is_estimated_and_says_what_is_not_modelled(capsys):
    folder = ROOT / "tests" / "data" / "hub" / "qwen2.5-vl-32b-instruct-awq"
    rc, out, err = _run(["--model", str(folder), "--offline", "--gpu", "H100"], capsys)
    assert rc == 0, err
    assert "answered by the local folder" in out and "awq-int4-g128" in out
    assert "vision_config: not modelled" in out


def test_offline_unknown_id_is_an_actionable_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: nothing to answer from
    rc, out, err = _run(["--model", "someone/never-published-7B", "--offline"], capsys)
    assert rc == 2 and out == ""
    assert "someone/never-published-7B" in err and "config.json" in err and "offline" in err.lower()


def test_sglang_answers_what_its_reserve_must_hold(sim_dir, capsys):
    """SGLang sizes its pool first and allocates its attention workspaces, CUDA graphs and
    prefill in the rest, (1 - mem_fraction_static) of the GPU: the answer sizes those
    (fitting.physics.sglang) and warns when a hand-set fraction leaves too little. Qwen2.5-7B
    on an L4 (22 GiB: chunked prefill 4096, max bs 48, FlashInfer with Qwen2's 512 MiB
    workspace): SGLang's default 0.695 leaves 6.7 GiB for about 1.8 GiB; 0.95 leaves 1.1 GiB."""
    base = ["--params", str(sim_dir / "sglang"), "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "L4", "--json"]
    rc, out, err = _run(base, capsys)
    assert rc == 0, err
    r = json.loads(out)
    res = r["sglang_reserve"]
    assert res["attention_backend"] == "flashinfer" and res["cuda_graph_max_bs"] == 48
    assert res["chunked_prefill_size"] == 4096 and res["piecewise_cuda_graph_max_tokens"] == 4096
    assert res["parts_gib"]["attention_setup"] == pytest.approx((512 + 24) / 1024, abs=0.01)
    assert res["needed_lower_gib"] < res["needed_gib"] < res["needed_upper_gib"] < res["reserve_gib"]
    assert res["reserve_gib"] == pytest.approx((1 - r["gpu_memory_utilization"]) * r["gpu_memory_gib"])
    assert not any("may run out of memory after sizing its pool" in w for w in r["warnings"])
    rc, out, err = _run(base + ["--mem-fraction-static", "0.95"], capsys)
    r = json.loads(out)
    assert r["sglang_reserve"]["reserve_gib"] < r["sglang_reserve"]["needed_upper_gib"]
    assert any("may run out of memory after sizing its pool" in w for w in r["warnings"])
    assert r["sglang_reserve"]["max_mem_fraction_static"] < 0.95
    # Hopper takes FA3 (no FlashInfer workspace) and the 80 GB tier's 256 / 8192
    rc, out, err = _run(["--params", str(sim_dir / "sglang"), "--model", "meta-llama/Llama-3.1-8B-Instruct",
                         "--gpu", "H100", "--json"], capsys)
    res = json.loads(out)["sglang_reserve"]
    assert res["attention_backend"] == "fa3" and res["parts_gib"]["attention_setup"] == 0.0
    assert res["cuda_graph_max_bs"] == 256 and res["chunked_prefill_size"] == 8192


def test_vision_tower_weights_where_the_engine_loads_them(sim_dir, capsys):
    """Qwen2.5-VL-7B: vLLM loads the 676,550,144-parameter tower beside the language model (1.26
    GiB in bf16, its linear layers split over tp); llama.cpp's GGUF is the language model only
    (the tower is a separate mmproj file)."""
    args = ["--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--input-len", "4096", "--json"]
    rc, out, err = _run(["--params", str(sim_dir / "vllm"), *args], capsys)
    assert rc == 0, err
    r = json.loads(out)
    arch = resolve_model("Qwen/Qwen2.5-VL-7B-Instruct").architecture
    lm = physics.weight_bytes_per_gpu(arch, dtype="bfloat16") / GIB
    assert r["weights_gib"] == pytest.approx(lm + 2 * 676_550_144 / GIB, rel=1e-9)
    assert r["settings"]["vision_tower_gib"] == pytest.approx(2 * 676_550_144 / GIB)
    assert any("1.26 GiB vision tower (physics)" in n for n in r["model_source"]["notes"])
    assert any("the weights include its 1.26 GiB tower" in w for w in r["warnings"])
    rc, out, err = _run(["--params", str(sim_dir / "vllm"), *args, "--tp", "2"], capsys)
    r2 = json.loads(out)
    assert lm / 2 + 0.6 < r2["weights_gib"] < r["weights_gib"] / 2 + 0.01
    rc, out, err = _run(["--params", str(sim_dir / "llamacpp"), *args], capsys)
    r3 = json.loads(out)
    assert "vision_tower_gib" not in r3["settings"]
    assert not any("vision tower" in n for n in r3["model_source"]["notes"])
