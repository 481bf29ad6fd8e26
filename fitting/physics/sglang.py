"""What SGLang allocates outside its static budget: the reserve ``(1 - mem_fraction_static)``.

SGLang sizes its KV pool so that the weights and the pool fill ``mem_fraction_static`` of the
memory free before the weights load (``_profile_available_bytes``: ``rest = free_after_load -
free_before_load x (1 - mem_fraction_static)``, ``model_executor/model_runner_kv_cache_mixin.py``
@0.5.11; ``profile_max_num_token`` in ``model_runner.py`` @0.5.6). Everything allocated after
the pool must fit in the rest, ``(1 - mem_fraction_static) x free_before_load``. This module
gives source-derived sizes of those later allocations, per GPU:

1. the attention backend's set-up before graph capture (:func:`attention_backend_init_bytes`),
2. the decode CUDA graphs (:func:`decode_graph_bytes`),
3. the piecewise prefill CUDA graphs, on by default for text models from 0.5.11
   (:func:`piecewise_graph_bytes`, :func:`piecewise_max_tokens_default`),
4. the run-time peaks: one chunked-prefill forward (:func:`prefill_activation_bytes`) and the
   sampler (:func:`sampler_bytes`),

summed by :func:`reserve_needed_bytes`; :func:`default_attention_backend` picks the backend
SGLang chooses on a GPU.

Sources: the wheels of sglang 0.4.3.post4, 0.4.9, 0.5.6, 0.5.11 and 0.5.23 and of
flashinfer-python 0.6.8.post1 (the pin of sglang 0.5.11); citations are ``path:line@version``
relative to ``sglang/srt/``. SGLang prints "GB" but divides by ``1 << 30``
(``get_available_gpu_memory``, ``utils/common.py:491-518@0.5.6``): GiB.

No constant here is fitted. Against the six usable public starts that print their decode
CUDA-graph memory (``tests/test_sglang_physics.py``) the decode-graph physics with SGLang's own
8 MiB per graph lies between -43 % and +61 % of the printed figure (0.4.3 on PCIe L4 at tp 4
and a Triton-attention build are the extremes); the driver memory of each instantiated graph
has no figure in the source and varies between about 2 and 39 MiB per graph in the logs.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from fitting.physics.architecture import Architecture
from fitting.physics.vllm import forward_activation_bytes, parse_version

__all__ = [
    "SGLANG_RESERVE_VERIFIED", "GRAPH_ERROR_FACTOR", "FLASHINFER_INT_WORKSPACE_BYTES", "FLASHINFER_WORKSPACE_DEFAULT",
    "FLASHINFER_WORKSPACE_QWEN", "SGLANG_NON_TORCH_BYTES_PER_GRAPH", "ReserveParts",
    "attention_backend_init_bytes", "attention_graph_state_bytes", "cuda_graph_capture_sizes",
    "decode_forward_pool_bytes", "decode_graph_bytes", "default_attention_backend",
    "flashinfer_decode_wrapper_bytes", "FA3_DEFAULT_ARCHITECTURES_05", "MODEL_TYPE_ARCHITECTURE", "architecture_names", "graph_input_buffer_bytes", "piecewise_capture_sizes",
    "piecewise_graph_bytes", "piecewise_max_tokens_default", "prefill_activation_bytes",
    "reserve_needed_bytes", "sampler_bytes",
]

#: Newest SGLang release whose graph-capture and pool code these rules were read in (the
#: estimator's default version for them).
SGLANG_RESERVE_VERIFIED = (0, 5, 11)

MiB = 1 << 20
GiB = 1 << 30

# ----------------------------------------------------------------------------- constants (all from source)

#: flashinfer ``BatchDecodeWithPagedKVCacheWrapper.__init__`` allocates an 8 MiB device
#: int workspace per wrapper object (``flashinfer/decode.py:749-751@flashinfer 0.6.8.post1``;
#: same in the prefill wrappers, ``flashinfer/prefill.py:1587-1589``).  SGLang's flashinfer
#: backend creates one new decode wrapper per captured batch size and per wrapper kind
#: (``layers/attention/flashinfer_backend.py:545-560@0.5.6``) and keeps it alive.
FLASHINFER_INT_WORKSPACE_BYTES = 8 * MiB

#: SGLang's shared flashinfer float workspace: 384 MiB default
#: (``environ.py:246@0.5.6`` ``SGLANG_FLASHINFER_WORKSPACE_SIZE``), 512 MiB for
#: Qwen2/Qwen3/MiMo/Qwen3-VL architectures (``layers/attention/flashinfer_backend.py:163-173@0.5.11``;
#: Qwen2 only in ``...:102-104@0.4.3.post4``).  Allocated by ``init_attention_backend``, i.e.
#: after the KV pool and before "Capture cuda graph begin".
FLASHINFER_WORKSPACE_DEFAULT = 384 * MiB
FLASHINFER_WORKSPACE_QWEN = 512 * MiB
_FLASHINFER_BIG_WS_ARCHS = ("Qwen2ForCausalLM", "Qwen3ForCausalLM", "MiMoForCausalLM",
                            "Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration")

#: Vision-tower flashinfer workspace of Qwen3-VL (``layers/attention/vision.py:80@0.5.11``).
VISION_FLASHINFER_WORKSPACE = 128 * MiB

#: SGLang's own figure for the non-torch memory of one captured graph size: "Only calculate
#: the memory overhead for Non-Torch Memory use since the Torch Memory can be reused with Cuda
#: Graph Capture": ``reserved_mem += len(self.piecewise_cuda_graph_tokens) * 8`` MiB
#: (``server_args.py:1457-1461@0.5.11``; ``arg_groups/memory_hook.py:384-386@0.5.23``).  It is
#: stated for piecewise sizes; applying it to decode sizes is this module's assumption
#: (the driver memory of ``cudaGraphInstantiate`` is not in the torch allocator).  Opt-in
#: (``per_graph_bytes``); ``tests/test_sglang_physics.py`` compares it with the logs.
SGLANG_NON_TORCH_BYTES_PER_GRAPH = 8 * MiB

#: The widest ratio between the decode-graph physics (with :data:`SGLANG_NON_TORCH_BYTES_PER_GRAPH`)
#: and a printed "Capture cuda graph end ... mem usage" of the six usable public starts
#: (0.93 GiB printed against 0.53 for QwQ-32B at tp 4 on PCIe L4 cards, 0.4.3;
#: ``tests/test_sglang_physics.py`` checks every start lies within it): the band an answer
#: puts around the CUDA-graph terms. An observed range, not a calibrated interval.
GRAPH_ERROR_FACTOR = 1.8

#: Triton decode attention: default ``max_kv_splits`` (``--triton-attention-num-kv-splits``).
TRITON_MAX_KV_SPLITS = 8


#: The Hugging Face ``architectures`` entry of a model type, for the rules above that SGLang keys
#: on the architecture class (the registry keeps the model type).
MODEL_TYPE_ARCHITECTURE = {
    "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
    "mimo": "MiMoForCausalLM", "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration", "llama": "LlamaForCausalLM",
    "llama4": "Llama4ForConditionalGeneration", "olmo2": "Olmo2ForCausalLM", "gemma2": "Gemma2ForCausalLM",
    "gemma3": "Gemma3ForConditionalGeneration", "mixtral": "MixtralForCausalLM", "glm4_moe": "Glm4MoeForCausalLM",
}


def architecture_names(arch: Architecture) -> tuple[str, ...]:
    """The checkpoint's ``architectures`` (from its config where the registry keeps it, else
    from :data:`MODEL_TYPE_ARCHITECTURE`)."""
    names = tuple((arch.extra or {}).get("architectures") or ())
    if names:
        return names
    name = MODEL_TYPE_ARCHITECTURE.get(str(arch.model_type))
    return (name,) if name else ()


def _ver(version) -> tuple:
    """A release as a comparable tuple; None or unparsable: the newest verified form."""
    if isinstance(version, tuple):
        return version
    v = parse_version(version)
    return SGLANG_RESERVE_VERIFIED if v is None else v


_SM90 = re.compile(r"\b(GH200|H100|H200|H800|H20)\b", re.I)
_SM100 = re.compile(r"\b(GB200|GB300|B200|B300)\b", re.I)


#: Architectures that take FA3 on Hopper by default in 0.5.0-0.5.10
#: (``utils/common.py::is_fa3_default_architecture`` @0.5.6); from 0.5.11 every MHA model does.
FA3_DEFAULT_ARCHITECTURES_05 = frozenset({
    "Qwen2ForCausalLM", "Llama4ForConditionalGeneration", "LlamaForCausalLM", "Olmo2ForCausalLM",
    "Gemma2ForCausalLM", "Gemma3ForConditionalGeneration", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM",
    "Glm4MoeForCausalLM", "Glm4vMoeForConditionalGeneration", "Step3VLForConditionalGeneration"})


def default_attention_backend(gpu_name: str | None, version=None, *, mla: bool = False,
                              attention_sinks: bool = False, architectures: Iterable[str] = ()) -> str:
    """The attention backend SGLang picks when none is given.

    ``ServerArgs._get_default_attn_backend`` (``server_args.py:2480-2530@0.5.11``;
    ``arg_groups/model_override_base.py:277-345@0.5.23``): MHA models take FA3 on Hopper (sm 9.0
    with CUDA >= 12.3), ``trtllm_mha`` on B200/B300-class Blackwell (sm 10.x; RTX PRO 6000 and
    RTX 50 are sm 12.x and take FlashInfer), FlashInfer elsewhere (Triton for models with
    attention sinks); MLA models FA3 on Hopper, FlashInfer on Blackwell, Triton elsewhere. In
    0.5.0-0.5.10 FA3 is the Hopper default only for :data:`FA3_DEFAULT_ARCHITECTURES_05` and
    Blackwell takes FlashInfer (``server_args.py:1293-1325@0.5.6``); 0.4.9 has no FA3 default.

    Examples
    --------
    >>> default_attention_backend("H100-80GB"), default_attention_backend("L40S"), default_attention_backend("B200")
    ('fa3', 'flashinfer', 'trtllm_mha')
    >>> default_attention_backend("H100-80GB", "0.4.9"), default_attention_backend("H100-80GB", "0.5.6", architectures=["LlamaForCausalLM"])
    ('flashinfer', 'fa3')
    """
    v = _ver(version)
    name = str(gpu_name or "")
    hopper = bool(_SM90.search(name))
    blackwell = bool(_SM100.search(name))
    if mla:
        if hopper and v >= (0, 5, 0):
            return "fa3"
        return "flashinfer" if blackwell and v >= (0, 5, 0) else "triton"
    if hopper and (v >= (0, 5, 11) or (v >= (0, 5, 0) and set(architectures) & FA3_DEFAULT_ARCHITECTURES_05)):
        return "fa3"
    if blackwell and v >= (0, 5, 11):
        return "trtllm_mha"
    return "triton" if attention_sinks else "flashinfer"


def piecewise_max_tokens_default(version=None, *, chunked_prefill_size: int, mla: bool = False,
                                 multimodal: bool = False, pp: int = 1, lora: bool = False,
                                 max_total_tokens: int | None = None) -> int | None:
    """Tokens of the largest piecewise prefill CUDA graph SGLang captures by default (None: off).

    From 0.5.11 piecewise graphs are on unless ``_handle_piecewise_cuda_graph`` turns them off
    (``server_args.py:1194-1261@0.5.11``: multimodal models, pipeline parallelism, LoRA, data-
    parallel attention, torch.compile, GGUF, CPU offload, ...); their largest size is
    ``chunked_prefill_size``, 2048 for MLA models, capped by ``max_total_tokens``
    (``server_args.py:1407-1421@0.5.11``). In 0.5.6 they are opt-in
    (``enable_piecewise_cuda_graph: bool = False``, ``server_args.py:508``).

    >>> piecewise_max_tokens_default("0.5.11", chunked_prefill_size=8192), piecewise_max_tokens_default("0.5.6", chunked_prefill_size=8192)
    (8192, None)
    """
    if _ver(version) < (0, 5, 11) or multimodal or pp > 1 or lora:
        return None
    t = 2048 if mla else int(chunked_prefill_size)
    return min(t, int(max_total_tokens)) if max_total_tokens else t


# ----------------------------------------------------------------------------- capture lists

def cuda_graph_capture_sizes(cuda_graph_max_bs: int, *, version=None, speculative: bool = False,
                             disable_padding: bool = False, max_running_requests: int | None = None,
                             gpu_memory_mib: float | None = None) -> list[int]:
    """Decode CUDA-graph batch sizes SGLang captures.

    Parameters
    ----------
    cuda_graph_max_bs : int
        As resolved by ``_handle_gpu_memory_settings`` (``server_args.py:701-810@0.5.6``:
        by GPU tier and tp, e.g. 256 for tp<4 on 60-160 GiB, 24 for tp<4 below 35 GiB).
    version : str, optional
        SGLang version; None for the newest form.
    speculative, disable_padding : bool
    max_running_requests : int, optional
        ``req_to_token_pool.size``; sizes above it are dropped and the pool size itself is
        added (``model_executor/cuda_graph_runner.py:193-208@0.5.6``).
    gpu_memory_mib : float, optional
        Only for 0.4.5-0.4.9, whose default list grows past 160 on >90 GiB GPUs.

    Returns
    -------
    list of int
        Sorted, unique.

    Notes
    -----
    * >= 0.5.x: ``[1, 2, 4, 8, 12] + range(16, 257, 8) + range(272, 512, 16) +
      range(512, max_bs + 1, 32)`` filtered to ``<= max_bs``
      (``server_args.py:871-899@0.5.6``); 0.5.11 also appends ``max_bs`` itself if missing
      (``server_args.py:1497-1527@0.5.11``).  Speculative: ``range(1, 9) + range(10, 33, 2)
      + range(40, 65, 4) + range(72, 257, 8) + range(272, max_bs+1, 16)``.
    * 0.4.9: ``[1, 2, 4, 8] + range(16, 161, 8)`` (+ ``range(160, 257, 8)`` above 90 GiB),
      then ``<= cuda_graph_max_bs`` with ``range(max, max_bs+1, 16)`` appended
      (``model_executor/cuda_graph_runner.py:138-181@0.4.9``).
    * 0.4.3.post4: ``[1, 2, 4] + [8 i for i in 1..20]`` (``cuda_graph_runner.py:109-149``).

    Examples
    --------
    >>> cuda_graph_capture_sizes(24, version="0.5.6")
    [1, 2, 4, 8, 12, 16, 24]
    >>> len(cuda_graph_capture_sizes(256, version="0.5.11"))
    36
    >>> cuda_graph_capture_sizes(80, version="0.4.3.post4")[-3:]
    [64, 72, 80]
    """
    v = _ver(version)
    mb = int(cuda_graph_max_bs)
    if v < (0, 4, 5):
        if disable_padding:
            bs = list(range(1, 33)) + [64, 96, 128, 160]
        elif speculative:
            bs = list(range(1, 33))
        else:
            bs = [1, 2, 4] + [i * 8 for i in range(1, 21)]
        if max_running_requests is not None and max(bs) > max_running_requests:
            bs += [max_running_requests - 1, max_running_requests]
        bs = [b for b in bs if b <= mb]
    elif v < (0, 5, 0):
        if disable_padding:
            bs = list(range(1, 33)) + list(range(48, 161, 16))
        elif speculative:
            bs = list(range(1, 9)) + list(range(10, 33, 2)) + list(range(40, 64, 8)) + list(range(80, 161, 16))
        else:
            bs = [1, 2, 4, 8] + list(range(16, 161, 8))
        if gpu_memory_mib is not None and gpu_memory_mib > 90 * 1024:
            bs += list(range(160, 257, 8))
        if max_running_requests is not None and max(bs) > max_running_requests:
            bs += [max_running_requests]
        bs = [b for b in bs if b <= mb]
        if max(bs) < mb:
            bs += list(range(max(bs), mb + 1, 16))
    else:
        if disable_padding:
            bs = list(range(1, mb + 1))
        elif speculative:
            bs = (list(range(1, 9)) + list(range(10, 33, 2)) + list(range(40, 65, 4))
                  + list(range(72, 257, 8)) + list(range(272, mb + 1, 16)))
        else:
            bs = [1, 2, 4, 8, 12] + list(range(16, 257, 8)) + list(range(272, 512, 16)) + list(range(512, mb + 1, 32))
        bs = [b for b in bs if b <= mb]
        if v >= (0, 5, 11) and mb not in bs:
            bs.append(mb)
        if max_running_requests is not None and max(bs) > max_running_requests:
            bs.append(max_running_requests)
    if max_running_requests is not None:
        bs = [b for b in bs if b <= max_running_requests]
    return sorted(set(bs))


def piecewise_capture_sizes(max_tokens: int, *, version=None) -> list[int]:
    """Token counts of the piecewise (prefill) CUDA graphs.

    ``_generate_piecewise_cuda_graph_tokens``: 0.5.11 ``range(4, 33, 4) + range(48, 257, 16)
    + range(288, 513, 32) + range(576, 1025, 64) + range(1280, 4097, 256) +
    range(4608, max+1, 512)`` (``server_args.py:1550-1568@0.5.11``); 0.5.6 has
    ``range(640, 4097, 128) + range(4352, max+1, 256)`` for the tail
    (``server_args.py:901-920@0.5.6``).  ``piecewise_cuda_graph_max_tokens`` defaults to
    ``chunked_prefill_size`` (``server_args.py:1412@0.5.11``).

    Examples
    --------
    >>> s = piecewise_capture_sizes(8192, version="0.5.11"); len(s), s[-1]
    (58, 8192)
    """
    v = _ver(version)
    m = int(max_tokens)
    s = list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32))
    if v >= (0, 5, 11):
        s += list(range(576, 1025, 64)) + list(range(1280, 4097, 256)) + list(range(4608, m + 1, 512))
    else:
        s += list(range(640, 4097, 128)) + list(range(4352, m + 1, 256))
    return [x for x in s if x <= m]


# ----------------------------------------------------------------------------- components

def graph_input_buffer_bytes(max_bs: int, hidden_size: int, vocab_size: int, *, dtype_bytes: int = 2,
                             version=None, num_tokens_per_bs: int = 1) -> int:
    """Static input/output buffers of the decode graph runner (torch allocator, not the pool).

    ``GraphInputBuffers.create`` (``model_executor/input_buffers.py:48-66@0.5.6``):
    ``next_token_logits_buffer`` fp32 ``(max_num_token, vocab)``, ``input_embeds``
    ``(max_num_token, hidden)`` in the model dtype, five int64/int32 vectors and
    ``mrope_positions`` (3 x int64), ``custom_mask`` bool.  0.4.x has no logits / embeds
    buffer (``cuda_graph_runner.py:272-324@0.4.9``).
    """
    T = int(max_bs) * int(num_tokens_per_bs)
    small = T * (8 + 8 + 8 + 3 * 8) + int(max_bs) * (4 + 4) + T  # ids, out_cache_loc, positions, mrope, indices, seq_lens, mask
    if _ver(version) < (0, 5, 0):
        return small
    return small + T * int(vocab_size) * 4 + T * int(hidden_size) * int(dtype_bytes)


def attention_graph_state_bytes(backend: str, max_bs: int, context_len: int, *, heads_per_rank: int = 0,
                                v_head_dim: int = 128, num_wrappers: int = 1, skip_prefill: bool = False,
                                page_size: int = 1) -> int:
    """``attn_backend.init_cuda_graph_state(max_bs, ...)`` buffers (torch allocator).

    * flashinfer: ``cuda_graph_kv_indices`` int32 ``max_bs x context_len`` per wrapper, plus
      ``cuda_graph_custom_mask`` uint8 ``max_bs x context_len`` unless ``skip_prefill``
      (``layers/attention/flashinfer_backend.py:504-535@0.5.6``; ``:251-273@0.4.3.post4``).
    * triton: ``cuda_graph_kv_indices`` int64 ``max_bs x context_len``, custom mask uint8 same
      size, ``attn_logits`` fp32 ``(max_bs, heads, max_kv_splits, v_head_dim)`` and
      ``attn_lse`` (``layers/attention/triton_backend.py:431-470@0.5.6``).
    * fa3: ``page_table`` int32 ``max_bs x ceil(context_len / page)`` (``flashattention_backend.py:1274-1300@0.5.6``).
    ``context_len`` is the model's (or ``--context-length``), not the request length.
    """
    B, C = int(max_bs), int(context_len)
    b = backend.lower()
    if b.startswith("flashinfer"):
        return num_wrappers * B * C * 4 + (0 if skip_prefill else B * C)
    if b.startswith("triton"):
        logits = B * heads_per_rank * TRITON_MAX_KV_SPLITS * (v_head_dim + 1) * 4
        return B * C * 8 + (0 if skip_prefill else B * C) + logits
    if b in ("fa3", "flashattention", "fa4"):
        return B * math.ceil(C / max(page_size, 1)) * 4
    return 0


def flashinfer_decode_wrapper_bytes(num_capture_sizes: int, *, num_wrappers: int = 1) -> int:
    """8 MiB per decode wrapper object, one per captured size (:data:`FLASHINFER_INT_WORKSPACE_BYTES`)."""
    return int(num_capture_sizes) * int(num_wrappers) * FLASHINFER_INT_WORKSPACE_BYTES


def decode_forward_pool_bytes(arch: Architecture, capture_sizes: Sequence[int], *, tp: int = 1,
                              dtype_bytes: int = 2, version=None) -> float:
    """Bytes the shared CUDA-graph memory pool keeps after capturing all decode graphs.

    Mechanism (no closed form in the source): all sizes are captured largest first into one
    private pool (``cuda_graph_runner.py:454-500, 695-701@0.5.6``: "Capture the large shapes
    first so that the smaller shapes can reuse the memory pool"), so the pool holds the
    peak working set of the largest batch plus every graph's still-live outputs.

    * working set: the larger of one layer's intermediates
      (:func:`fitting.physics.vllm.forward_activation_bytes` at ``max_bs`` tokens; decode has
      no per-layer state) and the logits stage ``bs x vocab/tp`` (+ ``bs x vocab`` gathered
      when tp > 1) in the model dtype;
    * outputs: from 0.5.x the logits are copied into the static fp32
      ``next_token_logits_buffer`` (``layers/logits_processor.py:986-995@0.5.11``), so no
      per-graph output; in 0.4.x ``logits[:, :vocab].float()``
      (``layers/logits_processor.py:439@0.4.3.post4``) is each graph's output, alive for
      the life of the graph: ``sum(bs) x vocab x 4``.
    """
    sizes = sorted(int(s) for s in capture_sizes)
    B = sizes[-1]
    V = float(arch.vocab_size)
    b = float(dtype_bytes)
    layer = float(forward_activation_bytes(arch, B, tp=tp, dtype_bytes=dtype_bytes))
    logits = B * (V / tp) * b + (B * V * b if tp > 1 else 0.0) + B * arch.hidden_size * b
    pool = max(layer, logits)
    if _ver(version) < (0, 5, 0):
        pool += sum(sizes) * V * 4.0
    return pool


def decode_graph_bytes(arch: Architecture, cuda_graph_max_bs: int | None = None, *, capture_sizes=None,
                       tp: int = 1, dtype_bytes: int = 2, backend: str = "flashinfer",
                       context_len: int | None = None, version=None, num_wrappers: int = 1,
                       per_graph_bytes: float = 0.0, pool_shared_with_larger: bool = False,
                       breakdown: bool = False):
    """The "Capture cuda graph end ... mem usage=X GB" figure (free-memory delta).

    Sum of :func:`graph_input_buffer_bytes`, :func:`attention_graph_state_bytes`,
    :func:`flashinfer_decode_wrapper_bytes` (flashinfer only) and
    :func:`decode_forward_pool_bytes`.  The delta is measured with ``empty_cache()`` before
    ``mem_get_info`` (``model_runner.py:2429-2446@0.5.6``), so eager warm-up memory
    (``run_once`` twice before each capture) is returned and not counted.

    Not included (no source figure): the driver memory of the instantiated graphs
    (``cudaGraphInstantiate``), cuBLAS workspaces of the capture stream, the caching
    allocator's 2 MiB / 20 MiB block rounding inside the pool.

    Parameters
    ----------
    arch : Architecture
    cuda_graph_max_bs : int, optional
        Used with ``version`` to build the capture list if ``capture_sizes`` is not given.
    capture_sizes : sequence of int, optional
        The printed "Capture cuda graph bs [...]" list.
    tp : int
    dtype_bytes : int
    backend : {'flashinfer', 'triton', 'fa3'}
    context_len : int
        Model context length (``max_context_len`` of the backend); default the arch's.
    version : str
    per_graph_bytes : float, default 0
        Non-torch bytes per captured size; :data:`SGLANG_NON_TORCH_BYTES_PER_GRAPH` is
        SGLang's own figure.
    pool_shared_with_larger : bool
        True when a larger prefill graph was captured first into the same global pool
        (newer "target prefill" then "target decode" order): the decode working set then
        reuses the pool and adds nothing.
    breakdown : bool
        Return a dict of components instead of the sum.
    """
    if capture_sizes is None:
        capture_sizes = cuda_graph_capture_sizes(cuda_graph_max_bs, version=version)
    sizes = sorted(int(s) for s in capture_sizes)
    B = sizes[-1]
    ctx = int(context_len or arch.max_position_embeddings or 32768)
    heads = math.ceil(arch.num_attention_heads / tp)
    parts = {
        "input_buffers": graph_input_buffer_bytes(B, arch.hidden_size, arch.vocab_size, dtype_bytes=dtype_bytes,
                                                  version=version),
        "attn_graph_state": attention_graph_state_bytes(backend, B, ctx, heads_per_rank=heads,
                                                        v_head_dim=arch.head_dim, num_wrappers=num_wrappers),
        "flashinfer_wrappers": (flashinfer_decode_wrapper_bytes(len(sizes), num_wrappers=num_wrappers)
                                if backend.lower().startswith("flashinfer") else 0),
        "graph_pool": (0.0 if pool_shared_with_larger else
                       decode_forward_pool_bytes(arch, sizes, tp=tp, dtype_bytes=dtype_bytes, version=version)),
        "non_torch_per_graph": float(per_graph_bytes) * len(sizes),
    }
    return parts if breakdown else float(sum(parts.values()))


def attention_backend_init_bytes(backend: str, *, architectures: Iterable[str] = (), multimodal_flashinfer: bool = False,
                                 max_running_requests: int = 0, skip_prefill: bool = False) -> int:
    """Allocated between "Memory pool end" and "Capture cuda graph begin".

    flashinfer: the shared float workspace (:data:`FLASHINFER_WORKSPACE_DEFAULT` or
    :data:`FLASHINFER_WORKSPACE_QWEN`), the 8 MiB int workspaces of the eager prefill
    (ragged + paged) and decode wrappers (``flashinfer_backend.py:196-260@0.5.11``), and the
    ``kv_indptr``/``qo_indptr`` vectors of ``max_running_requests + 1`` int32.  Triton:
    small metadata only.  ``multimodal_flashinfer``: Qwen3-VL vision workspace.
    """
    b = backend.lower()
    if b.startswith("flashinfer"):
        ws = FLASHINFER_WORKSPACE_QWEN if any(a in _FLASHINFER_BIG_WS_ARCHS for a in architectures) \
            else FLASHINFER_WORKSPACE_DEFAULT
        wrappers = (1 if skip_prefill else 3) * FLASHINFER_INT_WORKSPACE_BYTES
        out = ws + wrappers + 3 * (max_running_requests + 1) * 4
    else:
        out = 0
    if multimodal_flashinfer:
        out += VISION_FLASHINFER_WORKSPACE
    return int(out)


def piecewise_graph_bytes(arch: Architecture, max_tokens: int, *, tp: int = 1, dtype_bytes: int = 2,
                          num_sizes: int = 0, per_graph_bytes: float = 0.0) -> float:
    """Piecewise prefill CUDA graphs ("Capture piecewise CUDA graph end ... mem usage=").

    Mechanism: the piecewise runner captures the torch.compile'd language model (attention
    run between the pieces) for every size of :func:`piecewise_capture_sizes`, largest
    first, into the same global graph pool as the decode graphs
    (``model_executor/piecewise_cuda_graph_runner.py:298-336@0.5.11``), plus static input
    buffers sized ``max_num_tokens`` (``:236-276``).  The pool holds one layer's working set at
    ``max_tokens`` (:func:`fitting.physics.vllm.forward_activation_bytes`); logits are not in
    the captured part.  SGLang's own reserve adds only 8 MiB per captured size
    (``server_args.py:1461@0.5.11``).
    """
    T = int(max_tokens)
    buffers = T * (8 + 8 + 8) + T * int(arch.hidden_size) * int(dtype_bytes)  # ids, out_cache_loc, positions, embeds
    return float(forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes)) + buffers \
        + float(per_graph_bytes) * int(num_sizes)


def prefill_activation_bytes(arch: Architecture, chunked_prefill_size: int, *, tp: int = 1, dtype_bytes: int = 2,
                             num_seqs: int = 1, return_logprob: bool = False) -> float:
    """Peak of one eager extend forward of ``chunked_prefill_size`` tokens (per GPU).

    Layer working set: :func:`fitting.physics.vllm.forward_activation_bytes` (the KV pool
    exists, so attention writes to it; no per-layer state otherwise).  Logits: without
    logprobs only the last token of each sequence is kept (``_get_pruned_states``,
    ``layers/logits_processor.py:404-452@0.5.11``), so ``num_seqs x vocab`` in the model
    dtype plus its fp32 copy (``logits[:, :vocab].float()``, ``:995``); with
    ``return_logprob`` (input logprobs) all ``T`` rows: ``T x vocab x (dtype + 4)`` plus
    the fp32 log-softmax.
    """
    T = int(chunked_prefill_size)
    V = float(arch.vocab_size)
    layer = float(forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes))
    rows = T if return_logprob else int(num_seqs)
    gathered = V * dtype_bytes if tp > 1 else 0.0
    logits = rows * (V / tp * dtype_bytes + gathered + V * 4 + (V * 4 if return_logprob else 0.0))
    return max(layer, logits + T * arch.hidden_size * dtype_bytes)


def sampler_bytes(num_rows: int, vocab_size: int, *, sampling_backend: str = "flashinfer") -> float:
    """Transient bytes of ``Sampler.forward`` beyond the fp32 logits it receives.

    ``logits.div_(temperatures)`` in place, ``logits[:] = torch.softmax(logits)`` makes one
    fp32 temporary (``layers/sampler.py:161-164@0.5.11``); the pytorch backend's
    ``probs.sort`` adds fp32 values + int64 indices (``sampler.py:468``).  Greedy batches
    take ``argmax`` only (``:112-113``).
    """
    per = 4 + (12 if sampling_backend == "pytorch" else 0)
    return float(num_rows) * float(vocab_size) * per


@dataclass(frozen=True)
class ReserveParts:
    """What SGLang allocates after its KV pool, bytes per GPU (:func:`reserve_needed_bytes`).

    Attributes
    ----------
    attn_init, decode_graphs, piecewise_graphs : float
        Permanent: the attention backend's workspaces, the decode CUDA graphs (with SGLang's
        8 MiB per graph) and the piecewise prefill graphs.
    runtime_peak : float
        The larger of one eager chunked prefill (0 where the piecewise graphs cover it) and an
        eager sampler batch.
    backend : str
    decode_capture_sizes : int
        Number of decode graphs.
    piecewise_max_tokens : int or None
    """

    attn_init: float
    decode_graphs: float
    piecewise_graphs: float
    runtime_peak: float
    backend: str
    decode_capture_sizes: int
    piecewise_max_tokens: int | None

    @property
    def total(self) -> float:
        return self.attn_init + self.decode_graphs + self.piecewise_graphs + self.runtime_peak

    @property
    def graphs(self) -> float:
        """The CUDA-graph terms (the uncertain part: no source figure for the driver memory)."""
        return self.decode_graphs + self.piecewise_graphs


def reserve_needed_bytes(arch: Architecture, *, chunked_prefill_size: int, cuda_graph_max_bs: int | None,
                         tp: int = 1, dtype_bytes: int = 2, backend: str = "flashinfer", context_len: int | None = None,
                         version=None, piecewise_max_tokens: int | None = None, max_running_requests: int = 0,
                         architectures: Iterable[str] = (), multimodal_flashinfer: bool = False,
                         sampling_backend: str = "flashinfer", num_wrappers: int = 1,
                         per_graph_bytes: float = SGLANG_NON_TORCH_BYTES_PER_GRAPH) -> ReserveParts:
    """What the reserve must hold for SGLang to capture its graphs and run its first full prefill.

    ``attn_init`` (attention backend) + decode graphs + piecewise graphs (if enabled) are
    permanent; the run-time peak is the larger of one chunked prefill (eager; nothing extra if
    the piecewise graphs cover ``chunked_prefill_size``, whose activations live in the graph
    pool) and the sampler over ``max(cuda_graph_max_bs, 1)`` rows with their fp32 logits.
    Compare :attr:`ReserveParts.total` with ``(1 - mem_fraction_static) x`` the memory free
    before the weights load.

    Parameters
    ----------
    arch : Architecture
    chunked_prefill_size, cuda_graph_max_bs : int
        As SGLang resolves them (``fitting.data.frameworks.sglang_default_mem_fraction_static``
        gives the tier defaults); ``cuda_graph_max_bs`` None or 0: CUDA graphs off.
    tp, dtype_bytes : int
    backend : str
        Attention backend (:func:`default_attention_backend`).
    context_len : int, optional
        ``--context-length`` (default the model's): sizes the attention graph state.
    version : str, optional
    piecewise_max_tokens : int, optional
        Largest piecewise graph (:func:`piecewise_max_tokens_default`); None: off.
    max_running_requests : int
    architectures : iterable of str
        The checkpoint's ``architectures`` (Qwen2/Qwen3 take a 512 MiB FlashInfer workspace).
    multimodal_flashinfer : bool
    sampling_backend : {"flashinfer", "pytorch"}
    num_wrappers : int
        FlashInfer wrappers per batch: 2 for models with sliding-window layers
        (``flashinfer_backend.py:150-161@0.5.11``), else 1.
    per_graph_bytes : float
        Non-torch bytes per captured graph (SGLang's own 8 MiB figure).

    Returns
    -------
    ReserveParts
    """
    init = attention_backend_init_bytes(backend, architectures=architectures, multimodal_flashinfer=multimodal_flashinfer,
                                        max_running_requests=max_running_requests)
    sizes = cuda_graph_capture_sizes(cuda_graph_max_bs, version=version) if cuda_graph_max_bs else []
    decode = (decode_graph_bytes(arch, capture_sizes=sizes, tp=tp, dtype_bytes=dtype_bytes, backend=backend,
                                 context_len=context_len, version=version, num_wrappers=num_wrappers,
                                 per_graph_bytes=per_graph_bytes)
              if sizes else 0.0)
    piecewise = (piecewise_graph_bytes(arch, piecewise_max_tokens, tp=tp, dtype_bytes=dtype_bytes,
                                       num_sizes=len(piecewise_capture_sizes(piecewise_max_tokens, version=version)),
                                       per_graph_bytes=per_graph_bytes)
                 if piecewise_max_tokens else 0.0)
    covered = bool(piecewise_max_tokens) and piecewise_max_tokens >= chunked_prefill_size
    prefill = 0.0 if covered else prefill_activation_bytes(arch, chunked_prefill_size, tp=tp, dtype_bytes=dtype_bytes)
    rows = max(cuda_graph_max_bs or 1, 1)
    samp = sampler_bytes(rows, arch.vocab_size, sampling_backend=sampling_backend) + rows * arch.vocab_size * 4.0
    return ReserveParts(float(init), float(decode), float(piecewise), float(max(prefill, samp)), backend, len(sizes),
                        int(piecewise_max_tokens) if piecewise_max_tokens else None)
