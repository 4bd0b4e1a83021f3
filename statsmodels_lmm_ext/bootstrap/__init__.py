"""Likelihood-ratio tests, parametric bootstraps, simulation and refitting.

For nested models ``small`` and ``large``, ``LRT = 2 (l_large - l_small)``
(:func:`lrt`); the parametric bootstrap (:func:`pb_lrt`) replaces its chi-square reference
distribution by the ``LRT*`` of responses simulated from the fitted small model, each refitted
by both models.  Simulation goes group by group through the Cholesky factor of
``V_i = Z_i G Z_i' + sigma^2 C_i(rho)``; refits are batched over replicates (one quasi-Newton
iteration advances a whole batch with stacked numpy operations, see :meth:`Engine.profile`) and
warm-started at the original estimates.  Any statistic of the refits can be bootstrapped with
:func:`parametric_bootstrap` (a registered name of :data:`STATISTICS` or a callable).

One file per concern:

==================  ===========================================================================
``random``          seed sequences (one generator per replicate), normals, ``nsim`` and
                    memory checks
``progress``        the optional tqdm progress bar (``progress=True/False/None``)
``parallel``        batch plan, ``n_jobs`` check, the per-replicate guard, joblib map with the
                    threads/processes hint
``failures``        reasons of failed replicates: counts, table, summaries, the warning
``simulation``      simulation-and-refit specs of fitted models (batched refits, fallback)
``statistics``      the registry of bootstrap statistics and :func:`parametric_bootstrap`
``comparison``      nesting checks, :class:`LRTResult`, :func:`lrt`
``pb``              the ``"lrt"`` statistic, :class:`PBTestResult`, :func:`pb_lrt`
``responses``       :func:`simulate`, :func:`refit`
``predict``         the ``"prediction_error"`` statistic, :func:`bootstrap_predict`
==================  ===========================================================================

Names without a leading underscore in these modules are their interface to each other; the
public API is what this package exports.

References
----------
Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*. CUP.
Halekoh, U. and Hojsgaard, S. (2014). A Kenward-Roger approximation and parametric bootstrap
methods for tests in linear mixed models - the R package pbkrtest. *J. Stat. Softw.* 59(9).
Self, S. G. and Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood estimators and
likelihood ratio tests under nonstandard conditions. *JASA* 82, 605-610.
Stram, D. O. and Lee, J. W. (1994). Variance components testing in the longitudinal mixed
effects model. *Biometrics* 50, 1171-1177.
"""

from .._warnings import BootstrapWarning
from .comparison import LRTResult, lrt
from .pb import PBTestResult, pb_lrt
from .predict import BootstrapPrediction, bootstrap_predict
from .responses import refit, simulate
from .statistics import (
    STATISTICS,
    BootstrapResult,
    BootstrapStatistic,
    Refits,
    parametric_bootstrap,
)

__all__ = [
    "STATISTICS",
    "BootstrapPrediction",
    "BootstrapResult",
    "BootstrapStatistic",
    "BootstrapWarning",
    "LRTResult",
    "PBTestResult",
    "Refits",
    "bootstrap_predict",
    "lrt",
    "parametric_bootstrap",
    "pb_lrt",
    "refit",
    "simulate",
]
