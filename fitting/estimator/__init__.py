"""The small estimator other tools import: coefficient files in, memory with intervals out.

PLACEHOLDER
"""

from fitting.estimator.core import (
    OUTPUT_COLUMNS,
    SUPPORTED_SCHEMA_VERSIONS,
    CoefficientFileError,
    Estimator,
    FittedTerm,
    Prediction,
    validate_document,
)

__all__ = ["Estimator", "Prediction", "FittedTerm", "CoefficientFileError", "validate_document",
           "SUPPORTED_SCHEMA_VERSIONS", "OUTPUT_COLUMNS"]
