"""GPU profiling studies: study files, a vLLM runner, a download-free transformers runner, error records.

``python -m fitting.profile studies/batch_scaling.yaml --out profiles/measured/`` expands a
study to scenarios and writes one schema-v1 profile (provenance ``measured``) or one error
record per scenario. torch, transformers, vllm and nvidia-ml-py are imported only inside
the runners; importing this package needs none of them. See ``docs/profiling.md``.
"""

from __future__ import annotations

from fitting.profile.errors import FINAL_KINDS, KINDS, ErrorInfo, classify_error
from fitting.profile.study import (
    Scenario,
    Study,
    StudyError,
    load_study,
    parse_shard,
    parse_study,
    shard,
    with_backend,
)

__all__ = [
    "ErrorInfo",
    "FINAL_KINDS",
    "KINDS",
    "Scenario",
    "Study",
    "StudyError",
    "classify_error",
    "load_study",
    "parse_shard",
    "parse_study",
    "shard",
    "with_backend",
]
