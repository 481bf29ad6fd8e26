"""The small estimator other tools import: coefficient files in, memory with intervals out.

:class:`Estimator` reads one coefficient file (``Estimator.from_file``), evaluates the
selected overhead spec with the same formulas the fit used (:mod:`fitting.overhead.specs`)
on exact physics (:mod:`fitting.physics`), and answers with prediction intervals:
:meth:`Estimator.predict` returns a :class:`Prediction` (``summary_frame(alpha)`` in
statsmodels' shape) or a DataFrame for many configurations, and the inverse queries
(``fit_probability``, ``max_batch_size``, ``max_context_len``, ``kv_pool_tokens``,
``min_gpu_memory_utilization``) say what fits on a GPU. Modules: ``coefficient_file``
(reading and checking a file) and ``coefficients`` (building and writing one), ``terms``
(a fitted term as a predictive distribution), ``inputs`` (models and workload settings),
``core`` (the :class:`Estimator`), ``prediction``, ``frame`` (the DataFrame path),
``queries`` (the inverse searches) and ``answer`` (what the CLI prints). This layer imports
physics, data, the spec formulas of ``fitting.overhead.specs`` and the numpy-only
``fitting.stats.intervals``, never the fitting code.
"""

from fitting.estimator.coefficient_file import (
           SUPPORTED_SCHEMA_VERSIONS,
           CoefficientFileError,
           validate_document,
)
from fitting.estimator.core import POOR_PRECISION_RSE, Estimator
from fitting.estimator.prediction import OUTPUT_COLUMNS, SUMMARY_COLUMNS, Prediction
from fitting.estimator.queries import MAX_BATCH_SEARCH, MAX_CONTEXT_SEARCH
from fitting.estimator.terms import FittedTerm

__all__ = ["Estimator", "Prediction", "FittedTerm", "CoefficientFileError", "validate_document",
           "SUPPORTED_SCHEMA_VERSIONS", "OUTPUT_COLUMNS", "SUMMARY_COLUMNS", "MAX_BATCH_SEARCH",
           "MAX_CONTEXT_SEARCH", "POOR_PRECISION_RSE"]
