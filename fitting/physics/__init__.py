"""Exact physics: architectures, parameter counts, weight formats, and memory in bytes.

The bottom layer of the package. ``architecture`` holds the :class:`Architecture` value type
read from a model's config, ``parameters`` counts its tensors, ``quantization`` gives the
bits per weight of every weight format and KV dtype, and ``memory`` turns them into bytes
per GPU: weights, KV cache and first-order activations, numpy-broadcastable in the workload.
Pure functions only: no I/O, no fitting, no other layer of the package is imported here.
The public physics functions are re-exported, so ``fitting.physics.kv_bytes_per_token``
works as well as ``fitting.physics.memory.kv_bytes_per_token``.
"""

from fitting.physics.architecture import Architecture, ArchitectureError
from fitting.physics.memory import (
    activation_bytes,
    kv_bytes_per_token,
    kv_bytes_per_token_split,
    kv_cache_bytes,
    weight_bytes_per_gpu,
    weight_bytes_per_stage,
)
from fitting.physics.parameters import ParameterCount, count_parameters
from fitting.physics.quantization import weight_format

__all__ = ["Architecture", "ArchitectureError", "ParameterCount", "activation_bytes", "count_parameters",
           "kv_bytes_per_token", "kv_bytes_per_token_split", "kv_cache_bytes", "weight_bytes_per_gpu",
           "weight_bytes_per_stage", "weight_format"]
