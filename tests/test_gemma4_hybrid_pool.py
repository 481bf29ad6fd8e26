"""Gemma-4's layer geometry and vLLM's KV pool for models with full and sliding-window layers.

Exact facts:

* Gemma-4 (``transformers/models/gemma4/configuration_gemma4.py``, 5.24): the full-attention
  layers take ``global_head_dim`` (default 512) and, only with ``attention_k_eq_v``,
  ``num_global_key_value_heads``; with K = V they have no ``v_proj``.
  ``enable_moe_block`` runs the dense MLP beside 128 routed experts (top-8) in every layer.
* vLLM prints the KV bytes: google/gemma-4-31B-it on vLLM 0.26.0 (182.37 GiB for 217,116
  tokens = 901,9xx B/token against 50 x 16 x 256 x 2 x 2 + 10 x 4 x 512 x 2 x 2 = 901,120)
  and RedHatAI/gemma-4-26B-A4B-it-FP8-dynamic on vLLM 0.29.0 (the five block-16 starts of
  the akamaslabs study, ``profiles/public/vllm/logs/h6-gemma-4-26b-a4b-*``).
* vLLM's hybrid manager (``vllm/v1/core/kv_cache_utils.py``): groups of the smaller layer
  count, pages unified by raising the block size, "GPU KV cache size" = blocks // groups x
  block up to 0.20 and int(max_concurrency x max_model_len) from 0.21; a sliding group holds
  ``window - 1 + in-flight`` tokens (+1 block), in-flight = max_num_batched_tokens up to
  0.25, x2 with async scheduling from 0.26.
"""

from __future__ import annotations

import pytest

from fitting.data.registry import resolve_model
from fitting.ingest import parse_log
from fitting.physics.architecture import FULL_ATTENTION, Architecture
from fitting.physics.memory import kv_bytes_per_token, kv_bytes_per_token_split, kv_cache_bytes
from fitting.physics.parameters import count_parameters, tensor_inventory
from fitting.physics.vllm import (
    in_flight_tokens,
    vllm_hybrid_kv_layout,
    vllm_max_concurrency,
    vllm_pool_tokens,
)

_GIB = float(2**30)
_LAYERS_26B = (["sliding_attention"] * 5 + ["full_attention"]) * 5


def _gemma4_26b(**overrides) -> dict:
    text = {"model_type": "gemma4_text", "hidden_size": 2816, "num_hidden_layers": 30, "intermediate_size": 2112,
            "num_attention_heads": 16, "num_key_value_heads": 8, "num_global_key_value_heads": 2, "head_dim": 256,
            "global_head_dim": 512, "attention_k_eq_v": True, "enable_moe_block": True, "num_experts": 128,
            "top_k_experts": 8, "moe_intermediate_size": 704, "vocab_size": 262144, "sliding_window": 1024,
            "tie_word_embeddings": True, "layer_types": _LAYERS_26B}
    text.update(overrides)
    return {"model_type": "gemma4", "text_config": text, "vision_config": {"hidden_size": 1152}}


def test_global_layers_have_their_own_kv_geometry():
    a = Architecture.from_hf_config(_gemma4_26b())
    assert (a.full_attention_head_dim, a.full_attention_kv_heads, a.full_attention_k_eq_v) == (512, 2, True)
    assert a.attention_shape(0) == (8, 256, True)
    assert a.attention_shape(5) == (2, 512, False)
    assert a.layer_types[5] == FULL_ATTENTION
    # 25 sliding x 8 x 256 x 2 (K, V) x 2 B + 5 global x 2 x 512 x 2 x 2 B
    assert kv_bytes_per_token(a) == 25 * 8192 + 5 * 4096 == 225_280
    split = kv_bytes_per_token_split(a)
    assert (split.sliding_bytes_per_token, split.full_bytes_per_token) == (25 * 8192, 5 * 4096)
    # sliding layers keep the 1024-token window, global layers every token
    assert kv_cache_bytes(a, num_tokens=8192) == 25 * 8192 * 1024 + 5 * 4096 * 8192
    # without K = V the global layers keep the sliding layers' KV-head count (transformers' rule)
    b = Architecture.from_hf_config(_gemma4_26b(attention_k_eq_v=False))
    assert b.attention_shape(5) == (8, 512, True)
    assert Architecture.from_hf_config(a.to_dict()) == a


def test_gemma4_moe_block_is_dense_mlp_beside_the_experts():
    a = Architecture.from_hf_config(_gemma4_26b())
    assert (a.num_experts, a.num_experts_per_tok, a.moe_intermediate_size) == (128, 8, 704)
    assert (a.num_shared_experts, a.shared_expert_intermediate_size, a.dense_layers) == (1, 2112, ())
    p = count_parameters(a)
    # experts.gate_up_proj (128, 1408, 2816) + down_proj (128, 2816, 704) in each of 30 layers
    assert p.routed_experts == 30 * 128 * 3 * 704 * 2816
    assert p.shared_experts == 30 * 3 * 2112 * 2816
    # Google: "26B total, 3.8B active" (with a ~0.5B vision tower the physics leaves out)
    assert 25.0e9 < p.total < 25.5e9 and 3.7e9 < p.active < 3.9e9
    # global layers: q 16 x 512, k 2 x 512, no v, o 16 x 512 -> hidden
    sliding_attn = 2816 * (16 * 256 + 2 * 8 * 256) + 16 * 256 * 2816
    global_attn = 2816 * (16 * 512 + 2 * 512) + 16 * 512 * 2816
    assert p.attention == 25 * sliding_attn + 5 * global_attn


def test_registry_gemma4_kv_matches_what_vllm_printed():
    a31 = resolve_model("google/gemma-4-31B-it").architecture
    assert kv_bytes_per_token(a31) == 901_120
    assert abs(182.37 * _GIB / 217_116 / 901_120 - 1) < 0.001
    fp8 = resolve_model("RedHatAI/gemma-4-26B-A4B-it-FP8-dynamic")
    assert fp8.native_quantization == "fp8-per-channel"
    assert kv_bytes_per_token(fp8.architecture) == 225_280


# vLLM 0.29.0 starts of RedHatAI/gemma-4-26B-A4B-it-FP8-dynamic on an L40S (block 16, async on):
# (Available KV cache memory GiB, max_model_len, max_num_batched_tokens, kv dtype, printed tokens, printed conc.)
_PRINTED_029 = [
    (13.47, 4096, 2048, "auto", 63_988, 15.62),      # B-default
    (13.47, 16384, 2048, "auto", 170_836, 10.43),    # len16384-thinking
    (11.16, 4096, 2048, "auto", 52_978, 12.93),      # A-flashinfer
    (13.44, 4096, 2048, "fp8", 127_625, 31.16),      # K-fp8kv
    (13.29, 4096, 16384, "fp8", 126_210, 30.81),     # E-memory (u 0.94)
]


@pytest.mark.parametrize("pool_gib, max_len, mbt, kv_dtype, tokens, conc", _PRINTED_029)
def test_hybrid_pool_tokens_and_concurrency_match_vllm_029(pool_gib, max_len, mbt, kv_dtype, tokens, conc):
    a = resolve_model("RedHatAI/gemma-4-26B-A4B-it-FP8-dynamic").architecture
    layout = vllm_hybrid_kv_layout(a, version="0.29.0", block_size=16, kv_cache_dtype=kv_dtype)
    # 5 full + 25 sliding layers: groups of 5, one full group (block 32: half the page per token), 5 sliding
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (5, 1, 5)
    assert (layout.full_block_size, layout.sliding_block_size) == (32, 16)
    assert layout.page_bytes == (8192 if kv_dtype == "auto" else 4096) * 16
    kw = dict(max_model_len=max_len, max_num_batched_tokens=mbt, version="0.29.0")
    # the pool is printed to 0.01 GiB: 0.04% of 13 GiB
    assert float(vllm_pool_tokens(layout, pool_gib * _GIB, **kw)) == pytest.approx(tokens, rel=0.001)
    assert float(vllm_max_concurrency(layout, pool_gib * _GIB, **kw)) == pytest.approx(conc, abs=0.02)
    # the full-rate count (every layer keeps every token) is far off for these prints
    assert abs(pool_gib * _GIB / kv_bytes_per_token(a, kv_cache_dtype=kv_dtype) / tokens - 1) > 0.05 \
        or max_len == 4096 and mbt * 2 + 1023 >= max_len


def test_in_flight_tokens_by_version():
    assert in_flight_tokens(2048, "0.25.0") == 2048
    assert in_flight_tokens(2048, "0.26.0") == 4096                       # async scheduling on by default
    assert in_flight_tokens(2048, "0.29.0", async_scheduling=False) == 2048
    assert in_flight_tokens(2048, "0.29.0", pp=2) == 4096


def test_pool_tokens_before_021_count_blocks_per_group():
    a = resolve_model("RedHatAI/gemma-4-26B-A4B-it-FP8-dynamic").architecture
    layout = vllm_hybrid_kv_layout(a, version="0.20.0", block_size=16)
    pool = 22_069 * layout.bytes_per_block
    # 22,069 blocks // 6 groups x 16 tokens (kv_cache_utils._report_kv_cache_config, 0.9.2-0.20)
    assert float(vllm_pool_tokens(layout, pool, max_model_len=4096, max_num_batched_tokens=2048,
                                  version="0.20.0")) == 22_069 // 6 * 16
    # 0.20 reserves max_num_batched_tokens in flight, not twice it
    assert float(vllm_max_concurrency(layout, pool, max_model_len=4096, max_num_batched_tokens=2048,
                                      version="0.20.0")) == pytest.approx(22_069 / (128 + 5 * 193))


def test_group_size_padding_and_uniform_models():
    # gemma-3-27b: 52 sliding + 10 full -> groups of 10 (52 / 10 >= 1.5): 6 sliding groups, 8 padding slots
    g27 = resolve_model("google/gemma-3-27b-it").architecture
    lay = vllm_hybrid_kv_layout(g27, version="0.19.0")
    assert (lay.group_size, lay.full_groups, lay.sliding_groups) == (10, 1, 6)
    # gpt-oss-20b: 12 + 12 -> one group of each
    oss = vllm_hybrid_kv_layout(resolve_model("openai/gpt-oss-20b").architecture, version="0.11.0")
    assert (oss.group_size, oss.full_groups, oss.sliding_groups) == (12, 1, 1)
    # no hybrid manager: full-attention-only models, V0 and V1 before 0.9.2
    assert vllm_hybrid_kv_layout(resolve_model("meta-llama/Llama-3.1-8B").architecture, version="0.29.0") is None
    assert vllm_hybrid_kv_layout(g27, version="0.8.5") is None


def test_parser_reads_language_model_only_and_async_scheduling():
    log = ("INFO 10-06 07:53:59 [api_utils.py:347] version 0.29.0\n"
           "INFO 10-06 07:53:59 [api_utils.py:286] non-default args: {'model': 'RedHatAI/gemma-4-26B-A4B-it-FP8-"
           "dynamic', 'max_model_len': 4096, 'language_model_only': True, 'async_scheduling': False}\n"
           "INFO 10-06 08:03:40 [gpu_worker.py:625] Available KV cache memory: 13.47 GiB\n"
           "INFO 10-06 08:03:40 [kv_cache_utils.py:2032] GPU KV cache size: 63,988 tokens\n")
    (run,) = parse_log(log, framework="vllm")
    assert run["engine_settings"]["language_model_only"] is True
    assert run["engine_settings"]["async_scheduling"] is False
    cli = "$ vllm serve google/gemma-4-26B-A4B --language-model-only --max-model-len 4096\n" + log.split("\n", 2)[2]
    (run,) = parse_log(cli, framework="vllm")
    assert run["engine_settings"]["language_model_only"] is True


def test_llamacpp_hparams_carry_gemma4_global_layers():
    from fitting.physics.llamacpp import GGUFHparams, kv_cache_bytes

    hp = GGUFHparams.from_architecture(resolve_model("google/gemma-4-31B-it").architecture)
    assert hp.head_kv(0) == 16 and hp.head_kv(5) == 4
    # one cell in every layer: the same 901,120 B as vLLM's per-token figure (f16 K and V)
    assert kv_cache_bytes(hp, cells=1) == 901_120
    assert hp.n_swa == 1024 and sum(hp.swa_layers) == 50


def test_gemma4_e4b_kv_sharing_and_per_layer_embeddings_match_vllm_0192():
    """google/gemma-4-E4B on vLLM 0.19.2 (H200, u 0.5, max_model_len 2113, eager): 50.25 GiB of KV
    pool printed as 548,864 tokens and 435.15x. Only the first 24 of 42 layers hold KV (the last
    18 reuse it): 4 global (2 x 512) + 20 sliding (2 x 256) layers, grouped 1 + 5 x 4 layers."""
    a = resolve_model("google/gemma-4-E4B").architecture
    assert a.kv_shared_layers == 18 and len(a.kv_layers) == 24
    assert kv_bytes_per_token(a) == 4 * 2 * 512 * 2 * 2 + 20 * 2 * 256 * 2 * 2
    layout = vllm_hybrid_kv_layout(a, version="0.19.2rc1.dev100+gf946659ff")
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (4, 1, 5)
    # here the sliding layers have the smaller page: they get 32-token blocks
    assert layout.page_bytes == 4096 * 16 and (layout.full_block_size, layout.sliding_block_size) == (16, 32)
    kw = dict(max_model_len=2113, max_num_batched_tokens=16384, version="0.19.2rc1.dev100+gf946659ff")
    assert float(vllm_pool_tokens(layout, 50.25 * _GIB, **kw)) == pytest.approx(548_864, rel=0.0005)
    assert float(vllm_max_concurrency(layout, 50.25 * _GIB, **kw)) == pytest.approx(435.15, abs=0.2)
    p = count_parameters(a)
    # the packed per-layer table: 262144 x (42 x 256)
    assert p.embedding == 262_144 * 2560 + 262_144 * 42 * 256 + 42 * 256 * 2560
    # a KV-sharing layer has no k/v projections
    inventory = tensor_inventory(a)
    for name in ("self_attn.k_proj.weight", "self_attn.v_proj.weight"):
        assert set().union(*[set(t.layers) for t in inventory if t.name == name]) == set(range(24))
    assert set().union(*[set(t.layers) for t in inventory if t.name == "self_attn.q_proj.weight"]) == set(range(42))


@pytest.mark.parametrize("double_wide", [False, True])
def test_gemma4_e_model_parameters_equal_transformers_own_count(double_wide):
    """A small Gemma-4 E-model built by transformers on the meta device (no memory): KV-sharing
    layers without K/V projections, per-layer input embeddings and, with ``use_double_wide_mlp``
    (google/gemma-4-E2B), a dense MLP of 2 x intermediate_size in the KV-sharing layers
    (modeling_gemma4.Gemma4TextMLP, 5.24). The parameter count must equal transformers' own."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.gemma4.modeling_gemma4 import Gemma4ForCausalLM

    kw = dict(hidden_size=64, num_hidden_layers=10, intermediate_size=96, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, vocab_size=512, sliding_window=32,
              layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 2, num_kv_shared_layers=4,
              use_double_wide_mlp=double_wide, hidden_size_per_layer_input=8, vocab_size_per_layer_input=512,
              tie_word_embeddings=True)
    cfg = transformers.Gemma4TextConfig(global_head_dim=32, **kw)
    with torch.device("meta"):
        model = Gemma4ForCausalLM(cfg)
    expected = sum(p.numel() for p in model.parameters())
    # the config object consumes global_head_dim into per-layer overrides; the dict form keeps it
    arch = Architecture.from_hf_config(dict(cfg.to_dict(), global_head_dim=32))
    assert arch.double_wide_mlp_layers == ((6, 7, 8, 9) if double_wide else ())
    assert count_parameters(arch).total == expected
