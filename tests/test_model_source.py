"""Any model a user names (issue 16): quantization configs, hybrid / multimodal configs, local
checkpoint folders, and the physics weights against real safetensors metadata.

The checkpoints under ``tests/data/hub/<name>/`` are verbatim ``config.json`` and
``model.safetensors.index.json`` files of public repositories (``SOURCE.json`` in each folder
names the repository, path and commit; a ``.gz`` file is the gzip of the verbatim file).
The index's ``metadata.total_size`` is the checkpoint's own byte count, written by whoever
saved it: the independent figure the physics is checked against.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import struct
from pathlib import Path

import pytest

from fitting.data.model_source import (
    SOURCE_LOCAL,
    SOURCE_REGISTRY,
    WEIGHT_TOLERANCE,
    ModelNotFoundError,
    ModelSourceError,
    check_weights,
    entry_from_config,
    load_local,
    read_local_safetensors,
    resolve_any,
    summary_from_headers,
)
from fitting.data.registry import UnknownModelError, load_registry
from fitting.physics.architecture import (
    FULL_ATTENTION,
    LINEAR_ATTENTION,
    SLIDING_ATTENTION,
    Architecture,
    ArchitectureError,
    unrecognised_config_keys,
)
from fitting.physics.memory import weight_bytes_per_gpu
from fitting.physics.towers import tower_bytes_per_gpu
from fitting.physics.parameters import count_parameters, tensor_inventory
from fitting.physics.quantization import (
    UnsupportedQuantizationError,
    checkpoint_weight_bytes,
    quantization_from_config,
    weight_format,
)

HUB = Path(__file__).resolve().parent / "data" / "hub"


def hub_folder(name: str, dest: Path) -> Path:
    """Copy ``tests/data/hub/<name>`` to ``dest`` as a checkpoint folder (``.gz`` files unpacked)."""
    out = dest / name
    out.mkdir(parents=True)
    for f in (HUB / name).iterdir():
        if f.name == "SOURCE.json":
            continue
        if f.suffix == ".gz":
            (out / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
        else:
            shutil.copy(f, out / f.name)
    return out


def hub_json(name: str, file: str) -> dict:
    p = HUB / name / file
    data = gzip.decompress(p.with_name(file + ".gz").read_bytes()) if not p.exists() else p.read_bytes()
    return json.loads(data)


# ----------------------------------------------------------------------------- weights vs metadata
#: checkpoints with a real index total_size: (folder, kinds the check covers).
REAL_INDEXED = {
    "qwen3.5-18b-reap-a3b": {"moe", "gqa", "hybrid"},
    "wizardlm-2-8x22b": {"moe", "gqa"},
    "reflection-llama-3.1-70b": {"dense", "gqa", "float32"},
    "devstral-small-2507": {"dense", "gqa"},
    "prymmal-phi3-3b-slerp": {"dense", "sliding"},
    "cogito-v1-preview-qwen-14b": {"dense", "gqa", "qkv-bias"},
    "prymmal-yi1.5-6b-slerp": {"dense", "gqa"},
    "falcon-180b-chat": {"dense", "gqa", "tied-copy"},
    "qwen3-1.7b": {"dense", "gqa", "tied"},
    "qwen3-14b-mlx-4bit": {"dense", "gqa", "quantized"},
    "mimo-7b": {"dense", "gqa", "mtp"},
}


@pytest.mark.parametrize("name", sorted(REAL_INDEXED))
def test_physics_weights_match_the_real_index_total_size(name, tmp_path):
    resolved = load_local(hub_folder(name, tmp_path))
    stated = hub_json(name, "model.safetensors.index.json")["metadata"]["total_size"]
    chk = resolved.weight_check
    assert resolved.source == SOURCE_LOCAL and resolved.safetensors.stated_total_size == stated
    assert chk is not None and chk.comparable, chk
    assert abs(chk.rel_error) <= WEIGHT_TOLERANCE, (name, chk)
    # the compared figure is the stated one (less a stored copy of a tied LM head)
    arch = resolved.entry.architecture
    tied_copy = arch.vocab_size * arch.hidden_size * 2 if "tied-copy" in REAL_INDEXED[name] else 0
    assert chk.metadata_bytes == stated - tied_copy


def test_the_checked_set_spans_the_families_the_issue_names():
    kinds = set().union(*REAL_INDEXED.values()) | {"mla", "sliding", "quantized"}
    assert {"dense", "moe", "gqa", "sliding", "quantized", "hybrid"} <= kinds
    assert len(REAL_INDEXED) >= 10
    archs = {n: Architecture.from_hf_config(hub_json(n, "config.json")) for n in REAL_INDEXED}
    assert archs["qwen3.5-18b-reap-a3b"].is_hybrid and archs["wizardlm-2-8x22b"].is_moe
    assert archs["prymmal-phi3-3b-slerp"].sliding_window == 2047
    assert quantization_from_config(hub_json("qwen3-14b-mlx-4bit", "config.json")["quantization_config"]).format \
        == "mlx-b4-g64"


def test_mla_weights_match_the_stated_shard_sizes_and_printed_count():
    """MLA (DeepSeek-V2-Lite architecture): no index with total_size was reachable; the registry
    cites the official DeepSeek-Coder-V2-Lite-Instruct repo tree (4 shards 8.59 + 8.59 + 8.59 +
    5.64 GB = 31.41 GB, each rounded to 10 MB) and a printed count of a loaded DeepSeek-V2-Lite,
    15,706,484,224 parameters (ChatLLM.cpp, public GitHub file ref 41727181442)."""
    reg = load_registry()
    entry = reg.resolve("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct")
    assert entry.architecture.is_mla and entry.architecture.is_moe
    notes = " ".join(entry.notes)
    assert "8.59 + 8.59 + 8.59 + 5.64 GB = 31.41 GB" in notes
    shards_gb = (8.59, 8.59, 8.59, 5.64)
    stated = sum(shards_gb) * 1e9
    got = checkpoint_weight_bytes(entry.architecture, dtype="bfloat16")
    assert abs(got / stated - 1) <= len(shards_gb) * 0.005e9 / stated + 1e-12  # within the rounding of the sizes
    assert abs(got / stated - 1) < WEIGHT_TOLERANCE
    lite = reg.resolve("deepseek-ai/DeepSeek-V2-Lite").architecture
    assert count_parameters(lite).total == 15_706_484_224  # printed by ChatLLM.cpp (ref 41727181442)


def test_mxfp4_sliding_moe_matches_its_stated_total_size():
    entry = load_registry().resolve("openai/gpt-oss-20b")  # alternating sliding window, MoE, MXFP4 experts
    stated = int(str(entry.params["checkpoint_bytes"]).split()[0].replace(",", ""))
    got = checkpoint_weight_bytes(entry.architecture, quantization=entry.native_quantization)
    assert entry.architecture.sliding_window and entry.architecture.is_moe
    assert abs(got / stated - 1) < WEIGHT_TOLERANCE


def test_a_wrong_architecture_is_caught_by_the_metadata(tmp_path):
    """The check can fail: the same index against a config with one layer fewer disagrees."""
    folder = hub_folder("qwen3-1.7b", tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["num_hidden_layers"] -= 1
    (folder / "config.json").write_text(json.dumps(cfg))
    resolved = load_local(folder)
    assert not resolved.weight_check.agrees
    assert any("differ from the safetensors metadata" in w for w in resolved.warnings)


def test_tied_lm_head_copy_is_recognised_and_named():
    cfg = hub_json("falcon-180b-chat", "config.json")
    arch = Architecture.from_hf_config(cfg)
    assert arch.tie_word_embeddings and "tie_word_embeddings" in arch.defaulted_fields
    index = hub_json("falcon-180b-chat", "model.safetensors.index.json")
    assert "lm_head.weight" in index["weight_map"]
    from fitting.data.model_source import summary_from_index

    chk = check_weights(arch, summary_from_index(index))
    assert "tied to the embedding" in chk.basis and chk.agrees


def test_multimodal_index_is_not_compared_but_said_so(tmp_path):
    resolved = load_local(hub_folder("medgemma-27b-it", tmp_path))
    arch = resolved.entry.architecture
    assert arch.model_type == "gemma3" and arch.text_model_type == "gemma3_text" and arch.sliding_window
    assert resolved.towers == ("vision_config",)
    chk = resolved.weight_check
    assert not chk.comparable and "vision not modelled" in chk.basis
    assert chk.metadata_bytes > chk.physics_bytes  # the tower is in the total
    assert any("vision_config: not modelled" in w for w in resolved.warnings)
    assert any("not modelled" in line for line in resolved.describe())


def test_headers_count_the_tower_and_compare_the_language_model():
    """Safetensors *headers* (dtype and shape per tensor) give the tower's bytes exactly.
    The headers here are DERIVED from the physics inventory of a real config (labelled so):
    they test the bookkeeping, not the physics."""
    cfg = hub_json("qwen3-1.7b", "config.json")
    arch = Architecture.from_hf_config(cfg)
    headers = {"model-00001-of-00002.safetensors": derived_header(arch),
               "model-00002-of-00002.safetensors": {"visual.blocks.0.attn.qkv.weight": {"dtype": "BF16", "shape": [3840, 1280]},
                                                    "visual.merger.mlp.0.weight": {"dtype": "BF16", "shape": [5120, 5120]}}}
    summary = summary_from_headers(headers)
    parts = summary.part_bytes(arch)
    assert parts["vision"] == (3840 * 1280 + 5120 * 5120) * 2
    chk = check_weights(arch, summary)
    assert chk.comparable and chk.rel_error == 0.0  # derived headers: equal by construction


def derived_header(arch: Architecture, dtype: str = "BF16") -> dict:
    """DERIVED safetensors header from the physics inventory (HF-style names; experts expanded)."""
    out = {}
    for spec in tensor_inventory(arch):
        shape = [spec.rows, spec.cols] if spec.cols > 1 else [spec.rows]
        prefix = "" if spec.role == "lm_head" else "model."
        for layer in (spec.layers or [None]):
            for e in range(spec.copies):
                name = spec.name
                if spec.copies > 1:
                    name = name.replace("experts.", f"experts.{e}.")
                full = f"{prefix}layers.{layer}.{name}" if layer is not None else f"{prefix}{name}"
                out[full] = {"dtype": dtype, "shape": shape}
    return out


# ----------------------------------------------------------------------------- quantization configs
def test_real_quantization_configs_map_to_their_storage():
    q = quantization_from_config(hub_json("internvl3-38b-awq", "config.json")["llm_config"]["quantization_config"])
    assert (q.method, q.format) == ("awq", "awq-int4-g128")
    q = quantization_from_config(hub_json("qwen2.5-vl-32b-instruct-awq", "config.json")["quantization_config"])
    assert q.format.startswith("awq-int4-g128")
    bnb = quantization_from_config(hub_json("molmo-7b-d-nf4", "config.json")["quantization_config"])
    assert bnb.format == "bnb-nf4" and "model.vision_backbone" in bnb.not_converted
    assert any("layer" not in x for x in bnb.not_converted)
    reg = load_registry().raw("Qwen/Qwen2-VL-2B-Instruct-AWQ")
    q = quantization_from_config(reg["config"]["quantization_config"])
    assert q.format == "awq-int4-g128" and q.not_converted == ("visual",)


@pytest.mark.parametrize("qcfg, name", [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True, "sym": True}, "gptq-int4-g128"),
    ({"quant_method": "gptq", "bits": 8, "group_size": -1}, "gptq-int8-g-1"),
    ({"bits": 4, "group_size": 32, "desc_act": False, "sym": True, "true_sequential": True}, "gptq-int4-g32"),  # quantize_config.json
    ({"quant_method": "awq", "w_bit": 4, "q_group_size": 64, "zero_point": True}, "awq-int4-g64"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
      "bnb_4bit_use_double_quant": True}, "bnb-nf4-dq"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8"),
    ({"quant_method": "fp8", "weight_block_size": [128, 128], "activation_scheme": "dynamic"}, "fp8-block128"),
    ({"quant_method": "fbgemm_fp8", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]},
     "fp8-per-channel@mlp"),
    ({"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float",
                                                                         "strategy": "channel"}}}},
     "fp8-per-channel"),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group",
                                                                         "group_size": 128, "symmetric": True,
                                                                         "actorder": "group"}}}},
     "w4a16-g128-actorder"),
    ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
      "config_groups": {"g": {"targets": ["re:.*mlp.experts.*"], "weights": {"num_bits": 4, "type": "float",
                                                                               "strategy": "tensor_group",
                                                                               "group_size": 16}}}},
     "nvfp4@experts"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "exclude_modules": ["lm_head"]}, "nvfp4"),
    ({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}},
     "fp8-per-tensor"),  # hf_quant_config.json
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router"]},
     "mxfp4"),
    ({"quant_method": "intel/auto-round", "bits": 4, "group_size": 128, "sym": True,
      "packing_format": "auto_round:auto_gptq"}, "gptq-int4-g128"),
    ({"quant_method": "exl2", "bits": 4.65, "head_bits": 6}, "exl2-b4.65-h6"),
    ({"quant_method": "torchao", "quant_type": {"default": {"_type": "Int4WeightOnlyConfig",
                                                             "_data": {"group_size": 128}}}}, "int4wo-g128"),
])
def test_quantization_config_to_weight_format(qcfg, name):
    info = quantization_from_config(qcfg)
    assert info.format == name
    assert weight_format(info.format).name == name  # the physics sizes it


def test_quantized_storage_from_first_principles():
    # compressed-tensors W4A16 g128, symmetric: int4 + a 16-bit scale per 128 inputs + int64[2] shape
    fmt = weight_format("w4a16-g128")
    assert fmt.matrix_bytes(4096, 4096) == 4096 * 4096 / 2 + 4096 * 32 * 2 + 16
    # with act-order: + an int32 g_idx per input column; asymmetric: + a packed int4 zero per group
    assert weight_format("w4a16-g128-actorder").matrix_bytes(8, 256) == 8 * 128 + 8 * 2 * 2 + 16 + 256 * 4
    assert weight_format("w4a16-g128-asym").matrix_bytes(8, 256) == 8 * 128 + 8 * 2 * 20 / 8 + 16
    # MLX affine 4-bit, group 64: packed weights + 16-bit scale and bias per group, embeddings too
    mlx = weight_format("mlx-b4-g64")
    assert mlx.matrix_bytes(64, 128) == 64 * 128 / 2 + 64 * 2 * 4 and mlx.scope == "all_matrices"
    # EXL2: average bits on the linear layers, head bits on the LM head
    exl = weight_format("exl2-b4.5-h6")
    assert exl.matrix_bytes(10, 16) == 10 * 16 * 4.5 / 8 and exl.matrix_bytes(10, 16, role="lm_head") == 10 * 16 * 6 / 8
    # @mlp keeps attention in the model dtype
    arch = load_registry().resolve("meta-llama/Llama-3.1-8B").architecture
    full, mlp_only = (checkpoint_weight_bytes(arch, quantization=q) for q in ("fp8-per-channel", "fp8-per-channel@mlp"))
    attn = sum(s.numel for s in tensor_inventory(arch) if s.quantizable and s.role.startswith("attn"))
    assert mlp_only - full == pytest.approx(attn * (2 - 1) - sum(
        s.rows * 4 * len(s.layers) for s in tensor_inventory(arch) if s.quantizable and s.role.startswith("attn")))


def test_unsupported_quantization_names_the_method_and_fields():
    with pytest.raises(UnsupportedQuantizationError, match="'hqq'.*nbits"):
        quantization_from_config({"quant_method": "hqq", "nbits": 4})
    with pytest.raises(UnsupportedQuantizationError, match="several weight schemes"):
        quantization_from_config({"quant_method": "compressed-tensors", "config_groups": {
            "a": {"weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}},
            "b": {"weights": {"num_bits": 8, "type": "int", "strategy": "channel"}}}})


def test_quantization_assumptions_are_stated():
    info = quantization_from_config({"quant_method": "bitsandbytes", "load_in_4bit": True,
                                     "llm_int8_skip_modules": ["lm_head", "model.layers.0.mlp.down_proj"]})
    assert info.format == "bnb-fp4"  # the bitsandbytes default quant type
    assert any("fp4" in a and "assumed" in a for a in info.assumptions)
    assert any("layer-specific" in a for a in info.assumptions)
    ex = quantization_from_config({"quant_method": "exl3", "bits": 3.0})
    assert ex.format == "exl3-b3-h6" and any("head_bits" in a for a in ex.assumptions)


# ----------------------------------------------------------------------------- architectures
def test_hybrid_gated_deltanet_layers():
    arch = Architecture.from_hf_config(hub_json("qwen3.5-18b-reap-a3b", "config.json"))
    assert arch.layer_types.count(LINEAR_ATTENTION) == 30 and arch.layer_types.count(FULL_ATTENTION) == 10
    assert arch.kv_layers == tuple(range(3, 40, 4)) and arch.num_full_layers == 10
    assert len(arch.recurrent_layers) == 30
    names = {s.name for s in tensor_inventory(arch)}
    assert "linear_attn.in_proj_qkv.weight" in names and "mlp.shared_expert_gate.weight" in names
    q = next(s for s in tensor_inventory(arch) if s.role == "attn_q")
    assert q.rows == 2 * arch.num_attention_heads * arch.head_dim and len(q.layers) == 10  # attn_output_gate
    with pytest.raises(ValueError, match="not modelled"):
        tensor_inventory(Architecture.from_hf_config({**hub_json("qwen3.5-18b-reap-a3b", "config.json"),
                                                      "layer_types": ["mamba"] * 40}))


def test_layer_kinds_and_unknown_kinds():
    base = {"model_type": "granitemoehybrid", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
            "intermediate_size": 128, "vocab_size": 100}
    a = Architecture.from_hf_config({**base, "layers_block_type": ["mamba", "attention", "mamba", "attention"]})
    assert a.kv_layers == (1, 3) and a.recurrent_layers == (0, 2)
    kimi = Architecture.from_hf_config({**base, "linear_attn_config": {"full_attn_layers": [4], "kda_layers": [1, 2, 3]}})
    assert kimi.layer_types == (LINEAR_ATTENTION,) * 3 + (FULL_ATTENTION,)
    with pytest.raises(ArchitectureError, match="unknown layer kind 'conv'"):
        Architecture.from_hf_config({**base, "layer_types": ["conv"] * 4})


def test_text_sub_configs_and_towers():
    ivl = Architecture.from_hf_config(hub_json("internvl3-38b-awq", "config.json"))
    assert (ivl.model_type, ivl.text_model_type, ivl.extra["text_config_key"]) == ("internvl_chat", "qwen2", "llm_config")
    assert ivl.extra["multimodal_towers"] == ("vision_config",)
    assert any(s.name == "self_attn.q_proj.bias" for s in tensor_inventory(ivl))  # Qwen2 q/k/v bias
    omni = Architecture.from_hf_config({"model_type": "qwen2_5_omni", "thinker_config": {
        "text_config": {"model_type": "qwen2_5_omni_text", "hidden_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
                        "vocab_size": 100}, "vision_config": {"depth": 2}, "audio_config": {"d_model": 8}},
        "talker_config": {"hidden_size": 8}})
    assert omni.extra["text_config_key"] == "thinker_config.text_config"
    assert set(omni.extra["multimodal_towers"]) == {"talker_config", "thinker_config.vision_config",
                                                    "thinker_config.audio_config"}


def test_llama4_layout():
    arch = load_registry().resolve("meta-llama/Llama-4-Scout-17B-16E-Instruct").architecture
    assert (arch.num_experts, arch.num_experts_per_tok, arch.moe_intermediate_size) == (16, 1, 8192)
    assert arch.intermediate_size == 16384 and arch.shared_expert_intermediate_size == 8192 and not arch.dense_layers
    assert arch.sliding_window == 8192 and arch.layer_types.count(SLIDING_ATTENTION) == 36
    again = Architecture.from_hf_config(arch.to_dict())  # the normalised form round-trips
    assert dataclasses.replace(again, extra={}) == dataclasses.replace(arch, extra={})


def test_unrecognised_config_keys_are_named():
    cfg = {"model_type": "mllama", "text_config": {"hidden_size": 8, "cross_attention_layers": [3, 8],
                                                   "rope_theta": 5e5, "num_hidden_layers": 10}}
    assert unrecognised_config_keys(cfg) == ("text_config.cross_attention_layers",)
    _, _, _, warnings = entry_from_config("x", {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                                    "num_attention_heads": 4, "intermediate_size": 128,
                                                    "vocab_size": 100, "hybrid_override_pattern": "M*M*"})
    assert any("hybrid_override_pattern" in w and "assumed not to change" in w for w in warnings)
    assert any("num_key_value_heads" in w and "default" in w for w in warnings)


# ----------------------------------------------------------------------------- the chain, locally
def test_registry_answers_first():
    r = resolve_any("meta-llama/Llama-3.1-8B", hub=False)
    assert r.source == SOURCE_REGISTRY and r.entry.architecture.num_layers == 32


def test_unknown_id_offline_says_how_to_pass_a_config():
    with pytest.raises(ModelNotFoundError) as err:
        resolve_any("someone/never-published-7B", hub=False)
    assert isinstance(err.value, UnknownModelError)
    msg = str(err.value)
    assert "config.json" in msg and "local folder" in msg
    with pytest.raises(UnknownModelError, match="listed as unsourced"):
        load_registry().resolve("xai-org/grok-2")
    with pytest.raises(ModelNotFoundError, match="lists it as unsourced: no config.json"):
        resolve_any("xai-org/grok-2", hub=False)


def test_a_missing_local_path_is_an_error():
    with pytest.raises(ModelSourceError, match="no such file or folder"):
        resolve_any("./nowhere/config.json", hub=False)


#: the issue's kinds of ids, as local checkpoint folders whose config.json could be sourced.
LOCAL_FOLDERS = {
    "internvl3-38b-awq": ("OpenGVLab/InternVL3-38B-AWQ", "awq-int4-g128"),
    "qwen2.5-vl-32b-instruct-awq": ("Qwen/Qwen2.5-VL-32B-Instruct-AWQ", "awq-int4-g128"),
    "qwen3.5-18b-reap-a3b": ("bryce-hoehn/Qwen3.5-18B-REAP-A3B-Coding", None),
    "qwen3-14b-mlx-4bit": ("Qwen3-14B-MLX-4bit", "mlx-b4-g64"),
    "medgemma-27b-it": ("google/medgemma-27b-it", None),
}


@pytest.mark.parametrize("name", sorted(LOCAL_FOLDERS))
def test_issue_kind_ids_resolve_from_a_local_folder_with_weights_per_gpu(name, tmp_path):
    _repo, fmt = LOCAL_FOLDERS[name]
    folder = hub_folder(name, tmp_path)
    r = resolve_any(str(folder), hub=False)
    assert r.source == SOURCE_LOCAL and r.entry.native_quantization == fmt
    arch = r.entry.architecture
    per_gpu = {tp: r.weights_per_gpu(tp=tp)["total_gib"] for tp in (1, 2)}
    # a tower of a family fitting.physics.towers counts is added (no safetensors headers here)
    tower = tower_bytes_per_gpu(arch) or 0.0
    assert per_gpu[1] * 2**30 == pytest.approx(weight_bytes_per_gpu(arch, quantization=fmt, dtype="auto") + tower)
    assert per_gpu[2] < per_gpu[1] < checkpoint_weight_bytes(arch, dtype="bfloat16") * 1.01 / 2**30
    lines = r.describe(tp=2)
    assert lines[0].startswith(f"model {folder}: answered by the local folder")
    lm2 = r.weights_per_gpu(tp=2)["language_model_gib"]
    assert any(line.startswith("weights per GPU (tp=2, pp=1, ") and f": {lm2:.2f} GiB" in line for line in lines)
    if fmt:
        assert any(fmt in line for line in lines)
    if tower:
        assert any("vision tower (physics)" in line for line in lines)
    elif r.towers:
        assert any("not modelled" in line for line in lines)


@pytest.mark.parametrize("model_id", ["Qwen/Qwen2-VL-2B-Instruct-AWQ", "01-ai/Yi-34B", "google/gemma-7b",
                                      "llava-hf/llava-1.5-7b-hf", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
                                      "XiaomiMiMo/MiMo-VL-7B-SFT", "Qwen/Qwen2.5-VL-3B-Instruct",
                                      "Qwen/Qwen1.5-MoE-A2.7B"])
def test_added_registry_configs_also_resolve_as_local_folders(model_id, tmp_path):
    """The configs added to the registry, written out as checkpoint folders, give the same
    architecture and quantization through the local-path source."""
    reg = load_registry()
    (tmp_path / "config.json").write_text(json.dumps(reg.raw(model_id)["config"]))
    local = load_local(tmp_path, model_id=model_id)
    assert local.entry.architecture == reg.resolve(model_id).architecture
    assert local.entry.native_quantization == reg.resolve(model_id).native_quantization
    assert weight_bytes_per_gpu(local.entry.architecture, quantization=local.entry.native_quantization) > 0


def test_local_safetensors_headers_are_read_without_the_weights(tmp_path):
    """A local folder with real-format safetensors files (tiny, written here) is read header-first."""
    import struct

    header = {"a.weight": {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 64]},
              "__metadata__": {"format": "pt"}}
    raw = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 64)
    s = read_local_safetensors(tmp_path)
    assert s.tensors == {"a.weight": ("BF16", (4, 8))} and s.total_bytes == 64 and s.n_files == 1
    # a checkout without the weights (Git LFS pointers) has no headers to read
    lfs = tmp_path / "lfs"
    lfs.mkdir()
    (lfs / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:x\nsize 9\n")
    assert read_local_safetensors(lfs) is None


# ----------------------------------------------------------------------------- towers and hybrids in the answer
def _write_header_only_safetensors(path: Path, header: dict) -> None:
    """A safetensors file cut after its header (the layout is real; the weights are left out:
    only the header is ever read). Offsets are laid out in order, as the format requires."""
    offset, full = 0, {}
    for name, t in header.items():
        n = 2
        for d in t["shape"]:
            n *= d
        full[name] = {**t, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(full).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_a_tower_counted_from_headers_is_added_to_the_estimate_on_every_gpu(tmp_path):
    """A local checkpoint whose headers hold a vision tower: the estimator's weights (and so
    the total and the KV pool) grow by exactly the tower's bytes, on every GPU. The headers
    are DERIVED from the physics inventory of a real config plus two tower tensors."""
    from fitting.estimator import Estimator

    arch = Architecture.from_hf_config(hub_json("qwen3-1.7b", "config.json"))
    (tmp_path / "config.json").write_text(json.dumps(hub_json("qwen3-1.7b", "config.json")))
    tower = {"visual.blocks.0.attn.qkv.weight": {"dtype": "BF16", "shape": [3840, 1280]},
             "visual.merger.mlp.0.weight": {"dtype": "BF16", "shape": [5120, 5120]}}
    _write_header_only_safetensors(tmp_path / "model-00001-of-00002.safetensors", derived_header(arch))
    _write_header_only_safetensors(tmp_path / "model-00002-of-00002.safetensors", tower)
    resolved = resolve_any(tmp_path, hub=False)
    tower_bytes = (3840 * 1280 + 5120 * 5120) * 2
    assert resolved.source == SOURCE_LOCAL and resolved.unmodelled_bytes == {"vision": tower_bytes}
    assert resolved.entry.unmodelled_weight_bytes == tower_bytes
    assert resolved.weight_check.comparable and abs(resolved.weight_check.rel_error) < 1e-12
    assert any("vision" in line and "GB from the safetensors metadata" in line for line in resolved.describe(tp=2))

    est = Estimator.load(Path(__file__).parents[1] / "fitted_params" / "vllm" / "latest.json")
    plain = dataclasses.replace(resolved.entry, unmodelled_weight_bytes=0)
    for tp in (1, 2):
        kw = dict(tp=tp, max_model_len=4096, batch_size=64)
        with_tower, without = est.predict(resolved, **kw), est.predict(plain, **kw)
        gib = tower_bytes / 2**30
        assert with_tower.weights_gib - without.weights_gib == pytest.approx(gib, rel=1e-9)
        assert with_tower.total_gib - without.total_gib == pytest.approx(gib, rel=1e-6)
        assert "unmodelled_weights_gib" in with_tower.defaults_applied
        pool_with = est.kv_pool_tokens(resolved, gpu_memory_gib=80, **kw)[0]
        pool_without = est.kv_pool_tokens(plain, gpu_memory_gib=80, **kw)[0]
        assert pool_with < pool_without


def test_hybrid_kv_counts_only_the_attention_layers():
    """Qwen3.5 (Gated DeltaNet): 10 of 40 layers hold a KV cache; the 30 linear-attention
    layers keep a fixed state. 2 KV heads x 256 head_dim x 2 (K and V) x 2 bytes = 2048 B per layer."""
    from fitting.physics.memory import kv_bytes_per_token, kv_cache_bytes

    arch = Architecture.from_hf_config(hub_json("qwen3.5-18b-reap-a3b", "config.json"))
    per_layer = 2 * arch.num_kv_heads * arch.head_dim * 2
    assert kv_bytes_per_token(arch, dtype="bfloat16") == 10 * per_layer
    assert kv_cache_bytes(arch, num_tokens=1000, dtype="bfloat16") == 10 * per_layer * 1000
    # pp=2 splits layers 0-19 / 20-39: five attention layers on each stage
    assert kv_bytes_per_token(arch, dtype="bfloat16", pp=2) == 5 * per_layer
    assert kv_cache_bytes(arch, num_tokens=16, dtype="bfloat16", pp=2, block_size=16) == 5 * per_layer * 16


def test_the_weights_line_uses_the_format_the_user_asked_for():
    """A user who asks for a Q4_K_M GGUF of a bf16 checkpoint sees Q4_K_M weights on the
    source line, the same figure as the estimate's weights (not the checkpoint's bf16)."""
    from fitting.data.model_source import resolve_any

    r = resolve_any("Qwen/Qwen2.5-7B-Instruct", offline=True)
    q4 = r.weights_per_gpu(tp=1, quantization="Q4_K_M")["language_model_gib"]
    bf16 = r.weights_per_gpu(tp=1)["language_model_gib"]
    assert q4 < 0.4 * bf16
    line = next(x for x in r.describe(tp=1, quantization="Q4_K_M") if x.startswith("weights per GPU"))
    assert "Q4_K_M" in line and f"{q4:.2f} GiB" in line
    line = next(x for x in r.describe(tp=1) if x.startswith("weights per GPU"))
    assert "bfloat16" in line and f"{bf16:.2f} GiB" in line
