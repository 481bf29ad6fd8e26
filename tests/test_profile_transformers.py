"""transformers backend: model construction from the registry's real configs, on the CPU.

Needs torch and transformers (``pip install torch==2.13.0 transformers``); skipped without them.
The memory measurement itself needs a CUDA GPU (``gpu`` marker, skipped here).
"""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fitting import physics  # noqa: E402
from fitting.physics.architecture import Architecture  # noqa: E402
from fitting.profile.records import write_outcome  # noqa: E402
from fitting.profile.study import Scenario  # noqa: E402
from fitting.profile.transformers_runner import (  # noqa: E402
    UnsupportedScenario, build_config, hf_config_fields, measure_in_process, run_transformers_scenario,
)
from fitting.data.registry import load_registry, resolve_model  # noqa: E402

BATCH, INPUT, OUTPUT = 2, 9, 3
TOKENS = INPUT + OUTPUT - 1  # the last generated token is never fed back


def _shrink(fields: dict) -> dict:
    """The registry config made tiny (2 layers, width 64) but of the same kind: same model
    type, same attention layout class (MHA/GQA/MQA, explicit head_dim), experts, renamed keys."""
    f = dict(fields)
    heads = 4
    kv = f.get("num_key_value_heads", f.get("num_kv_heads"))
    f.update(num_hidden_layers=2, hidden_size=64, vocab_size=256, num_attention_heads=heads,
             max_position_embeddings=max(64, INPUT + OUTPUT))
    if kv is not None:
        key = "num_kv_heads" if "num_kv_heads" in f else "num_key_value_heads"
        f[key] = 1 if kv == 1 else (heads if kv == fields.get("num_attention_heads") else 2)
    if "head_dim" in f:
        f["head_dim"] = 24  # explicit head_dim != hidden/heads, as in Llama-3.2 / Gemma
    for key in ("intermediate_size", "ffn_dim", "moe_intermediate_size", "shared_expert_intermediate_size"):
        if key in f:
            f[key] = 96
    for key in ("num_local_experts", "num_experts"):
        if key in f:
            f[key] = 4
    if "num_experts_per_tok" in f:
        f["num_experts_per_tok"] = 2
    if f["model_type"] == "opt":
        f["word_embed_proj_dim"] = 64
    if "sliding_window" in f and f["sliding_window"]:
        f["sliding_window"] = 4
    return f


def _arch(fields: dict) -> Architecture:
    cfg = dict(fields)
    if cfg["model_type"] == "opt":
        cfg["intermediate_size"] = cfg.pop("ffn_dim")
    if cfg["model_type"] == "falcon":
        cfg["num_key_value_heads"] = cfg.pop("num_kv_heads")
    return Architecture.from_hf_config(cfg)


# --------------------------------------------------------------------------- configs of the whole registry


def test_every_registry_config_builds():
    reg = load_registry()
    built, refused = 0, []
    for model_id in reg.model_ids:
        try:
            entry = resolve_model(model_id)
        except LookupError:  # listed without verified dimensions
            continue
        try:
            cfg = build_config(hf_config_fields(entry))
        except UnsupportedScenario as exc:
            refused.append((model_id, str(exc)))
            continue
        text = cfg.get_text_config()
        arch = entry.architecture
        assert text.num_hidden_layers == arch.num_layers, model_id
        assert text.hidden_size == arch.hidden_size, model_id
        assert text.vocab_size == arch.vocab_size, model_id
        built += 1
    assert built >= 60 and len(refused) <= 2, refused


def test_partial_rope_scaling_is_dropped_and_keys_are_renamed():
    llama = hf_config_fields(resolve_model("meta-llama/Llama-3.2-1B"))
    assert "rope_scaling" not in llama  # stored without low/high_freq_factor
    opt = hf_config_fields(resolve_model("facebook/opt-125m"))
    assert opt["ffn_dim"] == resolve_model("facebook/opt-125m").architecture.intermediate_size
    assert "intermediate_size" not in opt
    gemma3 = hf_config_fields(resolve_model("google/gemma-3-4b-it"))
    assert gemma3["model_type"] == "gemma3_text"  # the text model of the multimodal checkpoint
    assert gemma3.get("rope_scaling") == {"rope_type": "linear", "factor": 8.0}  # complete: kept
    assert build_config(opt).ffn_dim == opt["ffn_dim"]


# --------------------------------------------------------------------------- tiny real architectures on the CPU

MODELS = ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B", "tiiuae/falcon-7b", "facebook/opt-125m",
          "mistralai/Mixtral-8x7B-v0.1", "Qwen/Qwen3-30B-A3B"]


@pytest.mark.parametrize("model_id", MODELS)
def test_prefill_decode_kv_cache_matches_physics(model_id):
    fields = _shrink(hf_config_fields(resolve_model(model_id)))
    arch = _arch(fields)
    sc = Scenario(model=model_id, backend="transformers", batch_size=BATCH, input_len=INPUT, output_len=OUTPUT)
    out = measure_in_process(sc, device="cpu", fields=fields)
    m, d = out["measured"], out["details"]
    assert d["cached_tokens"] == TOKENS and d["torch_dtype"] == "bfloat16"
    per_token = physics.kv_bytes_per_token(arch, dtype="bfloat16")
    assert m["kv_cache_bytes"] == per_token * BATCH * TOKENS
    # the same number from first principles: K and V, per layer, per KV head, per head dim, 2 bytes
    assert m["kv_cache_bytes"] == 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * 2 * BATCH * TOKENS
    assert m["weights_bytes"] == d["parameter_and_buffer_bytes"] > 0


def test_fp8_kv_cache_is_one_byte_per_element():
    model_id = "meta-llama/Llama-3.2-1B"
    fields = _shrink(hf_config_fields(resolve_model(model_id)))
    arch = _arch(fields)
    sc = Scenario(model=model_id, backend="transformers", batch_size=BATCH, input_len=INPUT, output_len=OUTPUT,
                  kv_cache_dtype="fp8")
    out = measure_in_process(sc, device="cpu", fields=fields)
    scales = arch.num_layers * 2 * 4  # one float32 scale per layer for K and for V
    assert out["measured"]["kv_cache_bytes"] == physics.kv_bytes_per_token(arch, kv_cache_dtype="fp8") * BATCH * TOKENS + scales
    assert out["details"]["cache_class"] == "QuantizedCache"


def test_unsupported_scenarios_are_refused_clearly():
    fields = _shrink(hf_config_fields(resolve_model("meta-llama/Llama-3.2-1B")))
    for bad in (dict(tp=2), dict(quantization="awq"), dict(kv_cache_dtype="fp8_e5m2")):
        with pytest.raises(UnsupportedScenario):
            measure_in_process(Scenario(model="meta-llama/Llama-3.2-1B", backend="transformers", **bad),
                               device="cpu", fields=fields)
    gemma = _shrink(hf_config_fields(resolve_model("google/gemma-2-2b")))  # sliding-window layers
    with pytest.raises(UnsupportedScenario, match="fp8"):
        measure_in_process(Scenario(model="google/gemma-2-2b", backend="transformers", kv_cache_dtype="fp8",
                                    batch_size=1, input_len=4, output_len=2), device="cpu", fields=gemma)


def test_worker_process_end_to_end_on_cpu(tmp_path):
    """The real path: a fresh worker process builds facebook/opt-125m (full size, random weights)
    from the registry, generates, and the parent writes a valid measured profile."""
    sc = Scenario(model="facebook/opt-125m", backend="transformers", batch_size=1, input_len=8, output_len=2)
    res = run_transformers_scenario(sc, log_path=tmp_path / "logs" / f"{sc.id}.log", device="cpu", timeout_s=300)
    assert res.ok, res.error
    arch = resolve_model("facebook/opt-125m").architecture
    assert res.measured["kv_cache_bytes"] == physics.kv_bytes_per_token(arch, dtype="bfloat16") * 9
    assert res.command[1:3] == ["-m", "fitting.profile._worker"]
    path = write_outcome(tmp_path / "out", sc, res, environment={"versions": {"transformers": "x"}}, study_name="t")
    rec = json.loads(path.read_text())
    assert rec["framework"] == "transformers" and rec["kv_cache_mode"] == "growing"
    assert rec["provenance"]["environment"]["torch"] == torch.__version__
    assert rec["engine_settings"]["kv_cache_impl"] == "DynamicCache"


def test_worker_failure_becomes_a_final_error_record(tmp_path):
    sc = Scenario(model="facebook/opt-125m", backend="transformers", tp=2)
    res = run_transformers_scenario(sc, log_path=tmp_path / "w.log", device="cpu", timeout_s=300)
    assert not res.ok and res.error.kind == "unsupported_configuration" and res.error.final
    assert "tp=2" in res.error.message


# --------------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="memory measurement needs a CUDA GPU")
def test_gpu_measurement_is_consistent():
    sc = Scenario(model="Qwen/Qwen2.5-0.5B", backend="transformers", batch_size=4, input_len=256, output_len=8)
    m = measure_in_process(sc, device="cuda:0")["measured"]
    assert m["peak_allocated_bytes"] >= m["weights_bytes"] + m["kv_cache_bytes"]
    assert m["peak_reserved_bytes"] >= m["peak_allocated_bytes"]
    assert m.get("peak_total_bytes", m["peak_reserved_bytes"]) >= m["peak_reserved_bytes"]
