"""Harvested public logs (profiles/public/<framework>/logs/*.log) -> profiles.

The committed profiles equal a fresh conversion; every profile carries its source and the
printed evidence; the llama.cpp parser reproduces the printed figures of each real log
exactly, including the new cache-geometry settings and the printed hyperparameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fitting.data.profiles import profile_converter
from fitting.ingest.harvest import HarvestError, convert_logs, main, read_log, write_harvest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "profiles" / "public"
LOGS = PUBLIC / "llamacpp" / "logs"


def _by_source(profiles):
    return {p["provenance"]["source_file"].rsplit("/", 1)[1]: p for p in profiles}


@pytest.fixture(scope="module")
def harvested():
    profiles, problems = convert_logs(PUBLIC)
    assert not problems, problems
    return profiles


def test_committed_harvest_matches_a_fresh_conversion(harvested, tmp_path):
    write_harvest(harvested, tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*.json")}
    # the harvest's own files (other converters write the same folders and keep theirs)
    committed = {p.relative_to(PUBLIC): p.read_bytes() for p in PUBLIC.glob("*/*.json")
                 if (profile_converter(p) or "").startswith("fitting.ingest.harvest")}
    assert set(committed) == set(fresh), "run: python -m fitting.ingest.harvest"
    assert all(committed[k] == fresh[k] for k in fresh), "run: python -m fitting.ingest.harvest"


def test_every_harvested_profile_has_provenance(harvested):
    assert len(harvested) >= len(list(LOGS.glob("*.log")))
    for p in harvested:
        prov = p["provenance"]
        assert prov["kind"] == "public-log" and prov["converter"].startswith("fitting.ingest.harvest")
        assert prov.get("url") or prov.get("ref")
        assert prov["evidence"] and prov["source_file"].startswith("profiles/public/")
        assert p["use_in_fit"] == (p.get("exclude_reason") is None)
        if p["model"]["id"] is None:
            assert not p["use_in_fit"]


def test_new_format_log_figures_exactly(harvested):
    # llama_kv_cache_unified era (mid 2025), print_info hyperparameters, no flash attention
    p = _by_source(harvested)["tgwui-phi3-mini-4k-q4-rtx3070.log"]
    assert p["measured"] == {"weights_mib": 2228.82, "weights_cpu_mib": 52.84, "kv_cache_mib": 1536.0,
                             "compute_buffer_mib": 150.0}
    es = p["engine_settings"]
    assert (es["kv_cells"], es["kv_layers"], es["kv_seqs"], es["n_ubatch"], es["flash_attn"]) == (4096, 32, 1, 256, "0")
    assert (es["type_k"], es["type_v"], es["output_buffer_host_mib"], es["n_ctx_seq"]) == ("f16", "f16", 0.12, 4096)
    hp = p["model"]["hparams_printed"]
    assert hp == {"arch": "phi3", "n_ctx_train": 4096, "n_embd": 3072, "n_layer": 32, "n_head": 32, "n_head_kv": 32,
                  "n_rot": 96, "n_swa": 0, "n_embd_head_k": 96, "n_embd_head_v": 96, "n_gqa": 1,
                  "n_embd_k_gqa": 3072, "n_embd_v_gqa": 3072, "n_ff": 8192, "n_expert": 0, "n_expert_used": 0,
                  "n_vocab": 32064}
    assert p["model"]["id"] == "microsoft/Phi-3-mini-4k-instruct"
    assert "duplicate_record" in p["flags"] and not p["use_in_fit"]  # the same run is in shared/data/public-logs


def test_2024_format_log_figures_exactly(harvested):
    # llm_load_print_meta / llama_new_context_with_model era (2024), mixed K/V cache types
    p = _by_source(harvested)["ik-llama-3.1-8b-iq4nl-k-cache-3090.log"]
    assert p["measured"] == {"weights_mib": 4941.0, "weights_cpu_mib": 344.44, "kv_cache_mib": 82.0,
                             "compute_buffer_mib": 266.5}
    es = p["engine_settings"]
    assert (es["type_k"], es["type_v"], es["n_ubatch"], es["n_batch"], es["output_buffer_host_mib"]) == \
        ("iq4_nl", "f16", 512, 1024, 0.98)
    assert p["workload"]["context_len"] == 1024
    assert p["model"]["hparams_printed"]["n_embd_k_gqa"] == 1024
    assert "fork_build" in p["flags"] and not p["use_in_fit"]


def test_per_layer_hparams_and_swa_caches_are_read():
    from fitting.ingest import parse_log

    log = "\n".join([
        "print_info: arch             = gemma3",
        "print_info: n_embd           = 640",
        "print_info: n_layer          = 3",
        "print_info: n_head           = 4",
        "print_info: n_head_kv        = [1, 1, 2]",
        "print_info: n_swa            = 512",
        "print_info: n_vocab          = 262144",
        "load_tensors: layer   0 assigned to device CUDA0, is_swa = 1",
        "load_tensors: layer   1 assigned to device CUDA0, is_swa = 1",
        "load_tensors: layer   2 assigned to device CUDA0, is_swa = 0",
        "llama_kv_cache_iswa: creating non-SWA KV cache, size = 32768 cells",
        "llama_kv_cache:      CUDA0 KV buffer size =    64.00 MiB",
        "llama_kv_cache: size =   64.00 MiB ( 32768 cells,   1 layers,  1/1 seqs), K (f16):   32.00 MiB, V (f16):   32.00 MiB",
        "llama_kv_cache_iswa: creating     SWA KV cache, size = 1024 cells",
        "llama_kv_cache:      CUDA0 KV buffer size =     4.00 MiB",
        "llama_kv_cache: size =    4.00 MiB (  1024 cells,   2 layers,  1/1 seqs), K (f16):    2.00 MiB, V (f16):    2.00 MiB",
    ]) + "\n"  # simulated lines in the b6000+ format (test input, not a measurement)
    (p,) = parse_log(log, "llamacpp")
    hp, es = p["model"]["hparams_printed"], p["engine_settings"]
    assert hp["n_head_kv"] == [1, 1, 2] and hp["swa_layers"] == [1, 1, 0]
    assert (es["kv_cells"], es["kv_layers"], es["kv_cells_swa"], es["kv_layers_swa"]) == (32768, 1, 1024, 2)
    assert p["measured"]["kv_cache_mib"] == 68.0


def test_header_must_name_a_source(tmp_path):
    log = tmp_path / "llamacpp" / "logs" / "x.log"
    log.parent.mkdir(parents=True)
    log.write_text("# model: a/b\nllama_kv_cache: size = 1.00 MiB\n", encoding="utf-8")
    with pytest.raises(HarvestError, match="neither url nor ref"):
        read_log(log, tmp_path)
    log.write_text("# url: https://example.org/x\n# bogus: 1\n", encoding="utf-8")
    with pytest.raises(HarvestError, match="unknown header key"):
        read_log(log, tmp_path)


def test_bad_logs_are_listed_and_the_rest_written(tmp_path, capsys):
    folder = tmp_path / "llamacpp" / "logs"
    folder.mkdir(parents=True)
    (folder / "good.log").write_bytes((LOGS / "tgwui-phi3-mini-4k-q4-rtx3070.log").read_bytes())
    (folder / "empty.log").write_text("# url: https://example.org/empty\nnothing here\n", encoding="utf-8")
    assert main(["--root", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "empty.log" in err and "no measurements" in err
    written = list((tmp_path / "llamacpp").glob("*.json"))
    assert len(written) == 1
    # a foreign file in the folder is kept, this converter's stale file is removed
    foreign = tmp_path / "llamacpp" / "llamacpp-other-0000000000.json"
    foreign.write_text(json.dumps({"provenance": {"converter": "fitting.public_logs 0.1"}}), encoding="utf-8")
    (folder / "good.log").unlink()
    assert main(["--root", str(tmp_path)]) == 0
    assert foreign.exists() and not written[0].exists()


def test_concurrent_gpu_use_flag_excludes_the_start(tmp_path):
    """SGLang docs-build logs: free-memory deltas shared with other notebooks stay out of fits."""
    src = LOGS.parent.parent / "sglang" / "logs"
    logs = sorted(src.glob("sgl-docs-*.log"))
    assert logs, "the docs-build SGLang logs are harvested"
    folder = tmp_path / "sglang" / "logs"
    folder.mkdir(parents=True)
    (folder / logs[0].name).write_bytes(logs[0].read_bytes())
    profiles, problems = convert_logs(tmp_path)
    assert not problems and profiles
    for p in profiles:
        assert "concurrent_gpu_use" in p["flags"] and p["use_in_fit"] is False
        assert "other processes used the GPU" in p["exclude_reason"]


def test_a_guessed_file_type_gives_way_to_the_reviewed_header(harvested):
    """llama.cpp prints 'all F32 (guessed)' for a GGUF without its file type; the header's
    weight_format (here F16: the CI converted the model with --outtype f16) replaces it, also
    as the profile's quantization."""
    p = next(x for x in harvested if x["provenance"]["source_file"].endswith("ggml-ci-pythia-2.8b-f16-v100-b4424.log"))
    assert p["model"]["weight_format"] == "F16" and p["precision"]["quantization"] == "gguf:F16"
    assert "guessed" in p["provenance"]["evidence"]


def test_vllm_cuda_graph_estimate_is_read(harvested):
    """vLLM 0.20+ states the CUDA-graph estimate it takes out of the KV budget twice: as
    "The current --gpu-memory-utilization=0.9200 is equivalent to --gpu-memory-utilization=0.8565
    without CUDA graph memory profiling" (u - estimate / total, to 4 decimals) and as "CUDA graph
    pool memory: 2.4 GiB (actual), 2.82 GiB (estimated)"; the first, with the device total, is
    the finer one."""
    by_source = _by_source(p for p in harvested if p["framework"] == "vllm")
    flashinfer = by_source["h6-gemma-4-26b-a4b-it-fp8-dynamic-l40s-v0.29.0-a-flashinfer.log"]
    # (0.92 - 0.8565) x 44.39 GiB
    assert flashinfer["engine_settings"]["cuda_graph_estimate_gib"] == 2.8188
    assert flashinfer["measured"]["cuda_graph_gib"] == 2.4
    only_pool_line = [p for p in by_source.values() if p["profile_id"] == "vllm-qwen-qwen3-4b-071a657144"]
    assert only_pool_line and only_pool_line[0]["engine_settings"]["cuda_graph_estimate_gib"] == 0.5


def test_compile_cache_state_from_the_log_or_the_side_file(harvested, tmp_path):
    """A vLLM log that prints its compile line gives the state itself (the gemma-2-9b-it pair:
    cold, then warm); the side file gives it for excerpts that left the line out, and a bad
    entry is refused."""
    from fitting.ingest.harvest import read_compile_cache
    by_src = _by_source(harvested)
    assert by_src["gh-syseeker-vllm-gemma2-9b-at4-09ec8189-rtxpro6000-solo.log"]["engine_settings"][
        "compile_cache"] == "cold"
    assert by_src["gh-syseeker-vllm-gemma2-9b-at4-26fc99e3-rtxpro6000-solo.log"]["engine_settings"][
        "compile_cache"] == "warm"
    side = read_compile_cache(PUBLIC / "vllm" / "logs")
    assert len(side) >= 40
    for name, entry in side.items():
        assert by_src[name]["engine_settings"]["compile_cache"] == entry["compile_cache"]
        assert entry["source"].split()[0] in by_src[name]["measurement_notes"]
    (tmp_path / "compile_cache.yaml").write_text("x.log:\n  compile_cache: hot\n  source: a b\n  lines: [y]\n")
    with pytest.raises(HarvestError):
        read_compile_cache(tmp_path)
