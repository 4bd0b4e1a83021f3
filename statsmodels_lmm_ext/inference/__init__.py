"""Small-sample inference: the variance model, denominator-df methods, Satterthwaite,
Kenward-Roger, tests of linear hypotheses and one test-result shape.

Layering: ``variance_model``, ``satterthwaite``, ``kenward_roger``, ``ddf``, ``tests`` and
``contrasts`` (the core, below :mod:`statsmodels_lmm_ext.results`) work on a
:class:`VarianceModel`; ``api`` (above :mod:`statsmodels_lmm_ext.adapters`) accepts any results
object.  This ``__init__`` imports the core only; the public functions are in
:mod:`statsmodels_lmm_ext.inference.api`.
"""

from .._warnings import DDFWarning
from .contrasts import AnovaTable, FTest, Inference
from .ddf import DDF_METHODS, DDFMethod, check_ddf
from .tests import ContrastTest, TestResult
from .variance_model import INFORMATION, VarianceModel

__all__ = [
    "DDF_METHODS",
    "INFORMATION",
    "AnovaTable",
    "ContrastTest",
    "DDFMethod",
    "DDFWarning",
    "FTest",
    "Inference",
    "TestResult",
    "VarianceModel",
    "check_ddf",
]
