"""llm-sizer-fit: how much GPU memory an LLM needs under an inference framework.

Exact physics for weights and KV cache, a per-framework overhead fitted by nonlinear
least squares over real profiles, and an estimator with prediction intervals.

Public names are imported lazily so that ``import fitting`` (and the estimator path)
stays light: nothing heavier than numpy is imported until it is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> defining module
_EXPORTS = {
    "Architecture": "fitting.architecture",
    "load_registry": "fitting.registry",
    "resolve_model": "fitting.registry",
    "UnknownModelError": "fitting.registry",
    "IncompleteModelError": "fitting.registry",
    "ModelEntry": "fitting.registry",
    "weight_format": "fitting.quantization",
    "count_parameters": "fitting.parameters",
    "weight_bytes_per_gpu": "fitting.physics",
    "kv_bytes_per_token": "fitting.physics",
    "kv_cache_bytes": "fitting.physics",
    "activation_bytes": "fitting.physics",
    "weight_bytes_per_stage": "fitting.physics",
    "kv_bytes_per_token_split": "fitting.physics",
    "load_profiles": "fitting.profiles",
    "load_profile": "fitting.profiles",
    "validate_profile": "fitting.profiles",
    "ProfileError": "fitting.profiles",
    "write_profile": "fitting.profiles",
    "Param": "fitting.nls",
    "NLSModel": "fitting.nls",
    "NLSWarning": "fitting.nls",
    "f_test": "fitting.nls",
    "lr_test": "fitting.nls",
    "Estimator": "fitting.estimator",
    "Prediction": "fitting.estimator",
    "CoefficientFileError": "fitting.estimator",
    "gpu_info": "fitting.gpus",
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
