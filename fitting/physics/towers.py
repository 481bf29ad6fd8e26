"""Parameters of a multimodal model's vision tower and projector, from its ``vision_config``.

A vision-language checkpoint holds the language model (the rest of the physics) plus a vision
encoder and a projector into the language model's width; an engine that serves images loads
them onto the GPU beside the language model (vLLM, SGLang, TGI; not with vLLM's
``--language-model-only``, nor llama.cpp, whose tower is a separate ``mmproj`` file). The
families here are counted from their module definitions in transformers (the parameter names
of the checkpoints), exactly:

* **Qwen2-VL** (``qwen2_vl``; ``Qwen2VisionTransformerPretrainedModel``): a Conv3d patch
  embedding without bias ``3 x t x p x p -> d``, ``depth`` blocks of LayerNorm, fused qkv and
  output projections with bias, LayerNorm and a ``d -> mlp_ratio d -> d`` MLP with bias, and
  the patch merger (LayerNorm over ``d``, ``m^2 d -> m^2 d -> h_LM`` with bias, ``m`` the
  spatial merge). Qwen2-VL-2B: 665,271,296 (2,208,985,600 in all); 7B: 675,759,104
  (8,291,375,616).
* **Qwen2.5-VL** (``qwen2_5_vl``; ``Qwen2_5_VisionTransformerPretrainedModel``): the same
  with RMSNorms (weight only) and a SwiGLU MLP ``d -> I`` (gate, up) ``-> d``, all with bias;
  the merger maps to ``out_hidden_size``. Qwen2.5-VL-7B: 676,550,144 (8,292,166,656 in all).
* **Qwen3-VL** (``qwen3_vl``, ``qwen3_vl_moe``; ``Qwen3VLVisionModel``) and the Qwen3.5
  family's tower (``qwen3_5``, ``qwen3_5_moe``): a Conv3d patch embedding with bias, learned
  position embeddings (``num_position_embeddings`` x ``d``), ``depth`` blocks of LayerNorm,
  qkv and output projections with bias, LayerNorm and a ``d -> I -> d`` MLP with bias, the
  merger (LayerNorm over ``d``, ``m^2 d -> m^2 d -> out_hidden_size``) and, for Qwen3-VL, one
  DeepStack merger per ``deepstack_visual_indexes`` entry (LayerNorm over ``m^2 d``, same
  MLP). Qwen3-VL-30B-A3B: 538,631,408 (31,070,754,032 in all); Qwen3.8-27B: 460,730,096
  (27,356,728,560).
* **CLIP** (``clip_vision_model``, the tower of LLaVA-1.5 and LLaVA-NeXT;
  ``CLIPVisionModel``): patch embedding without bias, class embedding, position embeddings
  for ``(image/patch)^2 + 1`` positions, pre-LayerNorm, ``num_hidden_layers`` encoder
  layers (LayerNorm, q/k/v/out with bias, LayerNorm, ``d -> I -> d`` MLP with bias),
  post-LayerNorm; the projector ``d -> h -> h`` with bias (``LlavaMultiModalProjector``);
  LLaVA-NeXT adds its ``image_newline`` vector (``h``). LLaVA-1.5-7B: 7,063,427,072 in all.
  vLLM builds the encoder only up to the feature layer it uses (``vision_feature_layer`` -2:
  23 of 24 layers, no post-LayerNorm; ``vllm/model_executor/models/llava.py``
  ``_get_num_hidden_layers``): ``loaded="vllm"`` counts that.

Other towers (InternViT, SigLIP of Gemma, the Llama-4 encoder, audio towers)
return None: not modelled, and the callers say so.
"""

from __future__ import annotations

from typing import Any, Mapping

from fitting.physics.architecture import Architecture

__all__ = ["QWEN_VL_MAX_PIXELS", "TOWER_FAMILIES", "max_image_tokens", "tower_bytes_per_gpu", "tower_config",
           "tower_parameters"]

#: Vision-config model types counted here.
TOWER_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "clip_vision_model")

# transformers' config defaults for keys a checkpoint may leave out (Qwen2VLVisionConfig,
# Qwen2_5_VLVisionConfig, CLIPVisionConfig)
_QWEN2_VL_DEFAULTS = {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "in_chans": 3, "patch_size": 14,
                      "spatial_merge_size": 2, "temporal_patch_size": 2}
_QWEN2_5_VL_DEFAULTS = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "in_channels": 3,
                        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
_CLIP_DEFAULTS = {"num_channels": 3}
# Qwen3VLVisionConfig (deepstack_visual_indexes default [8, 16, 24]); the Qwen3.5 tower has no
# DeepStack mergers
_QWEN3_VL_DEFAULTS = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "in_channels": 3, "patch_size": 16,
                      "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304}


def tower_config(arch: Architecture) -> Mapping[str, Any] | None:
    """The ``vision_config`` the registry or the checkpoint's config kept for ``arch`` (None without one)."""
    vc = (arch.extra or {}).get("vision_config")
    return vc if isinstance(vc, Mapping) and vc else None


def _family(arch: Architecture, vc: Mapping[str, Any]) -> str | None:
    t = str(vc.get("model_type") or "")
    if t in TOWER_FAMILIES:
        return t
    # a vision_config without its own type inherits the wrapper's (Qwen2-VL / Qwen2.5-VL)
    if not t and arch.model_type in ("qwen2_vl", "qwen2_5_vl"):
        return arch.model_type
    return None


#: ``max_pixels`` of the image processor Qwen2-VL and Qwen2.5-VL checkpoints ship
#: (``preprocessor_config.json``: 12845056 = 16384 x 28^2); vLLM's processor reads it from there
#: unless ``mm_processor_kwargs`` override it.
QWEN_VL_MAX_PIXELS = 12_845_056


def max_image_tokens(arch: Architecture) -> int | None:
    """Largest number of language-model tokens one image becomes (None where not modelled).

    * Qwen2-VL / Qwen2.5-VL: a square resized to ``max_pixels`` (:data:`QWEN_VL_MAX_PIXELS`),
      in patches of ``p``, merged ``m x m``: ``max_pixels / (p m)^2`` (vLLM
      ``qwen2_vl.py::Qwen2VLProcessingInfo.get_image_size_with_most_features``; 16384 for
      ``p = 14, m = 2``).
    * LLaVA-1.5 (``llava`` with a CLIP tower): ``(image_size / patch_size)^2`` patches, the
      class token dropped (``vision_feature_select_strategy`` "default"; 576 at 336 px).

    Other families (LLaVA-NeXT's tiles, Qwen3-VL's processor, InternVL, Gemma) return None.

    >>> from fitting.data.registry import resolve_model
    >>> max_image_tokens(resolve_model("Qwen/Qwen2.5-VL-7B-Instruct").architecture)
    16384
    """
    vc = tower_config(arch)
    if vc is None:
        return None
    fam = _family(arch, vc)
    if fam in ("qwen2_vl", "qwen2_5_vl"):
        c = {**(_QWEN2_VL_DEFAULTS if fam == "qwen2_vl" else _QWEN2_5_VL_DEFAULTS), **vc}
        side = int(c["patch_size"]) * int(c["spatial_merge_size"])
        return QWEN_VL_MAX_PIXELS // (side * side)
    if fam == "clip_vision_model" and arch.model_type == "llava":
        if (arch.extra or {}).get("vision_feature_select_strategy", "default") != "default":
            return None
        return (int(vc["image_size"]) // int(vc["patch_size"])) ** 2
    return None


def tower_parameters(arch: Architecture, *, loaded: str = "checkpoint") -> int | None:
    """Parameters of the vision tower and projector of ``arch`` (None where not modelled).

    Parameters
    ----------
    arch : Architecture
        A multimodal model whose ``extra["vision_config"]`` names a family in
        :data:`TOWER_FAMILIES` (a Qwen-VL ``vision_config`` without ``model_type`` takes the
        wrapper's).
    loaded : {"checkpoint", "vllm"}
        ``"vllm"``: the CLIP encoder as vLLM builds it, up to ``vision_feature_layer``.

    Returns
    -------
    int or None

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> tower_parameters(resolve_model("Qwen/Qwen2.5-VL-7B-Instruct").architecture)
    676550144
    """
    split = _tower_split(arch, loaded)
    return None if split is None else split[0] + split[1]


def tower_bytes_per_gpu(arch: Architecture, *, dtype_bytes: int = 2, tp: int = 1, loaded: str = "checkpoint"):
    """Bytes of the vision tower and projector on one GPU (None where not modelled).

    The tower is stored unquantized (quantized checkpoints of these models leave the vision
    modules in the model dtype: AWQ/GPTQ quantize the decoder's linear layers, FP8 recipes list
    the tower in ``ignore``), and the engines shard its linear layers over tensor-parallel ranks
    (vLLM's Qwen2-VL / Qwen2.5-VL / CLIP encoders are built from column- and row-parallel
    layers, ``mm_encoder_tp_mode="weights"`` by default); the patch embedding and the norms are
    replicated.

    >>> from fitting.data.registry import resolve_model
    >>> round(tower_bytes_per_gpu(resolve_model("Qwen/Qwen2.5-VL-7B-Instruct").architecture) / 2**30, 3)
    1.26
    """
    split = _tower_split(arch, loaded)
    if split is None:
        return None
    sharded, replicated = split
    return float((sharded / max(int(tp), 1) + replicated) * int(dtype_bytes))


def _tower_split(arch: Architecture, loaded: str) -> tuple[int, int] | None:
    """(parameters sharded over TP ranks, replicated ones) of the tower and projector."""
    vc = tower_config(arch)
    if vc is None:
        return None
    fam = _family(arch, vc)
    if fam == "qwen2_vl":
        c = {**_QWEN2_VL_DEFAULTS, **vc}
        d, m = int(c["embed_dim"]), int(c["spatial_merge_size"])
        mlp = int(c["mlp_ratio"]) * d
        out = int(c.get("hidden_size") or arch.hidden_size)  # the merger's output: the LM width
        norms = int(c["depth"]) * 2 * 2 * d + 2 * d
        linear = int(c["depth"]) * ((d * 3 * d + 3 * d) + (d * d + d) + (d * mlp + mlp) + (mlp * d + d))
        patch = int(c["in_chans"]) * int(c["temporal_patch_size"]) * int(c["patch_size"]) ** 2 * d
        merger = (m * m * d) ** 2 + m * m * d + m * m * d * out + out
        return linear + merger, patch + norms
    if fam == "qwen2_5_vl":
        c = {**_QWEN2_5_VL_DEFAULTS, **vc}
        d, i, m = int(c["hidden_size"]), int(c["intermediate_size"]), int(c["spatial_merge_size"])
        out = int(c.get("out_hidden_size") or arch.hidden_size)
        norms = int(c["depth"]) * 2 * d + d
        linear = int(c["depth"]) * ((d * 3 * d + 3 * d) + (d * d + d) + 2 * (d * i + i) + (i * d + d))
        patch = int(c.get("in_chans") or c["in_channels"]) * int(c["temporal_patch_size"]) * int(c["patch_size"]) ** 2 * d
        merger = (m * m * d) ** 2 + m * m * d + m * m * d * out + out
        return linear + merger, patch + norms
    if fam in ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe"):
        c = {**_QWEN3_VL_DEFAULTS, **vc}
        d, i, m = int(c["hidden_size"]), int(c["intermediate_size"]), int(c["spatial_merge_size"])
        out = int(c.get("out_hidden_size") or arch.hidden_size)
        deep = c.get("deepstack_visual_indexes", (8, 16, 24) if fam.startswith("qwen3_vl") else ())
        md = m * m * d
        merger_mlp = (md * md + md) + (md * out + out)
        linear = int(c["depth"]) * ((d * 3 * d + 3 * d) + (d * d + d) + (d * i + i) + (i * d + d)) \
            + (1 + len(deep)) * merger_mlp
        patch = int(c["in_channels"]) * int(c["temporal_patch_size"]) * int(c["patch_size"]) ** 2 * d + d
        replicated = patch + int(c["num_position_embeddings"]) * d + int(c["depth"]) * 2 * 2 * d + 2 * d \
            + len(deep) * 2 * md
        return linear, replicated
    if fam == "clip_vision_model":
        c = {**_CLIP_DEFAULTS, **vc}
        d, i, p = int(c["hidden_size"]), int(c["intermediate_size"]), int(c["patch_size"])
        layers = int(c["num_hidden_layers"])
        post_norm = 2 * d
        if loaded == "vllm":
            feature_layer = int((arch.extra or {}).get("vision_feature_layer", -1))
            if feature_layer < 0:
                kept = layers + feature_layer + 1
                post_norm = post_norm if kept == layers else 0
                layers = kept
        positions = (int(c["image_size"]) // p) ** 2 + 1
        embeddings = int(c["num_channels"]) * p * p * d + d + positions * d
        h = arch.hidden_size
        linear = layers * (4 * (d * d + d) + (d * i + i) + (i * d + d)) + (d * h + h) + (h * h + h)
        replicated = embeddings + 2 * d + layers * 2 * 2 * d + post_norm
        replicated += h if arch.model_type == "llava_next" else 0  # image_newline
        return linear, replicated
    return None
