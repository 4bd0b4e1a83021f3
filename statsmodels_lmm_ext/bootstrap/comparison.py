"""Comparing nested models: nesting checks, the method (REML or ML) of the comparison, and the
likelihood-ratio test (R's ``anova(small, large)``).

For nested models ``small`` (parameters ``theta_0``) and ``large`` (``theta_1``)::

    LRT = 2 (l_large - l_small),   df = dim(theta_1) - dim(theta_0)

with both models fitted by ML (REML fits of models with the same fixed effects may be compared
by their REML likelihoods, as ``nlme``'s ``anova``).

References
----------
Self, S. G. and Liang, K.-Y. (1987). Asymptotic properties of maximum likelihood estimators and
likelihood ratio tests under nonstandard conditions. *JASA* 82, 605-610.
Stram, D. O. and Lee, J. W. (1994). Variance components testing in the longitudinal mixed
effects model. *Biometrics* 50, 1171-1177.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..adapters import Fitted, as_fitted
from ..covstruct import Independence
from ..inference.tests import TestResult
from .simulation import fitted_for, spec_of


def with_method(fit: Fitted, reml: bool, why: str) -> tuple[Fitted, list[str]]:
    """The same model fitted by REML (``reml=True``) or ML, refitting if necessary, and notes
    saying what was done."""
    if fit.reml == reml:
        return fit, []
    if fit.kind == "ols":
        new = dataclasses.replace(fit, reml=reml)
        llf = float(spec_of(new).llf_many(fit.endog[:, None])[0])
        return dataclasses.replace(new, llf=llf), []
    model = copy.copy(fit.lmm_model)  # fit() sets model.reml: keep the user's model untouched
    start = fit.params.pack(fit.psi, fit.vc, fit.rho)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=reml, start_params=start)
    out = as_fitted(res)
    method = "REML" if reml else "ML"
    notes = [f"{why}: refitted by {method}"]
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(f"{method} refit: {w.message}")
    if not out.converged:
        warnings.warn(
            f"the {method} refit did not converge; the likelihood-ratio statistic may be "
            "inaccurate",
            ConvergenceWarning,
            stacklevel=4,
        )
    return out, notes


# ---------------------------------------------------------------------------------------------
# Nesting checks
# ---------------------------------------------------------------------------------------------


def _in_span(A: np.ndarray, B: np.ndarray) -> bool:
    """Whether the columns of ``A`` lie in the column space of ``B``."""
    if A.shape[1] == 0:
        return True
    if B.shape[1] == 0:
        return False
    c, *_ = np.linalg.lstsq(B, A, rcond=None)
    return np.allclose(B @ c, A, atol=1e-8 * max(1.0, np.abs(A).max()))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    ca = pd.factorize(a)[0]
    cb = pd.factorize(b)[0]
    pairs = len(np.unique(ca.astype(np.int64) * (cb.max() + 1) + cb))
    return pairs == ca.max() + 1 == cb.max() + 1


def _check_data(small: Fitted, large: Fitted) -> None:
    if not all(getattr(f.model, "keeps_rows", True) for f in (small, large)):
        raise NotImplementedError(
            "comparing two models needs their rows (to check that they share the data), which "
            "a model fitted from a Dask DataFrame does not keep; compare their llf yourself, "
            "or test the restriction with res.f_test / lmm.kenward_roger_test(res, L)"
        )
    if small.nobs != large.nobs:
        raise ValueError(
            f"the models were fitted to different data: {small.nobs} rows (small) and "
            f"{large.nobs} rows (large); fit both to the same rows"
        )
    if not np.allclose(small.endog, large.endog, rtol=1e-10, atol=0.0):
        i = int(np.flatnonzero(~np.isclose(small.endog, large.endog, rtol=1e-10, atol=0.0))[0])
        raise ValueError(
            f"the models have different responses (first difference at row {i}: "
            f"{small.endog[i]!r} vs {large.endog[i]!r}); a likelihood-ratio test needs the same "
            "response, in the same row order"
        )


def check_pair(small: Fitted, large: Fitted) -> None:
    """Raise a ValueError saying why ``small`` is not nested in ``large`` (same data, fewer
    parameters, fixed effects, groups, random effects, variance components and residual
    structure contained in the large model's)."""
    _check_data(small, large)
    if small.npar >= large.npar:
        raise ValueError(
            f"the models are not nested: the small model has {small.npar} parameters and the "
            f"large one {large.npar}; the small model needs fewer"
        )
    if not _in_span(small.exog, large.exog):
        raise ValueError(
            "the models are not nested: the small model's fixed effects are not in the column "
            "space of the large model's"
        )
    if small.uses_groups and large.kind == "lmm":
        if not _same_partition(small.groups, large.groups):
            raise ValueError(
                "the models are not nested: they group the rows differently (the random "
                "effects / residual structure of both must use the same groups)"
            )
    if small.uses_groups and large.kind == "ols":
        raise ValueError("the models are not nested: the large model is an OLS fit")
    if small.k_re:
        if large.k_re == 0 or not _in_span(small.exog_re, large.exog_re):
            raise ValueError(
                "the models are not nested: the small model's random effects are not among the "
                "large model's"
            )
    missing_vc = set(small.vc_names) - set(large.vc_names)
    if missing_vc:
        raise ValueError(
            f"the models are not nested: variance component(s) {sorted(missing_vc)} of the "
            "small model are not in the large model"
        )
    cs_s, cs_l = small.cov_struct, large.cov_struct
    if small.kind == "lmm" and not isinstance(cs_s, Independence):
        if type(cs_s) is not type(cs_l) or cs_s.position_columns != cs_l.position_columns:
            raise ValueError(
                f"the models are not nested: residual structure {cs_s!r} (small) is not a "
                f"special case of {cs_l!r} (large)"
            )


def _mixture(small: Fitted, large: Fitted, same_fe: bool) -> tuple[float, int] | None:
    """``(weight, q)`` of the 50:50 chi2_q : chi2_(q+1) mixture (Self and Liang 1987; Stram and
    Lee 1994) when ``large`` adds one variance (with its covariances) and nothing else."""
    if not same_fe:
        return None
    cs_s = small.cov_struct if small.kind == "lmm" else Independence()
    cs_l = large.cov_struct if large.kind == "lmm" else Independence()
    if type(cs_s) is not type(cs_l) or cs_s.k_params != cs_l.k_params:
        return None
    k_vc_s, k_vc_l = len(small.vc_names), len(large.vc_names)
    if large.k_re == small.k_re + 1 and k_vc_l == k_vc_s:
        return 0.5, small.k_re
    if large.k_re == small.k_re and k_vc_l == k_vc_s + 1:
        return 0.5, 0
    return None


def _mixture_pvalue(stat: float, q: int) -> float:
    p_hi = stats.chi2.sf(stat, q + 1)
    p_lo = stats.chi2.sf(stat, q) if q > 0 else float(stat <= 0)
    return float(0.5 * p_lo + 0.5 * p_hi)


def zero_tol(*llfs: float) -> float:
    """|LRT| below this is numerical noise of two converged fits and counts as 0."""
    return max(1e-6, 1e-10 * max(abs(v) for v in llfs))


def _method(small: Fitted, large: Fitted, same_fe: bool, reml: bool | None):
    """``(use_reml, why)``: the method of the comparison and the reason for refits."""
    if reml is not None:
        if reml and not same_fe:
            raise ValueError(
                "a REML likelihood-ratio test needs the same fixed effects in both models "
                f"(the small model has {np.linalg.matrix_rank(small.exog)}, the large "
                f"{np.linalg.matrix_rank(large.exog)} fixed-effect columns); use reml=False"
            )
        return bool(reml), "requested"
    use_reml = same_fe and large.reml and (small.reml or small.kind == "ols")
    why = ""
    if (small.reml or large.reml) and not use_reml:
        why = (
            "REML fits of models with different fixed effects are not comparable"
            if not same_fe
            else "one model was fitted by ML"
        )
    return use_reml, why or "method"


def prepare(first, second, *, reml: bool | None, ordered: bool):
    """Adapt, order, check and (if needed) refit two models for a likelihood-ratio test:
    ``(small, large, same_fe, notes)``.  ``ordered``: ``first`` is the large model."""
    a = fitted_for(first, "large model" if ordered else "first model")
    b = fitted_for(second, "small model" if ordered else "second model")
    if ordered:
        large, small = a, b
        if large.npar < small.npar:
            raise ValueError(
                f"pb_lrt(large, small): the first model has {large.npar} parameters and the "
                f"second {small.npar}; did you swap them?"
            )
    else:
        small, large = (a, b) if a.npar <= b.npar else (b, a)
    check_pair(small, large)
    same_fe = np.linalg.matrix_rank(small.exog) == np.linalg.matrix_rank(large.exog)
    use_reml, why = _method(small, large, same_fe, reml)
    small2, notes_s = with_method(small, use_reml, why)
    large2, notes_l = with_method(large, use_reml, why)
    notes = [f"small model: {n}" for n in notes_s] + [f"large model: {n}" for n in notes_l]
    if use_reml:
        notes.insert(0, "REML likelihood-ratio test (same fixed effects in both models)")
    return small2, large2, same_fe, notes


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


class LRTResult(TestResult):
    """Likelihood-ratio test of two nested models (R's ``anova(small, large)``).

    Attributes
    ----------
    lrt : float
        ``2 (llf_large - llf_small)`` (0 if below numerical noise).
    df : int
        Difference in the number of parameters.
    pvalue : float
        Upper tail of chi2(df).
    pvalue_mixture : float
        For one added variance (with its covariances) on the boundary of its parameter space,
        the 50:50 mixture of chi2(q) and chi2(q + 1) (Self and Liang 1987; Stram and Lee 1994);
        NaN when it does not apply.
    method : str
        ``"ML"`` or ``"REML"``.
    llf_small, llf_large : float
    notes : list of str
        Refits, methods and caveats.
    """

    def __init__(self, small: Fitted, large: Fitted, same_fe: bool, notes: list[str]):
        self._small, self._large = small, large
        self.method = "REML" if large.reml else "ML"
        self.llf_small, self.llf_large = small.llf, large.llf
        self.df = int(large.npar - small.npar)
        raw = 2.0 * (large.llf - small.llf)
        self.lrt_raw = raw
        self.lrt = 0.0 if abs(raw) < zero_tol(small.llf, large.llf) else float(raw)
        self.statistic, self.df_denom = self.lrt, np.inf  # the package's test-result shape
        self.pvalue = float(stats.chi2.sf(max(self.lrt, 0.0), self.df))
        mix = _mixture(small, large, same_fe)
        self.mixture = None if mix is None else f"0.5 chi2({mix[1]}) + 0.5 chi2({mix[1] + 1})"
        self.pvalue_mixture = (
            float("nan") if mix is None else _mixture_pvalue(max(self.lrt, 0.0), mix[1])
        )
        self.notes = list(notes)
        if self.lrt < 0:
            self.notes.append(
                "the large model's likelihood is below the small model's: its fit did not reach "
                "the maximum (try other start_params)"
            )
        self.models = [small.label, large.label]

    def summary_frame(self) -> pd.DataFrame:
        """The comparison table: one row per model (``small``, ``large``)."""
        rows = {}
        for name, f in (("small", self._small), ("large", self._large)):
            aic, bic = f.criteria()
            rows[name] = {"npar": f.npar, "AIC": aic, "BIC": bic, "llf": f.llf}
            rows[name]["deviance"] = -2 * f.llf
        t = pd.DataFrame.from_dict(rows, orient="index")
        t["chi2"] = [np.nan, self.lrt]
        t["df"] = [np.nan, self.df]
        t["Pr(>chi2)"] = [np.nan, self.pvalue]
        if self.mixture is not None:
            t["Pr(>chi2) mixture"] = [np.nan, self.pvalue_mixture]
        return t

    def summary(self) -> str:
        """The table of :meth:`summary_frame` with the models, the mixture p-value and notes."""
        lines = [f"Likelihood-ratio test ({self.method})"]
        lines += [f"  small: {self.models[0]}", f"  large: {self.models[1]}"]
        lines.append(self.summary_frame().to_string(float_format=lambda x: f"{x:.6g}"))
        if self.mixture is not None:
            lines.append(
                f"Boundary: p = {self.pvalue_mixture:.4g} from the mixture {self.mixture}"
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary

    def __repr__(self):
        return f"<LRTResult chi2={self.lrt:.6g}, df={self.df}, pvalue={self.pvalue:.4g}>"


def lrt(small, large, *, reml: bool | None = None) -> LRTResult:
    """Likelihood-ratio test of two nested models, like R's ``anova(small, large)``.

    Parameters
    ----------
    small, large : fitted models
        Our :class:`MixedLMResults`, statsmodels ``MixedLMResults`` or statsmodels OLS results
        (the small model only).  Either order is accepted (the model with fewer parameters is
        the small one).
    reml : bool, optional
        ``None`` (default): compare REML likelihoods when both fits are REML with the same fixed
        effects (an OLS small model then uses its REML likelihood), as nlme's ``anova`` does;
        otherwise refit REML fits by ML (with a note).  ``False`` always uses ML; ``True``
        REML (same fixed effects only).

    Returns
    -------
    LRTResult

    Notes
    -----
    ``LRT = 2 (l_large - l_small)`` on ``df = npar_large - npar_small`` degrees of freedom,
    where ``npar`` counts fixed effects, covariance parameters and ``sigma^2`` (R's ``logLik``
    df).  When the large model adds one variance the null value lies on the boundary and the
    chi-square p-value is conservative; ``pvalue_mixture`` gives the 50:50 mixture
    (Self and Liang 1987) and :func:`pb_lrt` a bootstrap p-value.
    """
    s, la, same_fe, notes = prepare(small, large, reml=reml, ordered=False)
    return LRTResult(s, la, same_fe, notes)
