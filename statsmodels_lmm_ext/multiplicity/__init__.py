"""Multiplicity adjustments of t tests and confidence intervals for families of estimates.

One registry, :data:`ADJUSTMENTS`, holds the methods: each is an :class:`Adjustment` object
that adjusts the two-sided p-values of a family of ``m`` t statistics and gives the critical
value ``c`` of the simultaneous confidence intervals ``estimate +- c * se`` at the same
level.  :func:`adjust` dispatches through it.  The methods follow R's emmeans (Lenth 2024), so
that tables agree with it:

==============  =============================================================================
``none``        ``p = 2 P(T_nu > |t|)``; ``c = t_{1-alpha/2; nu}``
``tukey``       pairwise comparisons of ``k`` means (Tukey-Kramer):
                ``p = P(Q_{k,nu} > sqrt(2) |t|)``; ``c = q_{1-alpha; k,nu} / sqrt(2)``
``scheffe``     ``p = P(F_{r,nu} > t^2 / r)``; ``c = sqrt(r F_{1-alpha; r,nu})``, ``r`` = rank
                of the family's linear functions
``sidak``       ``p = 1 - (1 - p_unadj)^m``; ``c = t_{(1 + (1-alpha)^(1/m))/2; nu}``
``bonferroni``  ``p = min(1, m p_unadj)``; ``c = t_{1 - alpha/(2m); nu}``
``holm``        step-down Bonferroni p-values; Bonferroni intervals (as emmeans)
``fdr``         Benjamini-Hochberg p-values; Bonferroni intervals (as emmeans)
``mvt``         exact simultaneous inference from the multivariate t distribution of the
                family's t statistics (their correlation from the estimates' covariance):
                ``p = 1 - P(max_i |T_i| < |t|)`` and ``c`` with ``P(max_i |T_i| < c) = 1-alpha``
``dunnett``     ``mvt`` under Dunnett's name (exact for comparisons with a control)
``dunnettx``    emmeans' closed-form approximation to Dunnett's distribution
==============  =============================================================================

Aliases: ``bonf`` (Bonferroni), ``fdr_bh`` and ``bh`` (FDR).  Tukey's method applies only to
one family of pairwise comparisons: asked of anything else it switches to Sidak and says so,
as emmeans does.  A family of one estimate is never adjusted (except by Scheffe).

The package: :mod:`~.base` (the :class:`Adjustment` contract, the registry, :func:`adjust`),
:mod:`~.single_step` (none, Tukey, Scheffe, Sidak, Bonferroni), :mod:`~.stepwise` (Holm,
FDR) and :mod:`~.mvt` (multivariate t, Dunnett's approximation).

Adding an adjustment
--------------------
1. Implement: in the file of its kind (or a new small file imported below), subclass
   :class:`Adjustment`, decorated with :func:`register`.  Set ``name`` (the ``adjust=`` value),
   ``description`` and any ``aliases``.  Implement ``pvalues(t, df, family)`` and
   ``critical(df, family, level)`` for one family of ``m >= 2`` rows, returning one value per
   row and NaN where ``df`` is not positive; or, for p-values without intervals of their own,
   set ``interval_method`` to the adjustment whose intervals are used.  Set ``non_pairwise``
   if the method is valid only for pairwise comparisons, ``adjusts_single`` if a family of
   one estimate is adjusted too, and override ``family_words`` if the notes should describe
   the family otherwise than "for m tests".  Registration order is the listing order.
2. Document: a row in the table above, the list in ``docs/emmeans.rst`` ("Multiplicity
   adjustments", with the formula) and the list under ``ADJUSTMENTS`` in ``docs/api.rst``.
3. Unit test: ``tests/test_multiplicity.py`` runs every registered adjustment through
   :func:`adjust` without edits (p-values in [0, 1], monotone in ``|t|``, not below the
   unadjusted ones, critical values not below the t quantile, intervals consistent with the
   p-values, aliases).  Add a test of the method's own formula against a closed form or an
   independent computation.
4. Compare with emmeans: add the R call to ``tests/results/emmeans_refs.R``, regenerate
   ``emmeans_refs.json`` and add a comparison to ``tests/test_emmeans_r.py`` within the
   tolerances stated there.  If emmeans uses the method as a contrast's default, update
   ``CONTRAST_METHODS`` in :mod:`statsmodels_lmm_ext.emmeans`.

References
----------
Lenth, R. V. (2024). emmeans: Estimated Marginal Means, aka Least-Squares Means. R package.
Hothorn, T., Bretz, F. and Westfall, P. (2008). Simultaneous inference in general parametric
models. Biometrical Journal 50, 346-363.
Genz, A. and Bretz, F. (2009). Computation of Multivariate Normal and t Probabilities.
"""

from .base import (
    ADJUSTMENTS,
    AdjustedInference,
    Adjustment,
    Family,
    adjust,
    check_adjust,
    register,
)

# isort: off
# importing the method modules registers their adjustments: this order is the listing's order
from . import single_step, stepwise, mvt  # noqa: F401
# isort: on

__all__ = [
    "ADJUSTMENTS",
    "AdjustedInference",
    "Adjustment",
    "Family",
    "adjust",
    "check_adjust",
    "register",
]
