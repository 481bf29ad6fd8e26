"""llm-sizer-fit: how much GPU memory an LLM needs under an inference framework.

Exact physics for weights and KV cache, a per-framework overhead fitted by nonlinear
least squares over real profiles, and an estimator with prediction intervals.

Public names are imported lazily so that ``import fitting`` (and the estimator path)
stays light: nothing heavier than numpy is imported until it is used.
"""

from __future__ import annotations

import importlib

from fitting.version import __version__

# public name -> defining module
_EXPORTS = {
    "Architecture": "fitting.physics.architecture",
    "load_registry": "fitting.data.registry",
    "resolve_model": "fitting.data.registry",
    "UnknownModelError": "fitting.data.registry",
    "IncompleteModelError": "fitting.data.registry",
    "ModelEntry": "fitting.data.registry",
    "resolve_any": "fitting.data.model_source",
    "ResolvedModel": "fitting.data.model_source",
    "ModelSourceError": "fitting.data.model_source",
    "weight_format": "fitting.physics.quantization",
    "count_parameters": "fitting.physics.parameters",
    "weight_bytes_per_gpu": "fitting.physics.memory",
    "kv_bytes_per_token": "fitting.physics.memory",
    "kv_cache_bytes": "fitting.physics.memory",
    "activation_bytes": "fitting.physics.memory",
    "weight_bytes_per_stage": "fitting.physics.memory",
    "kv_bytes_per_token_split": "fitting.physics.memory",
    "load_profiles": "fitting.data.profiles",
    "load_profile": "fitting.data.profiles",
    "validate_profile": "fitting.data.profiles",
    "ProfileError": "fitting.data.profiles",
    "write_profile": "fitting.data.profiles",
    "Param": "fitting.stats.nls",
    "NLSModel": "fitting.stats.nls",
    "NLSWarning": "fitting.stats.nls",
    "f_test": "fitting.stats.nested_tests",
    "lr_test": "fitting.stats.nested_tests",
    "Estimator": "fitting.estimator",
    "Prediction": "fitting.estimator",
    "CoefficientFileError": "fitting.estimator",
    "gpu_info": "fitting.data.gpus",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'fitting' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
