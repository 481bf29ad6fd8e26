"""The vectorised DataFrame path of :meth:`fitting.estimator.Estimator.predict`: one row per
configuration, rows grouped by (model, dtype, quantization, KV dtype), one vectorised call
per group."""

from __future__ import annotations

import math

import numpy as np

from fitting.estimator.inputs import NUMERIC_KEYS

__all__ = ["predict_frame"]


def predict_frame(est, frame, kw, alpha, gpu_memory_gib, gpu_memory_utilization, as_frame):
    """One row per configuration; rows grouped by (model, dtype, quantization, KV dtype),
    each group one vectorised call."""
    import pandas as pd  # lazy: pandas adds ~0.4 s to a cold start; only DataFrame input needs it

    if "model" not in frame.columns:
        raise ValueError("the configurations DataFrame needs a 'model' column")
    num_cols = [k for k in NUMERIC_KEYS if k in frame.columns]
    str_cols = [k for k in ("dtype", "quantization", "kv_cache_dtype") if k in frame.columns]
    for k in num_cols:
        if frame[k].isna().any():
            raise ValueError(f"column {k!r} has missing values (give a value in every row or drop the column)")
    n = len(frame)
    results, warn_all = {}, []
    groups = frame.groupby(["model"] + str_cols, sort=False, dropna=False).indices
    for key, pos in groups.items():
        key = key if isinstance(key, tuple) else (key,)
        args = dict(kw)
        for k, v in zip(str_cols, key[1:]):
            args[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
        for k in num_cols:
            args[k] = frame[k].to_numpy()[pos]
        out, msgs, _, _, name, _ = est.predict_arrays(key[0], args, alpha, gpu_memory_gib, gpu_memory_utilization)
        for k, v in out.items():
            if k not in results:
                results[k] = np.empty(n, dtype=bool if v.dtype == bool else float)
            results[k][pos] = v
        warn_all.extend(f"{name}: {m}" for m in msgs)
    if as_frame is False:
        return results
    extra = pd.DataFrame(results, index=frame.index)
    out = pd.concat([frame, extra.drop(columns=[c for c in extra.columns if c in frame.columns])], axis=1)
    out.attrs.update({"framework": est.framework, "params_version": est.version, "alpha": alpha,
                      "warnings": list(dict.fromkeys(warn_all))})
    return out
