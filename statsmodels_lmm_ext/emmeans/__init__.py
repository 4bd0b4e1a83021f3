"""Estimated marginal means (least-squares means) and their contrasts.

The reference grid is every combination of the levels of the categorical variables of the
fixed-effects formula, with numeric covariates at their means (or at user values).  Each grid
row's design row comes from the model's own formula spec (patsy ``DesignInfo`` or formulaic
``ModelSpec``), so codings, interactions and transformed terms such as ``np.log(x)`` are
handled as the model handled them.  A marginal mean averages grid rows over the remaining
factors; estimates, standard errors and degrees of freedom come from the chosen ddf method
(Kenward-Roger by default for REML fits, with the adjusted covariance), and simultaneous
inference from :mod:`statsmodels_lmm_ext.multiplicity`.

Modules, bottom to top: ``provider`` (estimates, covariance and df for rows of ``L`` from a
fitted model), ``grid`` (reference grid, cell weights, estimability), ``letters`` (compact
letter displays), ``table`` (tables of ``L beta`` with their inference), ``contrasts`` (the
contrast-method registry and :class:`EmmContrasts`), ``plot``, ``means`` (:func:`emmeans`,
:class:`EmmResults`).

References
----------
Searle, S. R., Speed, F. M. and Milliken, G. A. (1980). Population marginal means in the
linear model: an alternative to least squares means. The American Statistician 34, 216-221.
Lenth, R. V. (2016). Least-squares means: the R package lsmeans. Journal of Statistical
Software 69(1).
Piepho, H.-P. (2004). An algorithm for a letter-based representation of all-pairwise
comparisons. Journal of Computational and Graphical Statistics 13, 456-466.
"""

from .contrasts import CONTRAST_METHODS, EmmContrasts
from .grid import ref_grid
from .means import EmmResults, emmeans

__all__ = ["CONTRAST_METHODS", "EmmContrasts", "EmmResults", "emmeans", "ref_grid"]
