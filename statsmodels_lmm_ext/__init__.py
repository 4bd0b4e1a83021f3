"""statsmodels_lmm_ext: residual covariance structures, small-sample inference, marginal means
and bootstrap tests for statsmodels linear mixed models.

Import it alongside ``statsmodels.formula.api``::

    import statsmodels_lmm_ext as lmm
    res = lmm.mixedlm("y ~ x", data, groups="subject", cov_struct=lmm.AR1(time="visit")).fit()
"""

from . import datasets
from ._threads import get_blas_threads, set_blas_threads
from .bootstrap import (
    BootstrapPrediction,
    BootstrapResult,
    BootstrapWarning,
    LRTResult,
    PBTestResult,
    bootstrap_predict,
    lrt,
    parametric_bootstrap,
    pb_lrt,
    refit,
    simulate,
)
from .covstruct import (
    AR1,
    COV_STRUCTS,
    AnteDependence,
    CompoundSymmetry,
    CovStruct,
    Exponential,
    Gaussian,
    Independence,
    Power,
    Toeplitz,
    Unstructured,
    VarExp,
    VarIdent,
    VarPower,
    make_cov_struct,
)
from .dask_model import DaskMixedLM, DaskMixedLMResults
from .diagnostics.influence import InfluenceWarning
from .emmeans import CONTRAST_METHODS, EmmContrasts, EmmResults, emmeans, ref_grid
from .inference import DDF_METHODS, DDFWarning, VarianceModel
from .inference.api import (
    KRCovariance,
    KRTestResult,
    anova,
    f_test,
    kenward_roger,
    kenward_roger_test,
    t_test,
    variance_model,
)
from .model import MixedLM, mixedlm
from .multiplicity import ADJUSTMENTS
from .results import MixedLMResults, MixedLMResultsWrapper
from .selection import (
    CovStructSelection,
    ExactLRTResult,
    compare,
    exact_lrt,
    exact_rlrt,
    select_cov_struct,
)

__version__ = "0.1.0"

__all__ = [
    "InfluenceWarning",
    "BootstrapPrediction",
    "BootstrapResult",
    "BootstrapWarning",
    "LRTResult",
    "PBTestResult",
    "bootstrap_predict",
    "lrt",
    "parametric_bootstrap",
    "pb_lrt",
    "refit",
    "simulate",
    "ADJUSTMENTS",
    "AR1",
    "AnteDependence",
    "Toeplitz",
    "Unstructured",
    "CONTRAST_METHODS",
    "COV_STRUCTS",
    "CompoundSymmetry",
    "CovStruct",
    "DDF_METHODS",
    "DDFWarning",
    "EmmContrasts",
    "EmmResults",
    "KRCovariance",
    "KRTestResult",
    "Exponential",
    "Gaussian",
    "Independence",
    "MixedLM",
    "DaskMixedLM",
    "DaskMixedLMResults",
    "MixedLMResults",
    "MixedLMResultsWrapper",
    "Power",
    "VarExp",
    "VarIdent",
    "VarPower",
    "VarianceModel",
    "anova",
    "datasets",
    "emmeans",
    "f_test",
    "get_blas_threads",
    "kenward_roger",
    "kenward_roger_test",
    "make_cov_struct",
    "mixedlm",
    "ref_grid",
    "set_blas_threads",
    "t_test",
    "variance_model",
    "__version__",
    "CovStructSelection",
    "ExactLRTResult",
    "compare",
    "exact_lrt",
    "exact_rlrt",
    "select_cov_struct",
]
