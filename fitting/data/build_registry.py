"""Regenerate ``fitting/data/registry.yaml`` from ``../shared/data/model_configs.yaml``.

The registry shipped in the package is a reproducible copy of the shared reference file:
every model's figures, sources, notes, stated parameter counts and verification level
are copied unchanged; this script only

* separates the architecture keys (``config``) from the provenance keys;
* parses the stated parameter counts into integers next to the original text;
* adds ``trust_remote_code`` (with the reason) and a machine-readable
  ``native_quantization`` for checkpoints that ship quantized weights;
* fills the one architecture field a model lacks only where its own sources give it
  (``filled_fields`` says which and why), and marks an entry without dimensions as
  ``architecture_available: false``;
* appends the models of :data:`EXTRA_MODELS` (ids the public profiles use that the shared
  file lacks; same structure as its model entries, with sources, field_sources and
  verification) and the aliases of :data:`EXTRA_ALIASES`, each with its sources;
* appends the models, aliases and ``unsourced`` ids of ``fitting/data/hub_configs.yaml``
  (:data:`HUB_CONFIGS`): models kept as their own config.json (or a config assembled from
  cited sources), with the date they were retrieved. The same code that reads a checkpoint
  for the estimator (:func:`fitting.data.model_source.entry_from_config`) derives their
  architecture and ``native_quantization`` from the config's ``quantization_config``.

``--add`` grows the registry from a local checkpoint folder (or config.json) or a Hub id,
through :mod:`fitting.data.model_source`: the config is appended to ``hub_configs.yaml``
with its source and today's date, and ``registry.yaml`` is rebuilt.

Usage::

    python -m fitting.data.build_registry            # rewrite fitting/data/registry.yaml
    python -m fitting.data.build_registry --check    # exit 1 if the shipped file is stale
    python -m fitting.data.build_registry --add path/to/checkpoint --id org/name --ref URL
    python -m fitting.data.build_registry --add org/name             # through huggingface_hub
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from fitting.data.model_source import ModelSourceError, entry_from_config, load_hub, load_local
from fitting.data.registry import UnknownModelError
from fitting.physics.architecture import ArchitectureError

__all__ = ["build_registry", "parse_param_count", "main", "DEFAULT_SOURCE", "DEFAULT_OUTPUT", "EXTRA_MODELS",
           "EXTRA_ALIASES", "HUB_CONFIGS", "load_hub_configs", "add_model"]

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "model_configs.yaml"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "registry.yaml"
#: models added from their own config.json (``--add``), with sources and retrieval dates.
HUB_CONFIGS = Path(__file__).resolve().parent / "hub_configs.yaml"

#: provenance keys of a model entry (everything else is architecture).
_PROVENANCE = ("verification", "field_sources", "notes", "sources", "params", "weight_format", "layer_pattern")

_DEEPSEEK_V2_CODE = (
    "official repo ships configuration_deepseek.py / modeling_deepseek.py referenced by auto_map (Hugging Face tag "
    "'custom_code'; tree https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite/tree/426476613094d0c934dbbae238da676b5ff38ce5); "
    "vLLM and SGLang carry native implementations"
)

#: models whose official repos need custom code, with the reason. Every other model is
#: a native transformers model type (reason generated below).
TRUST_REMOTE_CODE: dict[str, str] = {
    "moonshotai/Kimi-K2-Instruct": (
        "model_type kimi_k2 is not a transformers model type: the repo's auto_map points at its own DeepSeek-V3 code "
        "(architectures DeepseekV3ForCausalLM) and the tokenizer is custom; loaders pass trust_remote_code=True "
        "(e.g. github mfarisadip/Kimi-K2-Mini data/load_model.py; exo src/exo/worker/engines/mlx/constants.py: "
        "'Kimi requires trust_remote_code=True')"
    ),
    "deepseek-ai/DeepSeek-V3": (
        "official repo ships configuration_deepseek.py / modeling_deepseek.py referenced by auto_map (Hugging Face "
        "tag 'custom_code', https://huggingface.co/deepseek-ai/DeepSeek-V3/tree/ec67248f61244f350422cdfd2e78258af58edff9); "
        "vLLM and SGLang carry native implementations"
    ),
    "deepseek-ai/DeepSeek-V2-Lite": _DEEPSEEK_V2_CODE,
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct": "same DeepSeek-V2 custom code (model_type deepseek_v2); " + _DEEPSEEK_V2_CODE,
    "deepseek-ai/DeepSeek-V2.5": "same DeepSeek-V2 custom code (model_type deepseek_v2); " + _DEEPSEEK_V2_CODE,
    "OpenGVLab/InternVL3-78B": (
        "model_type internvl_chat is not a transformers model type: the repo ships its own InternVLChatModel code "
        "(auto_map to configuration_internvl_chat / modeling_internvl_chat, as in the InternVL3-38B config); the vLLM "
        "log of profiles/public/vllm/logs/gnosia93-internvl3-78b-8xl40s-tp8-u092.log prints trust_remote_code=True"
    ),
}

_NATIVE_NOTES = {
    "phi": "native transformers model_type phi (legacy phi-msft revisions needed custom code; current config is native)",
    "falcon": "native transformers model_type falcon (legacy RefinedWebModel revisions shipped custom code)",
    "phi3": "config keeps an auto_map, but transformers >= 4.40 implements phi3 natively",
}

_GPU_POOR = "github:RahulSChand/gpu_poor all_configs.json @0053ac59167d11cb18b54f353cc756904504c5b8"
_MLC = "github:mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py @01ced331a9e155c5ba4e7625b027a51bee611450"

#: models not in the shared file, each with the shared file's structure (architecture keys
#: plus verification / params / field_sources / notes / sources). Keys absent from a model's
#: config.json are omitted, as in the shared file.
EXTRA_MODELS: dict[str, dict[str, Any]] = {
    "facebook/opt-350m": {
        "verification": "full",
        "model_type": "opt",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "vocab_size": 50272,
        "tie_word_embeddings": True,
        "max_position_embeddings": 2048,
        "torch_dtype": "float16",
        "word_embed_proj_dim": 512,
        "do_layer_norm_before": False,
        "params": {
            "total": "331M",
            "total_source": "E",
            "total_kind": "third-party statement on the official repo (community discussion title), not the card",
        },
        "field_sources": {
            "model_type": "A,B,C",
            "hidden_size": "A,B,C,D",
            "intermediate_size": "A,B,C,D (config key ffn_dim; D: fc1 1024 -> 4096)",
            "num_hidden_layers": "A,B,C,D",
            "num_attention_heads": "A,B,C",
            "vocab_size": "A,B,C,D",
            "tie_word_embeddings": "A,B,C (key absent -> PretrainedConfig default true)",
            "max_position_embeddings": "A,B,C (D: learned positions 2050 = 2048 + 2)",
            "torch_dtype": "C (dump of the official config; derived copies re-save as bfloat16 / float32)",
            "word_embed_proj_dim": "A,B,C,D",
            "do_layer_norm_before": "A,B,C",
        },
        "notes": [
            "word_embed_proj_dim 512 != hidden_size 1024: token embeddings and the (tied) LM head are 512 wide; "
            "project_in (512 -> 1024) and project_out (1024 -> 512) are bias-free linear maps (D).",
            "do_layer_norm_before false (post-LN): transformers and vLLM build no final decoder LayerNorm "
            "(D prints none), so the model has 2 LayerNorms per layer and none at the top.",
            "No num_key_value_heads key (OPTConfig has none): multi-head attention, head_dim 1024/16 = 64 implied.",
            "331M (E) is a user's statement on the official repo, not the card (the card and the name say 350M).",
        ],
        "sources": [
            {"id": "A", "ref": "https://huggingface.co/pszemraj/opt-350m-multiprompt/blame/"
                               "fb7d1f7bb5524bc2c91c04c43aea0c857260c9f2/config.json",
             "kind": "derived config copy (_name_or_path facebook/opt-350m)",
             "note": "ffn_dim 4096, hidden 1024, 24 layers, 16 heads, vocab 50272, word_embed_proj_dim 512, "
                     "do_layer_norm_before false, _remove_final_layer_norm false, bfloat16 re-save"},
            {"id": "B", "ref": "https://huggingface.co/sartajbhuvaji/facebook-opt-350m-chat/blob/main/config.json",
             "kind": "derived config copy (_name_or_path facebook/opt-350m)",
             "note": "same values; enable_bias true, layer_norm_elementwise_affine true, float32 re-save"},
            {"id": "C", "ref": "public GitHub file ref 10041950342 (torch.jit tracing script)",
             "kind": "verbatim dump of the official config: OPTConfig(**{'_name_or_path': 'facebook/opt-350m', ...})",
             "note": "same values; torch_dtype float16, transformers_version 4.19.2"},
            {"id": "D", "ref": "github:if001/alpaca-lora gomi.md @9e2a12f1e1251601bdf906e99f69f9a048925b8f",
             "kind": "printed OPTForCausalLM module tree (model id not printed; dimensions are OPT-350m's)",
             "note": "Embedding(50272, 512), positions (2050, 1024), project_out 1024->512 and project_in "
                     "512->1024 bias=False, 24 layers, fc1 1024->4096, no decoder final_layer_norm, "
                     "lm_head 512->50272 bias=False"},
            {"id": "E", "ref": "https://huggingface.co/ramaseshan1/activity/community",
             "kind": "HF activity page listing a discussion on facebook/opt-350m",
             "note": "'Has 331M params and not 350M params! #38'"},
        ],
    },
    "openai-community/gpt2-large": {
        "verification": "full",
        "model_type": "gpt2",
        "hidden_size": 1280,
        "num_hidden_layers": 36,
        "num_attention_heads": 20,
        "vocab_size": 50257,
        "max_position_embeddings": 1024,
        "params": {"total": "774M", "total_source": "D"},
        "field_sources": {
            "model_type": "B",
            "hidden_size": "A,B,C (n_embd)",
            "num_hidden_layers": "A,B,C (n_layer)",
            "num_attention_heads": "A,B,C (n_head)",
            "vocab_size": "A,B,C",
            "max_position_embeddings": "A,B (n_positions; n_ctx 1024)",
        },
        "notes": [
            "n_inner absent/null: GPT-2's MLP width is 4 x n_embd = 5120 (GPT2Config default; intermediate_size "
            "omitted, as absent from the config).",
            "tie_word_embeddings absent -> PretrainedConfig default true (GPT2LMHeadModel ties lm_head to wte).",
            "torch_dtype omitted: the official config has no torch_dtype key; derived copies re-save in "
            "float16 or float32.",
            "Legacy id 'gpt2-large' is an alias.",
        ],
        "sources": [
            {"id": "A", "ref": "https://huggingface.co/openai-community/gpt2-large/blob/"
                               "934da44f9c2c45110e4d8afcd1c0524b9b24b9ee/config.json",
             "kind": "official config.json (early revision, no model_type key)",
             "note": "n_embd 1280, n_head 20, n_layer 36, n_ctx/n_positions 1024, vocab 50257"},
            {"id": "B", "ref": "https://huggingface.co/openai-community/gpt2-large/blob/refs%2Fpr%2F1/config.json",
             "kind": "official config.json at PR ref 1",
             "note": "same values; model_type gpt2, GPT2LMHeadModel, activation gelu_new"},
            {"id": "C", "ref": _GPU_POOR + " key gpt2-large", "kind": "abridged config copy",
             "note": "n_embd 1280, n_head 20, n_layer 36, vocab 50257"},
            {"id": "D", "ref": "https://ai.azure.com/catalog/models/gpt2-large",
             "kind": "mirror of the model card",
             "note": "'GPT-2 Large is the 774M parameter version of GPT-2'"},
        ],
    },
    "EleutherAI/pythia-410m": {
        "verification": "full",
        "model_type": "gpt_neox",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "vocab_size": 50304,
        "tie_word_embeddings": False,
        "max_position_embeddings": 2048,
        "rotary_pct": 0.25,
        "use_parallel_residual": True,
        "params": {"non_embedding": "302,311,424", "non_embedding_source": "D"},
        "field_sources": {
            "model_type": "A,B,C",
            "hidden_size": "A,B,C,D",
            "intermediate_size": "A,B,C",
            "num_hidden_layers": "A,B,C,D",
            "num_attention_heads": "A,B,C,D",
            "vocab_size": "A,B,C",
            "tie_word_embeddings": "A,B,C",
            "max_position_embeddings": "A,B,C",
            "rotary_pct": "A,B,C",
            "use_parallel_residual": "A,B,C",
        },
        "notes": [
            "GPT-NeoX block (module print of GPTNeoXForCausalLM, github:piabona/HS-LLM-QnA-chatbot "
            "models/GPTNeoXForCausalLM.py): fused query_key_value and dense with biases, dense_h_to_4h / "
            "dense_4h_to_h with biases, 2 LayerNorms per layer + final LayerNorm, untied embed_in / embed_out.",
            "torch_dtype omitted: derived copies disagree (float16 / bfloat16 / float32).",
            "Stated non-embedding count (D) is from the card of the v0 release; the retrained suite keeps the "
            "dimensions (same config fields in A-C).",
            "The deduplicated-data twin EleutherAI/pythia-410m-deduped is an alias (same config).",
        ],
        "sources": [
            {"id": "A", "ref": "https://huggingface.co/SummerSigh/Pythia410m-V0-Instruct/blame/"
                               "4b9f3bbde7f3b50fa560a90968d7b70eada6cdb2/config.json",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m)",
             "note": "hidden 1024, intermediate 4096, 24 layers, 16 heads, vocab 50304, tie false, maxpos 2048, "
                     "rotary_pct 0.25, use_parallel_residual true, float32"},
            {"id": "B", "ref": "https://huggingface.co/lomahony/pythia-410m-helpful-sft/blame/main/config.json",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m)", "note": "same values, bfloat16"},
            {"id": "C", "ref": "https://huggingface.co/Xenova/pythia-410m/blame/"
                               "3f16be1d85cf9b8433a66d8f61c2860cb959ef6d/config.json",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m)", "note": "same values"},
            {"id": "D", "ref": "https://huggingface.co/EleutherAI/pythia-410m-v0",
             "kind": "official model card (v0 release)",
             "note": "table: '410M | 302,311,424 | 24 | 1024 | 16' (non-embedding params, layers, model dim, heads)"},
        ],
    },
    "EleutherAI/pythia-2.8b": {
        "verification": "partial",
        "model_type": "gpt_neox",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "vocab_size": 50304,
        "tie_word_embeddings": False,
        "max_position_embeddings": 2048,
        "rotary_pct": 0.25,
        "field_sources": {
            "model_type": "A",
            "hidden_size": "A",
            "intermediate_size": "A",
            "num_hidden_layers": "A",
            "num_attention_heads": "A",
            "vocab_size": "A",
            "tie_word_embeddings": "A",
            "max_position_embeddings": "A",
            "rotary_pct": "A",
        },
        "notes": [
            "Dimensions as llama.cpp printed them for the GGUF that its CI converts from EleutherAI/pythia-2.8b "
            "(A): arch gptneox, n_vocab 50304, n_ctx_train 2048, n_embd 2560, n_layer 32, n_head 32 = n_head_kv, "
            "n_embd_head 80 with n_rot 20 (rotary_pct 0.25), n_ff 10240, 'model params = 2.78 B'.",
            "tie_word_embeddings false: tied embeddings would give 2.65 B parameters, the log prints 2.78 B "
            "(the physics count with untied embed_in / embed_out is 2,775,208,960).",
            "use_parallel_residual is not printed by the log (the GGUF metadata dump was left out) and is not set "
            "here: the transformers default of gpt_neox (True, as in every Pythia config seen) applies; it changes "
            "neither weights nor KV. Hence verification 'partial'.",
        ],
        "sources": [
            {"id": "A", "ref": "https://github.com/ggml-org/ci/blob/e771b999766dca87052b27b90bce6c58c7daa865/llama.cpp/"
                               "47/182dd03fe04a4ffda5d7f4c8a109ae0056cf56/ggml-4-x86-cuda-v100/pythia_2_8b-tg-q4_0.log",
             "kind": "llama.cpp CI log (llm_load_print_meta of the GGUF converted from EleutherAI/pythia-2.8b)",
             "note": "kept verbatim in profiles/public/llamacpp/logs/ggml-ci-pythia-2.8b-q4_0-v100-b4424.log"},
        ],
    },
    "openlm-research/open_llama_7b_v2": {
        "verification": "partial",
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 2048,
        "field_sources": {
            "model_type": "A (arch llama)",
            "hidden_size": "A (n_embd)",
            "intermediate_size": "A (n_ff)",
            "num_hidden_layers": "A (n_layer)",
            "num_attention_heads": "A (n_head)",
            "num_key_value_heads": "A (n_head_kv)",
            "vocab_size": "A (n_vocab)",
            "tie_word_embeddings": "A (inferred from 'model params = 6.74 B', see notes)",
            "max_position_embeddings": "A (n_ctx_train)",
        },
        "notes": [
            "Dimensions as llama.cpp printed them for the GGUF that its CI (ci/run.sh gg_run_open_llama_7b_v2) "
            "converts from the files it downloads from huggingface.co/openlm-research/open_llama_7b_v2 (A): arch "
            "llama, n_vocab 32000, n_ctx_train 2048, n_embd 4096, n_head 32 = n_head_kv, n_layer 32, n_rot 128 "
            "= n_embd_head, n_ff 11008, 'model params = 6.74 B', F16 size 12.55 GiB (16.00 BPW).",
            "tie_word_embeddings false: with an untied LM head the LLaMA block count is 6,738,415,616 (6.74 B, as "
            "printed); a tied head would give 6.61 B. The F16 file also has 226 f16 tensors = 7 per layer x 32 + "
            "token embedding + output.",
            "No config.json copy of the original repository was found in the searchable index; torch_dtype and "
            "rms_norm_eps (printed f_norm_rms_eps 1.0e-06) are not recorded. Hence verification 'partial'.",
        ],
        "sources": [
            {"id": "A", "ref": "https://github.com/ggml-org/ci/blob/030daed1d68e085366a0d459fe38951c4e171e8f/llama.cpp/"
                               "d1/99ca79f279e84ebe27caafe0aa59c461d88969/ggml-4-x86-cuda-v100/open_llama_7b_v2-tg-f16.log",
             "kind": "llama.cpp CI log (llm_load_print_meta of the GGUF converted from openlm-research/open_llama_7b_v2)",
             "note": "kept verbatim in profiles/public/llamacpp/logs/ggml-ci-open-llama-7b-v2-f16-v100-b2459.log; "
                     "the GGUF metadata dump of the same log (not kept) prints llama.embedding_length 4096, "
                     "block_count 32, feed_forward_length 11008, head_count 32, head_count_kv 32, context_length 2048"},
        ],
    },
    "huggyllama/llama-13b": {
        "verification": "full",
        "model_type": "llama",
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 2048,
        "torch_dtype": "float16",
        "field_sources": {
            "model_type": "A,B,C,D",
            "hidden_size": "A,B,C,D",
            "intermediate_size": "A,B,C,D",
            "num_hidden_layers": "A,B,C,D",
            "num_attention_heads": "A,B,C,D",
            "num_key_value_heads": "B (key absent in A,C,D -> LlamaConfig default = num_attention_heads)",
            "vocab_size": "A,B,C,D",
            "tie_word_embeddings": "A,B,C,D",
            "max_position_embeddings": "A,B,C,D",
            "torch_dtype": "A,C,D",
        },
        "notes": [
            "Original LLaMA-1 13B (HF conversion): MHA, head_dim 128 implied, 2048 context (legacy "
            "max_sequence_length 2048 also present). Same dimensions as Llama-2-13B except the context.",
        ],
        "sources": [
            {"id": "A", "ref": "https://huggingface.co/AlexeyChe/llama-13b-lora/blob/"
                               "34666fdc62a908aed619950736c735091895017b/config.json",
             "kind": "derived config copy (_name_or_path huggyllama/llama-13b)", "note": "float16, transformers 4.30.0.dev0"},
            {"id": "B", "ref": "https://huggingface.co/ContextualAI/archangel_sft-kto_llama13b/blame/"
                               "c5c2f10571ddce543e3b279514524c003a710460/config.json",
             "kind": "derived config copy (_name_or_path huggyllama/llama-13b; newer re-save)",
             "note": "num_key_value_heads 40 explicit; bfloat16 re-save"},
            {"id": "C", "ref": "https://huggingface.co/kuleshov/llama-13b-4bit/commit/"
                               "7b1325f1392621a860e871041e8c4c650fe9b140",
             "kind": "derived config copy (_name_or_path huggyllama/llama-13b)", "note": "float16, transformers 4.28.0"},
            {"id": "D", "ref": "https://huggingface.co/Neko-Institute-of-Science/LLaMA-13B-HF/blob/"
                               "cef613a2f750ae1caba646f0e2c858fb8b763ea6/config.json",
             "kind": "independent HF conversion of the original LLaMA-13B weights (convert_llama_weights_to_hf.py)",
             "note": "same dimensions, float16"},
        ],
    },
    # ---- ids of the vLLM logs (profiles/public/vllm/logs) ----
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": {
        "verification": "full",
        "model_type": "qwen2",
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
        "max_position_embeddings": 131072,
        "torch_dtype": "bfloat16",
        "rope_theta": 10000,
        "use_sliding_window": False,
        "field_sources": {
            "model_type": "A,B,C",
            "hidden_size": "A,B,C",
            "intermediate_size": "A,B,C",
            "num_hidden_layers": "A,B,C",
            "num_attention_heads": "A,B,C",
            "num_key_value_heads": "A,B,C",
            "vocab_size": "A,B,C",
            "tie_word_embeddings": "A,B,C (D: the printed weights need the untied LM head, see notes)",
            "max_position_embeddings": "A,B,C",
            "torch_dtype": "A,B,C",
            "rope_theta": "A,B,C",
            "use_sliding_window": "A,B,C (sliding_window 4096 in A,C, null in B's re-print; unused either way)",
        },
        "notes": [
            "Same layer dimensions as Qwen/Qwen2.5-Math-1.5B (the base model the card names), but NOT an alias of it: "
            "the distilled checkpoint unties the LM head (tie_word_embeddings false, Qwen2.5-Math-1.5B true) and uses "
            "max_position_embeddings 131072 (Math: 4096); rope_theta 10000 as the Math model.",
            "Untied: the physics count is 1,777,088,000 parameters = 3.310 GiB in bf16; vLLM printed 'Model loading "
            "took 3.3466 GiB' (D) and 3.3465 GiB (C), the difference (0.037 GiB) being about vLLM's bf16 RoPE cos/sin "
            "cache for 131072 positions (131072 x 128 x 2 B = 0.031 GiB), not weights. A tied head would give 2.875 GiB.",
            "max_window_layers 21 and sliding_window are inert (use_sliding_window false): every layer is full attention.",
        ],
        "sources": [
            {"id": "A", "ref": "public GitHub file ref 67580773169",
             "kind": "verbatim config.json in a Qualcomm AI Hub model module (HF_REPO_NAME = "
                     "'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B')",
             "note": "Qwen2ForCausalLM, hidden 1536, inter 8960, 28 layers, 12Q/2KV, vocab 151936, "
                     "tie_word_embeddings false, maxpos 131072, rope_theta 10000, sliding_window 4096, "
                     "use_sliding_window false, max_window_layers 21, bfloat16, transformers 4.44.0"},
            {"id": "B", "ref": "public GitHub file ref 52422771377",
             "kind": "printed Qwen2Config (_name_or_path deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B, transformers 4.48.3)",
             "note": "same values (sliding_window null in this re-print)"},
            {"id": "C", "ref": "public GitHub file ref 51774936285",
             "kind": "vLLM KV-cache walkthrough: config.json of /data/DeepSeek-R1-Distill-Qwen-1.5B and its vLLM start-up log",
             "note": "same values as A; 'Model loading took 3.3465 GiB'; KV per token 2 x 2 x 128 x 2 B x 28 layers = "
                     "28672 B; 'GPU KV cache size: 426,448 tokens', 'Maximum concurrency for 131,072 tokens'"},
            {"id": "D", "ref": "https://github.com/cr7258/cr7258.github.io/blob/bd7e1a42a9a147adb681d3e8e4a97381aa2893c3/"
                               "docs/blogs/original/2025/17-runai-model-streamer.md",
             "kind": "vLLM 0.9.0.1 start-up log of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B (bf16, tp 1)",
             "note": "kept verbatim in profiles/public/vllm/logs/cr7258-runai-streamer-deepseek-r1-distill-qwen-1.5b-a100.log: "
                     "'Model loading took 3.3466 GiB', max_seq_len=131072"},
        ],
    },
    "ibm-granite/granite-3.0-3b-a800m-instruct": {
        "verification": "partial",
        "model_type": "granitemoe",
        "hidden_size": 1536,
        "intermediate_size": 512,
        "num_hidden_layers": 32,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "num_local_experts": 40,
        "num_experts_per_tok": 8,
        "vocab_size": 49155,
        "tie_word_embeddings": True,
        "max_position_embeddings": 4096,
        "field_sources": {
            "model_type": "A (fused_moe layer of the GraniteMoe model), B (GraniteMoeForCausalLM)",
            "hidden_size": "C (routers [30, 1536] after pruning 40 -> 30 experts), D, E",
            "intermediate_size": "A (fused-MoE config 'N=512' at tp 1), D, E",
            "num_hidden_layers": "B,C,D",
            "num_attention_heads": "B,D",
            "num_key_value_heads": "B,D",
            "num_local_experts": "A ('E=40'), B, C, D, E",
            "num_experts_per_tok": "B,C,D",
            "vocab_size": "D (granite-3.1 sibling; see notes)",
            "tie_word_embeddings": "D (granite-3.1 sibling), A (printed weights, see notes)",
            "max_position_embeddings": "A ('Maximum concurrency for 4096 tokens' with max_model_len unset), B, F (4K)",
        },
        "notes": [
            "GraniteMoE: Llama-style GQA attention (24 Q / 8 KV heads, head_dim 1536/24 = 64) and a Mixtral-shaped "
            "routed FFN per layer (40 experts of width 512, top-8, no shared expert; gate and up fused in "
            "input_linear [40, 1024, 1536], E), router 1536 x 40 (C), tied embeddings. The four Granite multipliers "
            "(embedding, attention, residual, logits) change no memory.",
            "No config.json copy of granite-3.0-3b-a800m(-instruct) was found. The layer figures come from the 3.0 base "
            "model (B, C: the instruct model is its fine-tune, same architecture) and the vLLM log (A); vocab_size 49155 "
            "and tie_word_embeddings true are those of the config of the 3.1 sibling (D), which the 3.1 card (F) "
            "describes as Granite-3.0-3B-A800M with its context extended from 4K to 128K (RoPE theta adjusted). Hence "
            "verification 'partial'; rope_theta is not recorded.",
            "Weights check: with these figures the physics gives 6.145 GiB in bf16; vLLM printed 'Loading model weights "
            "took 6.1501 GB' (GiB, A). An untied LM head would add 0.141 GiB (6.285 GiB), so the log supports tied "
            "embeddings.",
        ],
        "sources": [
            {"id": "A", "ref": "https://github.com/dumb0002/production-stack/blob/c5cf57706db28f03feffa986681b32c6010cf339/"
                               "perf-test/server-startup/README.md",
             "kind": "vLLM 0.7.3 start-up log of ibm-granite/granite-3.0-3b-a800m-instruct (bf16, tp 1)",
             "note": "kept verbatim in profiles/public/vllm/logs/dumb0002-production-stack-granite-3.0-3b-a800m-l40s.log: "
                     "'Loading model weights took 6.1501 GB'; fused_moe config 'E=40,N=512'; 'Maximum concurrency for "
                     "4096 tokens per request' with max_model_len=None"},
            {"id": "B", "ref": "public GitHub file ref 58041522810",
             "kind": "project README listing the models it loads",
             "note": "'Granite | ibm-granite/granite-3.0-3b-a800m-base | 32 layers x 40 experts, top-8 routing, "
                     "grouped-query attention (24 query / 8 KV heads), max 4096'"},
            {"id": "C", "ref": "public GitHub file ref 60499204694",
             "kind": "expert-pruning write-up verified on granite-3.0-3b-a800m-base",
             "note": "'40 experts, top-8, 32 layers, stacked, shipped in fp32': pruned to 30 experts, "
                     "'num_local_experts 40 -> 30, routers [30, 1536]'"},
            {"id": "D", "ref": "public GitHub file ref 71463455676",
             "kind": "config.json fields of the sibling ibm-granite/granite-3.1-3b-a800m-instruct",
             "note": "GraniteMoeForCausalLM, granitemoe, hidden 1536, intermediate 512, 32 layers, 24 heads, 8 KV heads, "
                     "40 local experts, top-8, vocab 49155, tie_word_embeddings true, maxpos 131072, rope_theta 1e7"},
            {"id": "E", "ref": "public GitHub file ref 5780571571",
             "kind": "Ollama GraniteMoE converter comment",
             "note": "'the GraniteMoE FFN tensor has dimensions (40, 512, 1536) as represented in the model's "
                     "config.json: \"num_local_experts\": 40, \"intermediate_size\": 512, \"hidden_size\": 1536'"},
            {"id": "F", "ref": "https://huggingface.co/ibm-granite/granite-3.1-3b-a800m-base",
             "kind": "official model card of the 3.1 sibling",
             "note": "'extends the context length of Granite-3.0-3B-A800M-Base from 4K to 128K ... while adjusting "
                     "RoPE theta'"},
        ],
    },
    "OpenGVLab/InternVL3-78B": {
        "verification": "partial",
        "model_type": "internvl_chat",
        "architectures": ["InternVLChatModel"],
        "hidden_size": 8192,
        "llm_config": {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 8192,
            "intermediate_size": 29568,
            "num_hidden_layers": 80,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "vocab_size": 151674,
            "tie_word_embeddings": False,
            "max_position_embeddings": 32768,
            "rope_theta": 1000000.0,
        },
        "vision_config": {
            "architectures": ["InternVisionModel"],
            "hidden_size": 3200,
            "num_hidden_layers": 45,
        },
        "field_sources": {
            "model_type": "D (the InternVL3 family's wrapper type and language-model key; see notes)",
            "architectures": "D (as model_type)",
            "hidden_size": "C (d_model 8192); InternVL's config repeats the language model's hidden size at the top "
                           "level (D: 5120 = its llm_config hidden_size)",
            "llm_config": "A (Qwen2.5-72B language part), C (8192 / 29568 / 80 layers / 64Q / 8KV / vocab 151674 / "
                          "untied / 32768 / theta 1e6), B (KV bytes per token printed)",
            "vision_config": "A (InternViT-6B-448px-V2_5), C (depth 45, hidden 3200)",
        },
        "notes": [
            "InternVL 'ViT-MLP-LLM': InternViT-6B-448px-V2_5 + MLP projector + Qwen2.5-72B (A). The language model is "
            "kept under llm_config as in InternVL's config.json; the vision tower and projector are NOT in the physics "
            "weights (multimodal_towers).",
            "No config.json copy of OpenGVLab/InternVL3-78B was found: the language-model figures come from an abridged "
            "third-party listing (C) and the card (A); model_type internvl_chat / InternVLChatModel / llm_config are those "
            "of the InternVL3-38B config (D, same family code). Hence verification 'partial'. C also states RoPE dynamic-NTK "
            "scaling x2 (not recorded: no memory effect).",
            "Checks against the vLLM 0.6.6.post1 tp-8 log (B): the KV pool of 3.09 GiB held 5065 blocks x 16 tokens, i.e. "
            "40,960 B per token per GPU = 80 layers x 2 x 8 KV heads x 128 x 2 B / 8, as these figures give. Weights: the "
            "log prints 21.67 GiB per GPU, the physics (language model only, vocab 151674) 16.93 GiB; the 4.7 GiB gap is "
            "the InternViT-6B tower (45 blocks of width 3200, C) and the MLP projector, which the physics does not model "
            "(how vLLM 0.6.6 shards the tower at tp 8 was not checked).",
            "trust_remote_code: the repo ships its own InternVLChatModel code (the log's engine config prints "
            "trust_remote_code=True).",
        ],
        "sources": [
            {"id": "A", "ref": "https://huggingface.co/OpenGVLab/InternVL3-78B",
             "kind": "official model card",
             "note": "'InternVL3-78B | InternViT-6B-448px-V2_5 | Qwen2.5-72B' (vision part, language part); "
                     "'ViT-MLP-LLM' paradigm"},
            {"id": "B", "ref": "https://github.com/gnosia93/vlm-distillation/blob/30967bf4a93dba3c639a90452d2c0da35e9372b3/"
                               "ec2/5-vlm-infer.md",
             "kind": "vLLM 0.6.6.post1 start-up log of OpenGVLab/InternVL3-78B (bf16, tp 8, trust_remote_code=True)",
             "note": "kept verbatim in profiles/public/vllm/logs/gnosia93-internvl3-78b-8xl40s-tp8-u092.log: 'Loading "
                     "model weights took 21.6682 GB'; KV cache 3.09 GiB; 5065 GPU blocks"},
            {"id": "C", "ref": "public GitHub file ref 60243573531",
             "kind": "third-party architecture atlas (JSON), entry internvl3-78b citing the HF card and arXiv 2504.10479",
             "note": "80 layers, d_model 8192, d_ff 29568, 64 heads, 8 KV heads, head_dim 128, vocab 151674, context "
                     "32768, untied embeddings, RoPE theta 1e6 (dynamic NTK x2); vision InternViT-6B-448px (depth 45, "
                     "hidden 3200)"},
            {"id": "D", "ref": "github:binarrii/qwen_vl_object_detect OpenGVLab/InternVL3-38B-AWQ/config.json "
                               "@8e7e8119bb70392b48b894ca0b6ba55567557f88",
             "kind": "config.json of the sibling InternVL3-38B (AWQ quantization; copy in tests/data/hub/internvl3-38b-awq)",
             "note": "model_type internvl_chat, architectures InternVLChatModel, language model under llm_config "
                     "(Qwen2ForCausalLM, vocab 151674, untied), vision_config InternVisionModel hidden 3200"},
        ],
    },
}

_THEBLOKE_G = ("group size and act-order of the main branch not confirmed (the repo's branches hold other "
               "variants: see sources); g128 assumed for sizing (g64 / g32 would add 0.16 / 0.47 bit per weight)")

#: aliases for ids of the public profiles (and studies/quantization.yaml), each with its sources.
_PROFILE_ALIASES: dict[str, dict[str, Any]] = {
    "NousResearch/Llama-2-7b-hf": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "full",
        "differs": "none in memory-relevant fields",
        "sources": [
            {"ref": "https://huggingface.co/JamBelg/My-Llama-2-7b-hf/blob/main/config.json",
             "kind": "derived config copy (_name_or_path NousResearch/Llama-2-7b-hf)",
             "note": "hidden 4096, inter 11008, 32 layers, 32Q/32KV, vocab 32000, untied, maxpos 4096, float16"},
            {"ref": "https://huggingface.co/ChaiML/llamademo/blob/3179e0eaa3527e3a4697cd4f9b3511af3489707f/config.json",
             "kind": "derived config copy (_name_or_path NousResearch/Llama-2-7b-hf)", "note": "same values (float32 re-save)"},
            {"ref": _GPU_POOR + " key NousResearch/Llama-2-7b-hf", "kind": "abridged config copy",
             "note": "hidden 4096, intermediate 11008, 32 heads, 32 layers, vocab 32000"},
        ],
    },
    "NousResearch/Llama-2-13b-hf": {
        "target": "meta-llama/Llama-2-13b-hf", "verification": "full",
        "differs": "none in memory-relevant fields",
        "sources": [
            {"ref": "https://huggingface.co/r4victor/Llama-2-13b-samsum/blame/"
                    "92566476aad4d67a784b1b8a0fed5ed7c09e614e/config.json",
             "kind": "derived config copy (_name_or_path NousResearch/Llama-2-13b-hf)",
             "note": "hidden 5120, inter 13824, 40 layers, 40Q/40KV, vocab 32000, untied, maxpos 4096, float16"},
            {"ref": "https://huggingface.co/jburtoft/NousResearch-Llama-2-13b-hf-seqlen-1024-bs-1-cores-24/blob/"
                    "7ceec6cd90d2937b48de8e7eed7990af823c663c/checkpoint/config.json",
             "kind": "derived config copy (_name_or_path NousResearch/Llama-2-13b-hf)", "note": "same values"},
            {"ref": _GPU_POOR + " key NousResearch/Llama-2-13b-hf", "kind": "abridged config copy",
             "note": "hidden 5120, intermediate 13824, 40 heads, 40 layers, vocab 32000"},
        ],
    },
    "meta-llama/Llama-2-13b-chat-hf": {
        "target": "meta-llama/Llama-2-13b-hf", "verification": "full",
        "differs": "none in memory-relevant fields",
        "note": "full config copies found (the shared file had only an abridged one without the KV-head count)",
        "sources": [
            {"ref": "https://huggingface.co/TariqJamil/Llama-2-13b-chat-q4bit/blame/"
                    "b4736b4ad039b70da43cd3dc175b1ff9f36e0a6e/config.json",
             "kind": "derived config copy (_name_or_path meta-llama/Llama-2-13b-chat-hf)",
             "note": "hidden 5120, inter 13824, 40 layers, 40Q/40KV, vocab 32000, untied, maxpos 4096, float16"},
            {"ref": "https://huggingface.co/aiplanet/effi-13b/blame/main/config.json",
             "kind": "derived config copy (_name_or_path meta-llama/Llama-2-13b-chat-hf)", "note": "same values"},
            {"ref": "https://huggingface.co/NousResearch/Llama-2-13b-chat-hf/blob/"
                    "aad3c0b2315a458d54cd9b09ddc51cf06021196f/config.json",
             "kind": "mirror repo of the chat weights", "note": "same values (num_key_value_heads 40)"},
        ],
    },
    "TheBloke/Llama-2-13B-chat-GPTQ": {
        "target": "meta-llama/Llama-2-13b-hf", "verification": "full",
        "differs": "weights GPTQ 4-bit (see weight_format); max_position_embeddings 2048 in this repo's config",
        "overrides": {"max_position_embeddings": 2048},
        "weight_format": "GPTQ 4-bit, group size 128, act-order off (main branch); fp16 scales, packed zeros, g_idx",
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/Llama-2-13B-chat-GPTQ/blob/"
                    "ac57f0a972a560f19aec59b6ba6a41892e1f0dff/config.json",
             "kind": "repo config.json (one branch)",
             "note": "hidden 5120, inter 13824, 40 layers, 40 heads (no KV key -> 40), vocab 32000, maxpos 2048, "
                     "float16; quantization_config gptq bits 4, group_size 128"},
            {"ref": "https://huggingface.co/TheBloke/Llama-2-13B-chat-GPTQ/commit/4bfa813d6a2ddbcdc2b3d4eab37192f4a7f878ed",
             "kind": "README provided-files table", "note": "'main | 4 | 128 | No' (bits, group size, act order)"},
        ],
    },
    "TheBloke/LLaMa-7B-GPTQ": {
        "target": "huggyllama/llama-7b", "verification": "partial",
        "differs": "weights GPTQ 4-bit (see weight_format)",
        "weight_format": "GPTQ 4-bit (main branch; repo tag '4-bit precision'); " + _THEBLOKE_G,
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/LLaMa-7B-GPTQ/commit/ef3206ab906365f2fae774b1b84d6cf75265b47e",
             "kind": "README diff", "note": "GPTQ files for Meta's LLaMA 7b; unquantised fp16 model: huggyllama/llama-7b"},
            {"ref": "https://huggingface.co/TheBloke/LLaMa-7B-GPTQ/blob/aa959860dd586b5f2c094151594be7fc55244e16/"
                    "quantize_config.json", "kind": "quantize_config.json of another branch",
             "note": "bits 4, group_size 32, desc_act true (ef3206ab: bits 8, group_size 64)"},
        ],
    },
    "TheBloke/LLaMa-13B-GPTQ": {
        "target": "huggyllama/llama-13b", "verification": "partial",
        "differs": "weights GPTQ 4-bit (see weight_format)",
        "weight_format": "GPTQ 4-bit (main branch; repo tag '4-bit precision'); " + _THEBLOKE_G,
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/LLaMa-13B-GPTQ/blob/68aca9d7641dc03d9290667d6cc45a142a0fe3bc/"
                    "quantize_config.json", "kind": "quantize_config.json (branch not identified)",
             "note": "bits 4, group_size 128, desc_act false (other copies: 97b22e73 4-bit g64 act-order; "
                     "07212446 8-bit g128)"},
            {"ref": "https://huggingface.co/kuleshov/llama-13b-4bit/commit/7b1325f1392621a860e871041e8c4c650fe9b140",
             "kind": "other LLaMA-13B 4-bit conversion (context)", "note": "base config _name_or_path huggyllama/llama-13b"},
        ],
    },
    "TheBloke/LLaMa-65B-GPTQ": {
        "target": "huggyllama/llama-65b", "verification": "partial",
        "differs": "weights GPTQ 4-bit (see weight_format)",
        "weight_format": ("GPTQ 4-bit, no group size (group_size -1, the main branch's quantize_config.json at "
                          "commit 05e0c6d4). The branch that ran is not stated; g128 and g64 are ruled out by "
                          "optimum-benchmark's measured allocated peaks (Dec 2023, A100): prefill peaks of "
                          "32.37-37.09 GiB lie below the g128 weights (32.33 GiB) + KV for 4 runs, which no "
                          "checkpoint of those group sizes can allocate; group -1 (31.17 GiB) fits every run"),
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/LLaMA-65B-GPTQ", "kind": "model card",
             "note": "'This repo contains GPTQ model files for Meta's LLaMA 65B'; multiple parameter permutations "
                     "in branches"},
            {"ref": "https://huggingface.co/TheBloke/LLaMa-65B-GPTQ/blob/1cb025f4affb33f7512a50987b1b9945cf70f27b/"
                    "quantize_config.json", "kind": "quantize_config.json (branch not identified)",
             "note": "bits 4, group_size 64, desc_act true (05e0c6d4: 4-bit group -1; 52ed0b7a: 3-bit g128)"},
        ],
    },
    "meta-llama/Meta-Llama-3.1-8B": {
        "target": "meta-llama/Llama-3.1-8B", "verification": "full",
        "differs": "none in memory-relevant fields",
        "sources": [
            {"ref": "https://huggingface.co/Syed-Hasan-8503/Llama-3.1-8b-BAdam/blob/main/config.json",
             "kind": "derived config copy (_name_or_path meta-llama/Meta-Llama-3.1-8B)",
             "note": "hidden 4096, inter 14336, 32 layers, 32Q/8KV, vocab 128256, maxpos 131072, llama3 rope x8, "
                     "rope_theta 500000, bfloat16"},
            {"ref": "https://huggingface.co/avemio/GRAG-LLAMA-3.1-8B-CPT-HESSIAN-AI/blob/main/config.json",
             "kind": "derived config copy (_name_or_path meta-llama/Meta-Llama-3.1-8B; rope_scaling edited)",
             "note": "same dimensions"},
        ],
    },
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {
        "target": "mistralai/Mixtral-8x7B-v0.1", "verification": "full",
        "differs": "none in memory-relevant fields",
        "sources": [
            {"ref": "https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1/blob/"
                    "eba92302a2861cdc0098cc54bc9f17cb2c47eb61/config.json",
             "kind": "official config.json",
             "note": "hidden 4096, inter 14336, 32 layers, 32Q/8KV, 8 local experts, top-2, vocab 32000, "
                     "maxpos 32768, rope_theta 1e6, sliding_window null, bfloat16"},
            {"ref": "https://huggingface.co/Gokuldaskumar/mistral-8x7b-instruct/blob/main/config.json",
             "kind": "repo duplicate ('Duplicate from mistralai/Mixtral-8x7B-Instruct-v0.1')", "note": "same values"},
        ],
    },
    "Qwen/Qwen2.5-0.5B-Instruct": {
        "target": "Qwen/Qwen2.5-0.5B", "verification": "full",
        "differs": "eos 151645; max_window_layers 21 (base 24; unused: use_sliding_window false)",
        "note": "two copies keep vocab 151936 (the fine-tune copy with 151665 had resized its embeddings)",
        "sources": [
            {"ref": "https://huggingface.co/unsloth/Qwen2.5-0.5B-Instruct/blame/"
                    "00bafb7cd8d700177637919923d0e579fe0cfa5f/config.json",
             "kind": "derived config copy (_name_or_path Qwen/Qwen2.5-0.5B-Instruct)",
             "note": "hidden 896, inter 4864, 24 layers, 14Q/2KV, vocab 151936, tied, maxpos 32768, bfloat16"},
            {"ref": "https://huggingface.co/chinmaydk99/Qwen2.5-0.5B-Open-R1-Distill/blame/"
                    "e34bbfc774942ade90682fdeac70b41e562914d7/config.json",
             "kind": "derived config copy (_name_or_path Qwen/Qwen2.5-0.5B-Instruct)", "note": "same values"},
        ],
    },
    "deepseek-ai/DeepSeek-R1": {
        "target": "deepseek-ai/DeepSeek-V3", "verification": "partial",
        "differs": "post-trained weights; architecture of DeepSeek-V3 (card); block-FP8 weights as V3",
        "weight_format": "FP8 e4m3 (HF repo tag fp8; 128x128 block scales as DeepSeek-V3, whose code it uses)",
        "note": "the repo's config.json was not read: dimensions from the card (trained on V3-Base) and the "
                "GGUF metadata of the official weights",
        "sources": [
            {"ref": "github:deepseek-ai/DeepSeek-R1 README.md @00f3296a14392e787d4138b5a0d8ce0e55a25b23",
             "kind": "official model card (GitHub copy)",
             "note": "'DeepSeek-R1-Zero & DeepSeek-R1 are trained based on DeepSeek-V3-Base. For more details "
                     "regarding the model architecture, please refer to DeepSeek-V3'; 671B total, 37B activated, 128K"},
            {"ref": "https://ollama.com/library/deepseek-r1:671b/blobs/439dd1a5e052",
             "kind": "GGUF metadata of the official 671B weights",
             "note": "deepseek2: 61 blocks, embedding 7168, 128 heads, kv_lora_rank 512, q_lora_rank 1536, "
                     "rope dim 64, 256 experts (8 used, 1 shared), expert FFN 2048, FFN 18432, 3 leading dense "
                     "blocks, vocab 129280, context 163840"},
            {"ref": "https://huggingface.co/deepseek-ai/DeepSeek-R1/blob/main/config.json",
             "kind": "HF page of the official config.json (tags only seen)",
             "note": "tags deepseek_v3, custom_code, fp8"},
        ],
    },
    "Qwen/Qwen2.5-7B-Instruct-AWQ": {
        "target": "Qwen/Qwen2.5-7B", "verification": "partial",
        "differs": "AWQ 4-bit weights; max_position_embeddings as the Instruct config",
        "overrides": {"max_position_embeddings": 32768},
        "weight_format": "AWQ 4-bit (repo tags '4-bit precision', 'awq'); group size not read (128 assumed)",
        "note": "the repo's config.json was not read: dimensions assumed = Qwen/Qwen2.5-7B-Instruct (official "
                "quantization of it); verify intermediate_size before relying on exact weights",
        "sources": [
            {"ref": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct-AWQ/blob/73f22df4e9ab5b6b757255cf08ef05f51f20fa90/"
                    "tokenizer.json", "kind": "official repo page (tags)",
             "note": "qwen2, 4-bit precision, awq; commit 'upload weights'"},
        ],
    },
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4": {
        "target": "Qwen/Qwen2.5-7B", "verification": "partial",
        "differs": "GPTQ 4-bit weights; max_position_embeddings as the Instruct config",
        "overrides": {"max_position_embeddings": 32768},
        "weight_format": "GPTQ 4-bit (repo tags '4-bit precision', 'gptq'); group size not read (128 assumed)",
        "note": "the repo's config.json was not read: dimensions assumed = Qwen/Qwen2.5-7B-Instruct",
        "sources": [
            {"ref": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4/tree/refs%2Fpr%2F1",
             "kind": "official repo page (tags, file list)",
             "note": "qwen2, 4-bit precision, gptq; 2 safetensors shards (4 GB + 1.58 GB)"},
        ],
    },
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8": {
        "target": "Qwen/Qwen2.5-7B", "verification": "partial",
        "differs": "GPTQ 8-bit weights; max_position_embeddings as the Instruct config",
        "overrides": {"max_position_embeddings": 32768},
        "weight_format": "GPTQ 8-bit (repo tags '8-bit precision', 'gptq'); group size not read (128 assumed)",
        "note": "the repo's config.json was not read: dimensions assumed = Qwen/Qwen2.5-7B-Instruct",
        "sources": [
            {"ref": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8/commits/"
                    "2d17b232170adf772450aab18a4b029a37895c34/config.json",
             "kind": "official repo page (tags, config.json history)",
             "note": "qwen2, 8-bit precision, gptq; commits 'upload weights', 'update config.json'"},
        ],
    },
    "gpt2-large": {
        "target": "openai-community/gpt2-large", "verification": "full",
        "differs": "none (legacy id of the same repo)",
        "sources": [
            {"ref": "https://huggingface.co/jhaochenz/finetuned_gpt2-large_sst2_negation0.001_pretrainedFalse_epochs3/"
                    "blame/63daaf0aaef08d529cfd5f73243f0d2fd829521c/config.json",
             "kind": "derived config copy (_name_or_path gpt2-large)",
             "note": "n_embd 1280, n_head 20, n_layer 36, n_positions 1024, n_inner null, vocab 50257"},
        ],
    },
    "EleutherAI/pythia-410m-deduped": {
        "target": "EleutherAI/pythia-410m", "verification": "full",
        "differs": "none (same model trained on the deduplicated Pile)",
        "sources": [
            {"ref": "https://huggingface.co/heegyu/WizardVicuna-pythia-410m-deduped/commit/"
                    "8e5a774f27e96c2796ede43e52ab0db7571859f4",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m-deduped)",
             "note": "hidden 1024, intermediate 4096, 24 layers, 16 heads, vocab 50304, tie false, maxpos 2048, "
                     "rotary_pct 0.25, use_parallel_residual true, float16"},
            {"ref": "https://huggingface.co/aloobun/distill-p-test/blob/main/config.json",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m-deduped)", "note": "same values, bfloat16"},
            {"ref": "https://huggingface.co/postbot/emailgen-pythia-410m-deduped/blob/main/config.json",
             "kind": "derived config copy (_name_or_path EleutherAI/pythia-410m-deduped)", "note": "same values, float32"},
        ],
    },
    # ---- vicuna-7b-v1.5 family (optimum-benchmark running-vicunas, AutoAWQ README benchmarks) ----
    "lmsys/vicuna-7b-v1.5": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "full",
        "differs": "none in memory-relevant fields (fine-tune of Llama 2 7B; pad_token_id 0)",
        "sources": [
            {"ref": "https://huggingface.co/Charlie911/vicuna-7b-v1.5-lora-mctaco/blame/"
                    "fb3108202dd829a498f566246922a1b4662f4267/config.json",
             "kind": "derived config copy (_name_or_path lmsys/vicuna-7b-v1.5)",
             "note": "LlamaForCausalLM, hidden 4096, inter 11008, 32 layers, 32Q/32KV, vocab 32000, untied, "
                     "maxpos 4096, rope_scaling null, float16"},
            {"ref": "https://huggingface.co/casperhansen/vicuna-7b-v1.5-awq/blob/main/config.json",
             "kind": "config of an AWQ quantization (commit 6b4f5fe; _name_or_path = HF cache snapshot "
                     "de56c35b of lmsys/vicuna-7b-v1.5)",
             "note": "same dims (hidden 4096, inter 11008, 32 layers, 32Q/32KV, vocab 32000, untied, maxpos 4096), "
                     "float16, transformers 4.31.0"},
            {"ref": "public GitHub file ref 8410662249",
             "kind": "printed LlavaConfig of a LLaVA-1.5 model built on it (_name_or_path lmsys/vicuna-7b-v1.5)",
             "note": "hidden 4096, inter 11008, maxpos 4096, 32 heads, 32 layers, num_key_value_heads 32, "
                     "vocab 32000, tie false, float16"},
        ],
    },
    "TheBloke/vicuna-7B-v1.5-GPTQ": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "partial",
        "differs": "weights GPTQ 4-bit (see weight_format); dims of lmsys/vicuna-7b-v1.5 (= Llama-2-7b)",
        "weight_format": "GPTQ 4-bit (repo tags '4-bit precision', 'gptq'); main-branch group size 128 inferred from "
                         "its 3.9 GB model.safetensors (= the sibling vicuna-7B-v1.5-16K-GPTQ main: 4-bit, g128, "
                         "3.90 GB; its g32 branch is 4.28 GB); quantize_config.json not read, act-order unknown "
                         "(g_idx is stored either way, so size is unaffected)",
        "note": "the repo's config.json was not read: dims assumed = lmsys/vicuna-7b-v1.5 (README: 'GPTQ model files "
                "for lmsys's Vicuna 7B v1.5'); max_position_embeddings 4096 kept",
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/vicuna-7B-v1.5-GPTQ/blob/a4f8a9e8733a32780a8525aadb73d7f8608c19f1/"
                    "README.md",
             "kind": "model card", "note": "base_model lmsys/vicuna-7b-v1.5, model_type llama; 'This repo contains "
                                           "GPTQ model files for lmsys's Vicuna 7B v1.5'; parameter permutations in branches"},
            {"ref": "https://huggingface.co/TheBloke/vicuna-7B-v1.5-GPTQ/tree/main",
             "kind": "file list of the main branch (head a4f8a9e)",
             "note": "tags 4-bit precision, gptq; model.safetensors 3.9 GB, quantize_config.json 187 B, config.json "
                     "874 B (branch gptq-8bit--1g-actorder_True: 7.01 GB)"},
            {"ref": "https://huggingface.co/TheBloke/vicuna-7B-v1.5-16K-GPTQ/commit/edad1408279f4b1d15e039a0ee95c1d00faaddcf",
             "kind": "README table of the sibling 16K repo (same 7B dims, same quantizer)",
             "note": "'main | 4 | 128 | No | wikitext | 3.90 GB | AutoGPTQ'; 'gptq-4bit-32g-actorder_True | 4 | 32 | "
                     "Yes | 4.28 GB' (bits, group size, act order, size)"},
        ],
    },
    "IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemm": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "partial",
        "differs": "weights AWQ 4-bit, GEMM layout (see weight_format); dims of lmsys/vicuna-7b-v1.5",
        "weight_format": "AWQ 4-bit GEMM (name and benchmark config 'awq+gemm'); bits and group size not read: "
                         "w_bit 4, q_group_size 128 assumed (AutoAWQ's default quant_config, also used by "
                         "casperhansen/vicuna-7b-v1.5-awq)",
        "note": "no config.json or quant_config.json of this repo found; dims assumed = lmsys/vicuna-7b-v1.5 (name; "
                "benchmark 'Optimum-Benchmark x Vicuna x BnB & GPTQ & (AWQ+GEMM vs AWQ+GEMV)')",
        "sources": [
            {"ref": "github:huggingface/optimum-benchmark examples/running-vicunas/configs/awq+gemm.yaml "
                    "@014c97e01fdb6dc955fd2e68ffbad88fc01ac392",
             "kind": "benchmark config naming the repo", "note": "model: IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemm; "
                                                                 "README: 'A set of benchmarks on quantizing Vicuna'"},
            {"ref": "github:huggingface/optimum-benchmark examples/running-vicunas/experiments/A100-80GB/"
                    "awq+gemm-batch_size(1)-sequence_length(128)-new_tokens(256)/0/hydra_config.yaml "
                    "@09886e9685bb7f2465e9489d2b5877cd8da4c91b",
             "kind": "resolved benchmark config", "note": "torch_dtype float16, no quantization_config override "
                                                         "(the checkpoint's own), transformers 4.35.0.dev0"},
            {"ref": "github:casper-hansen/AutoAWQ examples/basic_quant.py @1c61aa38b6d7cdcea5986790f40b9a70e016f67e",
             "kind": "AutoAWQ example (context for the assumed settings)",
             "note": "quant_config = { zero_point: True, q_group_size: 128, w_bit: 4, version: GEMM }"},
        ],
    },
    "IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemv": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "partial",
        "differs": "weights AWQ 4-bit, GEMV layout (see weight_format); dims of lmsys/vicuna-7b-v1.5",
        "weight_format": "AWQ 4-bit GEMV (name and benchmark config 'awq+gemv'); bits and group size not read: "
                         "w_bit 4, q_group_size 128 assumed (as casperhansen/vicuna-7b-v1.5-awq-gemv's quant_config); "
                         "GEMV's padding of the scale/zero columns is not modelled",
        "note": "no config.json or quant_config.json of this repo found; dims assumed = lmsys/vicuna-7b-v1.5 (name)",
        "sources": [
            {"ref": "github:huggingface/optimum-benchmark examples/running-vicunas/configs/awq+gemv.yaml "
                    "@014c97e01fdb6dc955fd2e68ffbad88fc01ac392",
             "kind": "benchmark config naming the repo", "note": "model: IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemv"},
            {"ref": "https://huggingface.co/casperhansen/vicuna-7b-v1.5-awq-gemv/blob/main/quant_config.json",
             "kind": "quant_config.json of another GEMV quantization of the same model (context for the assumption)",
             "note": "zero_point true, q_group_size 128, w_bit 4, version GEMV"},
        ],
    },
    "casperhansen/vicuna-7b-v1.5-awq": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "full",
        "differs": "weights AWQ 4-bit GEMM, group size 128 (see weight_format); dims of lmsys/vicuna-7b-v1.5",
        "weight_format": "AWQ 4-bit, group size 128, zero point, GEMM (quantization_config in config.json)",
        "sources": [
            {"ref": "https://huggingface.co/casperhansen/vicuna-7b-v1.5-awq/blob/main/config.json",
             "kind": "repo config.json (commit 6b4f5fe 'Update config.json')",
             "note": "hidden 4096, inter 11008, 32 layers, 32Q/32KV, vocab 32000, untied, maxpos 4096, float16; "
                     "quantization_config awq bits 4, group_size 128, version gemm, zero_point true"},
            {"ref": "https://huggingface.co/casperhansen/vicuna-7b-v1.5-awq/blob/6ab92865e9dd372f5aa738442b1957e22a0c9c48/"
                    "quant_config.json",
             "kind": "repo quant_config.json (initial commit bccdca9)", "note": "zero_point true, q_group_size 128, w_bit 4"},
        ],
    },
    "casperhansen/vicuna-7b-v1.5-awq-gemv": {
        "target": "meta-llama/Llama-2-7b-hf", "verification": "partial",
        "differs": "weights AWQ 4-bit GEMV, group size 128 (see weight_format); dims of lmsys/vicuna-7b-v1.5",
        "weight_format": "AWQ 4-bit, group size 128, zero point, GEMV layout (quant_config.json); GEMV's padding of "
                         "the scale/zero columns is not modelled",
        "note": "the repo's config.json was not read: dims assumed = lmsys/vicuna-7b-v1.5 (name; same author's GEMM "
                "quantization casperhansen/vicuna-7b-v1.5-awq has them)",
        "sources": [
            {"ref": "https://huggingface.co/casperhansen/vicuna-7b-v1.5-awq-gemv/blob/main/quant_config.json",
             "kind": "repo quant_config.json (commit 5adf162 'add files')",
             "note": "zero_point true, q_group_size 128, w_bit 4, version GEMV; repo tags llama, 4-bit precision, awq"},
        ],
    },
    # ---- Mistral-7B quantizations ----
    "TheBloke/Mistral-7B-v0.1-GPTQ": {
        "target": "mistralai/Mistral-7B-v0.1", "verification": "partial",
        "differs": "weights GPTQ 4-bit (see weight_format)",
        "weight_format": "GPTQ 4-bit (repo tags '4-bit precision', 'gptq'); main-branch group size 128 inferred from "
                         "its 4.16 GB model.safetensors (= a 4-bit g128 GPTQ of Mistral-7B-v0.1, 4,158,662,216 bytes); "
                         "quantize_config.json not read, act-order unknown (size unaffected)",
        "note": "the repo's config.json (963 B) was not read: dims assumed = mistralai/Mistral-7B-v0.1 (base_model); "
                "the repo also ships an added_tokens.json (42 B) whose effect on vocab_size was not checked",
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/Mistral-7B-v0.1-GPTQ/tree/390c99d6e4db9421177d88b28e05f1493fe0bdc7",
             "kind": "file list of the main branch",
             "note": "tags mistral, 4-bit precision, gptq; model.safetensors 4.16 GB, quantize_config.json 186 B"},
            {"ref": "https://huggingface.co/iproskurina/Mistral-7B-v0.1-GPTQ-4bit-g128/commit/"
                    "50d6f4295215d165761fa8e654dad46db4098703",
             "kind": "another GPTQ of mistralai/Mistral-7B-v0.1 (size reference)",
             "note": "'4bits, gr128, desc_act=False'; gptq_model-4bit-128g.safetensors size 4158662216; config hidden "
                     "4096, inter 14336, 32 layers, 32Q/8KV, vocab 32000, maxpos 32768, sliding_window 4096"},
            {"ref": "public GitHub file ref 52338871820",
             "kind": "third-party experiment script", "note": "'GPTQ main = 4bit-128g; branch = 4bit-32g' above "
                                                              "TheBloke/Mistral-7B-v0.1-GPTQ and its branches"},
        ],
    },
    "ybelkada/test-mistral-7b-v0.1-awq": {
        "target": "mistralai/Mistral-7B-v0.1", "verification": "partial",
        "differs": "weights AWQ 4-bit (see weight_format)",
        "weight_format": "AWQ 4-bit (benchmark config 'awq'); bits and group size not read: w_bit 4, q_group_size 128 "
                         "assumed (every Mistral-7B AWQ of that period seen uses them, e.g. TheBloke/Mistral-7B-v0.1-AWQ)",
        "note": "no config.json or quant_config.json of this test repo found; dims assumed = mistralai/Mistral-7B-v0.1 "
                "(name)",
        "sources": [
            {"ref": "github:huggingface/optimum-benchmark examples/running-mistrals/configs/awq.yaml "
                    "@014c97e01fdb6dc955fd2e68ffbad88fc01ac392",
             "kind": "benchmark config naming the repo", "note": "model: ybelkada/test-mistral-7b-v0.1-awq"},
            {"ref": "https://huggingface.co/TheBloke/Mistral-7B-v0.1-AWQ/blob/eb57837c43898bfa6d599c197a327e314dddf6a1/"
                    "quant_config.json",
             "kind": "quant_config.json of another AWQ of the same model (context for the assumption)",
             "note": "zero_point true, q_group_size 128, w_bit 4, version GEMM"},
        ],
    },
    "TheBloke/Mistral-7B-OpenOrca-AWQ": {
        "target": "mistralai/Mistral-7B-v0.1", "verification": "partial",
        "differs": "fine-tune with 2 added tokens (vocab_size 32002, see overrides); weights AWQ 4-bit g128 GEMM",
        "overrides": {"vocab_size": 32002},
        "weight_format": "AWQ 4-bit, group size 128, zero point, GEMM (quant_config.json)",
        "note": "the AWQ repo's config.json was not read: dims and vocab from the unquantized Open-Orca/Mistral-7B-OpenOrca "
                "config (eos 32000 in this repo's generation_config is consistent with the added tokens)",
        "sources": [
            {"ref": "https://huggingface.co/TheBloke/Mistral-7B-OpenOrca-AWQ/blob/main/quant_config.json",
             "kind": "repo quant_config.json (commit 805b23b 'AWQ model commit')",
             "note": "zero_point true, q_group_size 128, w_bit 4, version GEMM; repo tags mistral, 4-bit precision, awq"},
            {"ref": "https://huggingface.co/Open-Orca/Mistral-7B-OpenOrca/blob/refs%2Fpr%2F19/config.json",
             "kind": "config.json of the unquantized model (commit 1beff82)",
             "note": "_name_or_path mistralai/Mistral-7B-v0.1; hidden 4096, inter 14336, 32 layers, 32Q/8KV, "
                     "vocab 32002, untied, maxpos 32768, rope_theta 10000, sliding_window 4096, bfloat16, eos 32000"},
            {"ref": "https://huggingface.co/whaleloops/Mistral-OpenOrca-7B/blob/4b1130d71235103da0889a5bd87374b4cc8bbcf5/"
                    "config.json",
             "kind": "derived copy (_name_or_path .../Open-Orca/Mistral-7B-OpenOrca)", "note": "same values, vocab 32002"},
        ],
    },
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4": {
        "target": "meta-llama/Llama-3.1-8B", "verification": "partial",
        "differs": "AWQ 4-bit weights of meta-llama/Llama-3.1-8B-Instruct (see weight_format)",
        "weight_format": "AWQ 4-bit, GEMM, group size 128 (as quoted from the model card by a third party; the repo's "
                         "quantization_config was not read)",
        "note": "the repo's config.json was not read: dims = Llama-3.1-8B(-Instruct) per the listing below",
        "sources": [
            {"ref": "public GitHub file ref 55618112662", "kind": "project notes quoting the model card",
             "note": "'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 exists (AutoAWQ, GEMM kernels, group size "
                     "128, ~4GB VRAM for weights alone)'"},
            {"ref": "https://llmrun.dev/model/hugging-quants-meta-llama-3-1-8b-instruct-awq-int4",
             "kind": "model listing (from the repo metadata)",
             "note": "LlamaForCausalLM, 'AWQ INT4-quantized version of Meta's Llama 3.1 8B Instruct', context 131,072, "
                     "vocab 128,256"},
        ],
    },
    # ---- ids of the vLLM logs ----
    "Qwen/Qwen2.5-32B-Instruct": {
        "target": "Qwen/Qwen2.5-32B", "verification": "full",
        "differs": "max_position_embeddings (see overrides); eos 151645; rms_norm_eps 1e-6; sliding_window null "
                   "(unused either way: use_sliding_window false)",
        "overrides": {"max_position_embeddings": 32768},
        "sources": [
            {"ref": "https://huggingface.co/ehristoforu/qwen2.5-test-32b-it/blob/6bcc8f1cedfe72471276d0159d1646be6ac50e40/"
                    "config.json",
             "kind": "derived config copy (_name_or_path Qwen/Qwen2.5-32B-Instruct)",
             "note": "hidden 5120, inter 27648, 64 layers, 40Q/8KV, vocab 152064, untied, maxpos 32768, rope_theta 1e6, "
                     "bfloat16"},
            {"ref": "https://huggingface.co/GAIR/LIMO/blob/refs%2Fpr%2F2/config.json",
             "kind": "derived config copy (_name_or_path a local Qwen2.5-32B-Instruct folder)", "note": "same values"},
        ],
    },
    "Qwen/Qwen2.5-72B-Instruct": {
        "target": "Qwen/Qwen2.5-72B", "verification": "full",
        "differs": "max_position_embeddings (see overrides); eos 151645; rms_norm_eps 1e-6",
        "overrides": {"max_position_embeddings": 32768},
        "sources": [
            {"ref": "https://huggingface.co/OPEA/Qwen2.5-72B-Instruct-int4-sym-inc/blame/main/config.json",
             "kind": "config of a quantization (_name_or_path a local Qwen2.5-72B-Instruct folder; commit 7a0672a)",
             "note": "hidden 8192, inter 29568, 80 layers, 64Q/8KV, maxpos 32768, max_window_layers 70, rope_theta 1e6"},
            {"ref": "https://huggingface.co/gghfez/UwU-72B-Preview/blob/64af8159bc15b908f7f1792121f99beaad633ce9/config.json",
             "kind": "derived config copy (_name_or_path unsloth/qwen2.5-72b-instruct-bnb-4bit)",
             "note": "hidden 8192, inter 29568, 80 layers, 64Q/8KV, vocab 152064, untied, maxpos 32768, bfloat16"},
        ],
    },
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": {
        "target": "Qwen/Qwen3-235B-A22B", "verification": "partial",
        "differs": "block-FP8 weights (see weight_format); 2507 update: max_position_embeddings 262144 and "
                   "rope_theta 5e6 (see overrides); layer dimensions identical",
        "overrides": {"max_position_embeddings": 262144, "rope_theta": 5000000.0},
        "weight_format": "FP8 e4m3, fine-grained, block size 128 (card; the FP8 repo's quantization_config was not read)",
        "note": "the FP8 repo's config.json was not read: dimensions from its card and from the config.json of the "
                "BF16 Qwen3-235B-A22B-Instruct-2507 that it quantizes",
        "sources": [
            {"ref": "github:akash-network/awesome-akash Qwen3-235B-A22B-Instruct-2507-FP8/README.md "
                    "@344abdb144db36d2eaa6bf34b91e987c501712a4",
             "kind": "copy of the official model card",
             "note": "'This repo contains the FP8 version of Qwen3-235B-A22B-Instruct-2507': 235B total / 22B active, "
                     "94 layers, 64 Q / 4 KV heads, 128 experts, 8 activated, context 262,144 natively; 'fine-grained "
                     "fp8 quantization with block size of 128'"},
            {"ref": "public GitHub file ref 62836009775",
             "kind": "verbatim config.json of Qwen3-235B-A22B-Instruct-2507 (BF16; local copy of the official repo)",
             "note": "Qwen3MoeForCausalLM, hidden 4096, inter 12288, moe_intermediate 1536, 94 layers, 64Q/4KV, "
                     "head_dim 128, 128 experts, top-8, decoder_sparse_step 1, mlp_only_layers [], vocab 151936, untied, "
                     "maxpos 262144, rope_theta 5000000, bfloat16; embed_tokens [151936, 4096]"},
            {"ref": "public GitHub file ref 38962983769",
             "kind": "vLLM 0.10.2 start-up log in markdown notes 'Hosting Qwen3-235B-A22B-Instruct-2507-FP8 on 8xL40S' "
                     "(tp 8, expert parallel, quantization=fp8); kept verbatim in profiles/public/vllm/logs/"
                     "gh-ref38962983769-qwen3-235b-a22b-instruct-2507-fp8-8xl40s-tp8-ep.log",
             "note": "'Model loading took 27.7183 GiB' per GPU; 'Available KV cache memory: 10.68 GiB' for "
                     "238,208 tokens = 48,128 B per token per GPU (94 layers x 2 x 1 KV head x 128 x 2 B at tp 8)"},
        ],
    },
    "google/gemma-2-9b-it": {
        "target": "google/gemma-2-9b", "verification": "full",
        "differs": "none in memory-relevant fields",
        "sources": [
            {"ref": "https://huggingface.co/thejaminator/gemma-hook-layer-0-step-2000/commit/"
                    "33738e3d45f3bc4dc6cba719f54d0513279e2231",
             "kind": "verbatim copy ('Copy config.json from google/gemma-2-9b-it')",
             "note": "Gemma2ForCausalLM, hidden 3584, inter 14336, 42 layers, 16Q/8KV, head_dim 256, vocab 256000, "
                     "maxpos 8192, sliding_window 4096, query_pre_attn_scalar 256, no tie key (default tied), bfloat16"},
            {"ref": "https://huggingface.co/hfhugs/gemma-2-9b-it/blob/main/config.json",
             "kind": "re-upload (commit 651845e)", "note": "same values"},
        ],
    },
    "mistralai/Mistral-7B-Instruct-v0.3": {
        "target": "mistralai/Mistral-7B-v0.1", "verification": "full",
        "differs": "v0.3 tokenizer and RoPE: vocab_size 32768, rope_theta 1e6, no sliding window (see overrides)",
        "overrides": {"vocab_size": 32768, "rope_theta": 1000000.0, "sliding_window": None},
        "sources": [
            {"ref": "https://huggingface.co/darkshapes/mistral-7b-v0.3-chinese-chat-4bit/blob/"
                    "9f1af52c7f3718ddd7e78df3b9b868a258e9e8e9/config.json",
             "kind": "derived config copy (_name_or_path mistralai/Mistral-7B-Instruct-v0.3)",
             "note": "hidden 4096, inter 14336, 32 layers, 32Q/8KV, vocab 32768, untied, maxpos 32768, rope_theta 1e6, "
                     "sliding_window null, bfloat16"},
            {"ref": "https://huggingface.co/unsloth/mistral-7b-v0.3/blob/058e6597d74073e59a1c087ef221d0a7b6bb3889/config.json",
             "kind": "derived config copy of the v0.3 base (_name_or_path mistralai/Mistral-7B-v0.3)",
             "note": "same dims: vocab 32768, rope_theta 1e6, sliding_window null, maxpos 32768"},
        ],
    },
    "meta-llama/Llama-Guard-3-8B": {
        "target": "meta-llama/Llama-3.1-8B", "verification": "partial",
        "differs": "safety-classifier fine-tune of Llama-3.1-8B (card); architecture as the target",
        "note": "the repo's config.json was not read: vocab, KV heads and RoPE assumed = Llama-3.1-8B from the card's "
                "'Llama-3.1-8B pretrained model, fine-tuned'; context 131,072 and 32 layers corroborated below",
        "sources": [
            {"ref": "https://ai.azure.com/catalog/models/Llama-Guard-3-8B", "kind": "mirror of the model card",
             "note": "'Llama Guard 3 is a Llama-3.1-8B pretrained model, fine-tuned for content safety classification'"},
            {"ref": "https://fireworks.ai/models/fireworks/llama-guard-3-8b", "kind": "provider model page",
             "note": "'based on the Llama 3.1 8B architecture'; context length 131,072 tokens"},
            {"ref": "public GitHub file ref 15945698718",
             "kind": "analysis script on the snapshot 7327bd9f of meta-llama/Llama-Guard-3-8B",
             "note": "iterates layer_indexs = range(33) over hidden states (embeddings + 32 layers)"},
        ],
    },
}

_PROFILE_ALIAS_QUANTIZATION: dict[str, tuple[str, str]] = {
    "TheBloke/Llama-2-13B-chat-GPTQ": ("gptq", "weight_format: GPTQ 4-bit g128 (README table, main branch)"),
    "TheBloke/LLaMa-7B-GPTQ": ("gptq", "weight_format: GPTQ 4-bit; group size of the main branch not confirmed, "
                                       "g128 assumed"),
    "TheBloke/LLaMa-13B-GPTQ": ("gptq", "weight_format: GPTQ 4-bit; group size of the main branch not confirmed, "
                                        "g128 assumed"),
    "TheBloke/LLaMa-65B-GPTQ": ("gptq-int4-g-1", "weight_format: GPTQ 4-bit, group -1 (commit 05e0c6d4's "
                                                 "quantize_config.json; g128 / g64 contradicted by measured peaks)"),
    "deepseek-ai/DeepSeek-R1": ("fp8-block128", "weight_format: FP8 (repo tag); 128x128 blocks as DeepSeek-V3"),
    "Qwen/Qwen2.5-7B-Instruct-AWQ": ("awq", "weight_format: AWQ 4-bit; group size 128 assumed (not read)"),
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4": ("gptq", "weight_format: GPTQ 4-bit; group size 128 assumed (not read)"),
    "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8": ("gptq-int8-g128", "weight_format: GPTQ 8-bit; group size 128 assumed "
                                                             "(not read)"),
    "TheBloke/vicuna-7B-v1.5-GPTQ": ("gptq", "weight_format: GPTQ 4-bit; main-branch group size 128 inferred from "
                                             "the file size (quantize_config.json not read)"),
    "IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemm": ("awq", "weight_format: AWQ GEMM; 4-bit g128 assumed (not read)"),
    "IlyasMoutawwakil/vicuna-7b-v1.5-awq-gemv": ("awq", "weight_format: AWQ GEMV; 4-bit g128 assumed (not read)"),
    "casperhansen/vicuna-7b-v1.5-awq": ("awq", "weight_format: AWQ 4-bit g128 GEMM (config.json quantization_config)"),
    "casperhansen/vicuna-7b-v1.5-awq-gemv": ("awq", "weight_format: AWQ 4-bit g128 GEMV (quant_config.json)"),
    "TheBloke/Mistral-7B-v0.1-GPTQ": ("gptq", "weight_format: GPTQ 4-bit; main-branch group size 128 inferred from "
                                              "the file size (quantize_config.json not read)"),
    "ybelkada/test-mistral-7b-v0.1-awq": ("awq", "weight_format: AWQ; 4-bit g128 assumed (not read)"),
    "TheBloke/Mistral-7B-OpenOrca-AWQ": ("awq", "weight_format: AWQ 4-bit g128 GEMM (quant_config.json)"),
    "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4": ("awq", "weight_format: AWQ 4-bit GEMM g128 (card, quoted)"),
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": ("fp8-block128", "card: fine-grained fp8 quantization with block size "
                                                                "of 128 (quantization_config not read)"),
}


#: checkpoints whose released weights are quantized: machine key for fitting.physics.quantization.
NATIVE_QUANTIZATION: dict[str, tuple[str, str]] = {
    "deepseek-ai/DeepSeek-V3": ("fp8-block128", "weight_format: FP8 e4m3 with 128x128 block scales"),
    "moonshotai/Kimi-K2-Instruct": (
        "fp8-block128",
        "notes: released weights are block-FP8 per the model card (not captured in the abridged config copy); "
        "128x128 blocks assumed as in DeepSeek-V3, whose code it uses",
    ),
    "openai/gpt-oss-20b": ("mxfp4", "weight_format: MXFP4 for MoE expert weights; attention, router, embeddings bf16"),
    "openai/gpt-oss-120b": ("mxfp4", "weight_format: MXFP4 for MoE expert weights; attention, router, embeddings bf16"),
    "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic": (
        "fp8-per-channel", "weight_format: linear weights FP8 per output channel; lm_head not quantized"),
    "Qwen/Qwen3-235B-A22B-FP8": ("fp8-block128", "card: fine-grained fp8 quantization with block size of 128"),
    **_PROFILE_ALIAS_QUANTIZATION,
}

#: architecture fields filled from the entry's own sources (never from memory).
FILLED_FIELDS: dict[str, dict[str, tuple[Any, str]]] = {
    "bigcode/octocoder": {
        "vocab_size": (
            49152,
            "StarCoder base value from this entry's sources A-C (its notes: 'StarCoder base = 49152 (A-C)'); "
            "octocoder's own config.json was not found, fine-tunes may add a few tokens",
        ),
    },
    # The GGUF that bartowski converted from THUDM/GLM-Z1-32B-0414 prints the checkpoint's
    # dimensions (llama.cpp build 5274, print_info; kept verbatim in
    # profiles/public/llamacpp/logs/glm-z1-32b-iq4xs-3090ti-b5274.log): the converter copies them
    # from the repository's config.json. The entry's other fields stay as the shared file has them.
    **{"THUDM/GLM-Z1-32B-0414": {
        key: (value, f"llama.cpp print_info of the GGUF converted from this checkpoint ({why}; "
                     "profiles/public/llamacpp/logs/glm-z1-32b-iq4xs-3090ti-b5274.log, llama.cpp build 5274)")
        for key, value, why in (
            ("model_type", "glm4", "arch = glm4; architectures Glm4ForCausalLM per the entry's source B"),
            ("hidden_size", 6144, "n_embd = 6144"),
            ("intermediate_size", 23040, "n_ff = 23040"),
            ("num_hidden_layers", 61, "n_layer = 61"),
            ("num_attention_heads", 48, "n_head = 48"),
            ("num_key_value_heads", 2, "n_head_kv = 2"),
            ("head_dim", 128, "n_embd_head_k = n_embd_head_v = 128"),
            ("partial_rotary_factor", 0.5, "n_rot = 64 of head size 128"),
            ("vocab_size", 151552, "n_vocab = 151552"),
            ("max_position_embeddings", 32768, "n_ctx_train = 32768"),
            ("tie_word_embeddings", False,
             "'model params = 32.57 B': an untied output matrix gives 32.565 B (tied: 31.63 B), and the file "
             "holds a separate output tensor (the one q6_K tensor beside token_embd)"),
            ("attention_bias", False,
             "613 tensors = 61 x 10 + token_embd, output_norm, output: no q/k/v bias tensors (they would add "
             "3 per layer); 245 f32 tensors = 61 x 4 norms + output_norm"),
        )}},
}

#: aliases not in the shared file, each backed by a source.
EXTRA_ALIASES: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2-7B-Instruct": {
        "target": "Qwen/Qwen2-7B",
        "verification": "full",
        "differs": "max_position_embeddings (see overrides); eos 151645",
        "overrides": {"max_position_embeddings": 32768},
        "sources": [
            {
                "ref": "github:mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py @01ced331a9e155c5ba4e7625b027a51bee611450 key qwen2_7b",
                "kind": "verbatim copy of the Instruct config (source C of the Qwen/Qwen2-7B entry)",
                "note": "same dims as the base entry; max_position_embeddings 32768, eos 151645",
            }
        ],
        "added_by": "fitting.data.build_registry (not in model_configs.yaml aliases; backed by the target entry's source C)",
    },
    "Qwen/Qwen3-235B-A22B-FP8": {
        "target": "Qwen/Qwen3-235B-A22B",
        "verification": "partial",
        "differs": "weights are block-FP8 (see weight_format); architecture identical",
        "weight_format": "FP8 e4m3, fine-grained, block size 128 (quantization_config in config.json)",
        "sources": [
            {
                "ref": "github:akash-network/awesome-akash Qwen3-235B-A22B-FP8/README.md @2199af2993737009b86d6424d705f30a290e7b86",
                "kind": "copy of the official model card",
                "note": "'This repo contains the FP8 version of Qwen3-235B-A22B': 235B total / 22B active, 94 layers, "
                        "64 Q / 4 KV heads, 128 experts, 8 activated; 'fine-grained fp8 quantization with block size "
                        "of 128'; max_position_embeddings 40960",
            }
        ],
        "added_by": "fitting.data.build_registry (card copy, config.json itself not read)",
    },
    **{aid: {**body, "added_by": "fitting.data.build_registry (id used by public profiles / studies; sources listed)"}
       for aid, body in _PROFILE_ALIASES.items()},
}

_COUNT_RE = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([KMBT]?)\b")
_SCALE = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_param_count(text: Any) -> int | None:
    """Leading count of a stated-parameters string: ``'13,016,279,168'``, ``'7.24B (...)'``, ``'1T'``.

    Returns None when the text does not start with a number.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return int(text)
    m = _COUNT_RE.match(str(text))
    if not m:
        return None
    return int(round(float(m.group(1).replace(",", "")) * _SCALE[m.group(2)]))


def _params(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    out: dict[str, Any] = {}
    for key in ("total", "active", "non_embedding", "mtp_extra"):
        if key in raw:
            out[key] = parse_param_count(raw[key])
            out[f"{key}_text"] = str(raw[key])
    for key, value in raw.items():
        if key not in ("total", "active", "non_embedding", "mtp_extra"):
            out[key] = value
    return out


def _trust(model_id: str, model_type: str | None) -> tuple[bool, str]:
    if model_id in TRUST_REMOTE_CODE:
        return True, TRUST_REMOTE_CODE[model_id]
    if model_type in _NATIVE_NOTES:
        return False, _NATIVE_NOTES[model_type]
    if model_type is None:
        return False, "architecture class Glm4ForCausalLM is native in transformers (>= 4.51)"
    return False, f"native transformers model_type {model_type}"


def _model_entry(model_id: str, src: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in src.items() if k not in _PROVENANCE}
    entry: dict[str, Any] = {}
    filled = FILLED_FIELDS.get(model_id, {})
    for key, (value, why) in filled.items():
        if key in config:
            raise ValueError(f"{model_id}: filled field {key} is present in the source")
        config[key] = value
    entry["architecture_available"] = "hidden_size" in config
    entry["config"] = config
    if filled:
        entry["filled_fields"] = {k: why for k, (_, why) in filled.items()}
    trust, why = _trust(model_id, src.get("model_type"))
    entry["trust_remote_code"] = trust
    entry["trust_remote_code_reason"] = why
    entry["weight_format"] = src.get("weight_format")
    nq = NATIVE_QUANTIZATION.get(model_id)
    entry["native_quantization"] = nq[0] if nq else None
    if nq:
        entry["native_quantization_reason"] = nq[1]
    entry["params"] = _params(src.get("params"))
    for key in ("verification", "layer_pattern", "notes", "field_sources", "sources"):
        if key in src:
            entry[key] = src[key]
    return entry


def _alias_entry(alias_id: str, src: dict[str, Any]) -> dict[str, Any]:
    entry = dict(src)
    nq = NATIVE_QUANTIZATION.get(alias_id)
    entry["native_quantization"] = nq[0] if nq else None
    if nq:
        entry["native_quantization_reason"] = nq[1]
    return entry


_HUB_HEADER = """\
# Models and aliases added to the registry from their own config.json (or, where marked, from configs
# assembled from several public sources), each with its sources and the date they were retrieved.
# `python -m fitting.data.build_registry` turns this file and ../shared/data/model_configs.yaml into
# registry.yaml; `python -m fitting.data.build_registry --add ID_OR_FOLDER` appends a model here.
# `unsourced`: ids the public profiles name whose config could not be sourced, with the reason.
"""


def load_hub_configs(path: Path = HUB_CONFIGS) -> dict[str, Any]:
    """The ``hub_configs.yaml`` document (``models``, ``aliases``, ``unsourced``); empty parts if absent."""
    doc: dict[str, Any] = {}
    if Path(path).exists():
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return {"models": dict(doc.get("models") or {}), "aliases": dict(doc.get("aliases") or {}),
            "unsourced": dict(doc.get("unsourced") or {})}


def _hub_model_entry(model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Registry record of a hub_configs.yaml model: its config read by the estimator's own code."""
    config = dict(body["config"])
    try:
        entry, qinfo, _, _ = entry_from_config(model_id, config)
    except (ArchitectureError, ValueError) as exc:
        raise ValueError(f"hub_configs.yaml: {model_id}: {exc}") from exc
    out: dict[str, Any] = {"architecture_available": True, "config": config}
    out["trust_remote_code"] = entry.trust_remote_code
    out["trust_remote_code_reason"] = entry.trust_remote_code_reason
    out["weight_format"] = qinfo.description if qinfo else body.get("weight_format")
    out["native_quantization"] = qinfo.format if qinfo else None
    if qinfo:
        out["native_quantization_reason"] = f"quantization_config ({qinfo.method}): {qinfo.description}"
    out["params"] = _params(body.get("params"))
    for key in ("verification", "config_kind", "retrieved", "notes", "field_sources", "sources"):
        if key in body:
            out[key] = body[key]
    out["added_by"] = f"fitting.data.build_registry (hub_configs.yaml; retrieved {body.get('retrieved', '?')})"
    return out


def _hub_alias_entry(alias_id: str, body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    out.setdefault("native_quantization", None)
    out["added_by"] = f"fitting.data.build_registry (hub_configs.yaml; retrieved {body.get('retrieved', '?')})"
    return out


def build_registry(source: Path = DEFAULT_SOURCE, hub_configs: Path = HUB_CONFIGS) -> dict[str, Any]:
    """Registry document built from ``source`` (a model_configs.yaml) and ``hub_configs``."""
    raw_bytes = Path(source).read_bytes()
    data = yaml.safe_load(raw_bytes)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of model ids")
    aliases_src = data.get("aliases") or {}
    models = {mid: _model_entry(mid, body) for mid, body in data.items() if mid != "aliases"}
    for mid, body in EXTRA_MODELS.items():
        if mid in models:
            raise ValueError(f"extra model {mid} already exists in {source}")
        models[mid] = {**_model_entry(mid, body), "added_by": "fitting.data.build_registry (EXTRA_MODELS; sources listed)"}
    aliases = {aid: _alias_entry(aid, body) for aid, body in aliases_src.items()}
    for aid, body in EXTRA_ALIASES.items():
        if aid in aliases or aid in models:
            raise ValueError(f"extra alias {aid} already exists in {source}")
        aliases[aid] = _alias_entry(aid, body)
    hub = load_hub_configs(hub_configs)
    for mid, body in hub["models"].items():
        if mid in models or mid in aliases:
            raise ValueError(f"{hub_configs}: model {mid} already exists")
        models[mid] = _hub_model_entry(mid, body)
    for aid, body in hub["aliases"].items():
        if aid in aliases or aid in models:
            raise ValueError(f"{hub_configs}: alias {aid} already exists")
        aliases[aid] = _hub_alias_entry(aid, body)
    for aid, body in aliases.items():
        if body["target"] not in models:
            raise ValueError(f"{source}: alias {aid} targets unknown model {body['target']}")
    unsourced = {k: v for k, v in hub["unsourced"].items() if k not in models and k not in aliases}
    hub_bytes = Path(hub_configs).read_bytes() if Path(hub_configs).exists() else b""
    return {
        "schema_version": 1,
        "generated_by": "python -m fitting.data.build_registry",
        "source": "../shared/data/model_configs.yaml + fitting/data/hub_configs.yaml",
        "source_sha256": hashlib.sha256(raw_bytes).hexdigest(),
        "hub_configs_sha256": hashlib.sha256(hub_bytes).hexdigest(),
        "models": models,
        "aliases": aliases,
        "unsourced": unsourced,
    }


def add_model(model: str, *, model_id: str | None = None, ref: str | None = None, note: str | None = None,
              offline: bool | None = None, hub_configs: Path = HUB_CONFIGS, today: str | None = None) -> str:
    """Append a model to ``hub_configs`` from a local checkpoint folder / config.json or a Hub id.

    Parameters
    ----------
    model : str
        A folder with config.json, a config.json path, or a Hub repo id (read through
        ``huggingface_hub``; ``offline`` uses its cache only).
    model_id : str, optional
        Registry id to file it under (default: the Hub id, or the config's ``_name_or_path``
        when that names a repo).
    ref, note : str, optional
        Where the config came from (default: the path or the Hub URL at its commit), and a note.
    today : str, optional
        Retrieval date (ISO); default today.

    Returns
    -------
    str
        The registry id added.

    Raises
    ------
    ValueError
        The id exists already, or no id could be derived.
    """
    local = Path(os.path.expanduser(model))
    if not local.exists() and (model.startswith((".", "/", "~")) or model.endswith(".json") or model.count("/") != 1):
        raise ValueError(f"{model}: no such folder or config.json, and not a Hub id (org/name)")
    resolved = load_local(local, model_id=model_id) if local.exists() else load_hub(model, offline=offline)
    cfg = dict(resolved.config or {})
    mid = model_id or (model if not local.exists() else None)
    if mid is None:
        named = str(cfg.get("_name_or_path") or "")
        if re.fullmatch(r"[\w.\-]+/[\w.\-]+", named):
            mid = named
    if not mid:
        raise ValueError(f"{model}: give --id ORG/NAME (the config does not name its repo)")
    doc = load_hub_configs(hub_configs)
    if mid in doc["models"] or mid in doc["aliases"]:
        raise ValueError(f"{mid} is already in {hub_configs}")
    source_ref = ref or (resolved.entry.sources[0].get("ref") if resolved.entry.sources else str(model))
    body: dict[str, Any] = {
        "verification": "full",
        "retrieved": today or date.today().isoformat(),
        "config_kind": "verbatim config.json",
        "config": cfg,
        "sources": [{"id": "A", "ref": source_ref,
                     "kind": f"config.json read by fitting.data.model_source ({resolved.source})"}],
    }
    if note:
        body["notes"] = [note]
    _hub_model_entry(mid, body)  # fails here, not at the next build, if the config cannot be read
    doc["models"][mid] = body
    doc["unsourced"].pop(mid, None)
    _atomic_write(Path(hub_configs), _HUB_HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    return mid


_HEADER = """\
# GENERATED by `python -m fitting.data.build_registry` from ../shared/data/model_configs.yaml and
# fitting/data/hub_configs.yaml -- do not edit by hand.
# Figures, sources, notes and stated parameter counts are copied unchanged from that file (read its header
# for the source disagreements); `config` holds the architecture keys, `params` the stated counts parsed to
# integers next to their original text. Added here: trust_remote_code (+ reason), native_quantization,
# filled_fields (from the entry's own sources), and the models and aliases marked `added_by`.
"""


def render(doc: dict[str, Any]) -> str:
    """YAML text of a registry document (header comment + safe_dump)."""
    return _HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; package data must be world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """CLI: rebuild (or ``--check``) the packaged registry."""
    parser = argparse.ArgumentParser(prog="python -m fitting.data.build_registry", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="model_configs.yaml to read")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="registry.yaml to write")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if --output is not up to date")
    parser.add_argument("--hub-configs", type=Path, default=HUB_CONFIGS,
                        help="hub_configs.yaml: models added from their own config.json (default: the packaged one)")
    parser.add_argument("--add", metavar="FOLDER_OR_ID",
                        help="add a model from a local checkpoint folder / config.json or a Hugging Face Hub id, then "
                             "rebuild")
    parser.add_argument("--id", dest="model_id", help="registry id for --add (default: the Hub id or _name_or_path)")
    parser.add_argument("--ref", help="where the config came from, for --add (default: the path or Hub URL)")
    parser.add_argument("--note", help="a note recorded with the added model")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="--add from the Hugging Face cache only (no network)")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source}: not found (pass --source)", file=sys.stderr)
        return 2
    if args.add:
        try:
            mid = add_model(args.add, model_id=args.model_id, ref=args.ref, note=args.note, offline=args.offline,
                            hub_configs=args.hub_configs)
        except (ModelSourceError, UnknownModelError, ValueError) as exc:
            print(f"--add {args.add}: {exc}", file=sys.stderr)
            return 2
        print(f"added {mid} to {args.hub_configs}")
    text = render(build_registry(args.source, args.hub_configs))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output}: out of date; run python -m fitting.data.build_registry", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date")
        return 0
    _atomic_write(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
