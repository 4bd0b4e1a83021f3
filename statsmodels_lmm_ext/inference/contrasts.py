"""Tests of linear hypotheses ``L beta = q`` on a :class:`VarianceModel`, for any ddf method.

:class:`Inference` gathers what one ddf method needs for one fitted model (``W``, the
covariance of ``beta_hat``, the residual df) and answers t tests (one per row of ``L``) and F
tests; :func:`t_test`, :func:`f_test` and :func:`anova` return the package's test-result shape.
The public functions in :mod:`statsmodels_lmm_ext.inference.api` adapt any results object to a
variance model and call these.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
from patsy import DesignInfo

from .._display import NotedFrame
from .._formula import type3_contrasts
from .._warnings import DDFWarning
from .ddf import DDF_METHODS, check_ddf
from .tests import ContrastTest, TestResult, f_pvalue
from .variance_model import VarianceModel

__all__ = ["AnovaTable", "FTest", "Inference", "anova", "f_test", "parse_L", "t_test"]


def check_L(L, k_fe: int) -> np.ndarray:
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != k_fe:
        raise ValueError(
            f"the contrast matrix L has {L.shape[1]} columns; the model has {k_fe} fixed effects"
        )
    if np.linalg.matrix_rank(L) < L.shape[0]:
        raise ValueError(
            f"the {L.shape[0]} rows of L are linearly dependent (rank "
            f"{np.linalg.matrix_rank(L)}); drop the redundant rows"
        )
    return L


def parse_L(names: list[str], r_matrix):
    """``(L, rhs)`` from an array with ``k_fe`` columns, a constraint string, or ``(L, rhs)``."""
    if isinstance(r_matrix, str):
        lc = DesignInfo(names).linear_constraint(r_matrix)
        return check_L(lc.coefs, len(names)), lc.constants.ravel()
    if isinstance(r_matrix, tuple):
        L = check_L(r_matrix[0], len(names))
        return L, np.broadcast_to(np.asarray(r_matrix[1], float).ravel(), (L.shape[0],))
    L = check_L(r_matrix, len(names))
    return L, np.zeros(L.shape[0])


class Inference:
    """Everything one ddf method needs for one fitted model (computed once per call)."""

    def __init__(self, vm: VarianceModel, ddf, information: str | None):
        self.method = check_ddf(ddf)
        self.ddf = self.method.name
        self.vm = vm
        if self.method.requires_reml and not vm.reml:
            raise ValueError(
                "Kenward-Roger inference is defined for REML fits (Kenward and Roger 1997); "
                "this model was fitted by ML: refit it with reml=True, or use "
                "ddf='satterthwaite'"
            )
        self.information = self.method.information(information, vm)
        #: the notes' line saying which information gave ``W`` ("" if none is used)
        self.information_note = self.method.information_note(information, vm)
        self.W = None
        if self.method.uses_information:
            if vm.boundary.any():
                warnings.warn(
                    f"{', '.join(vm.boundary_names)} estimated at zero (a boundary fit): "
                    "treated as fixed in the small-sample df, as SAS does",
                    DDFWarning,
                    stacklevel=4,
                )
            self.W = vm.cov_reported(self.information)
        self.df_resid = vm.engine.nobs - vm.engine.k_fe

    @cached_property
    def cov(self) -> np.ndarray:
        """Covariance of ``beta_hat`` used: ``Phi``, or ``Phi_A`` for Kenward-Roger."""
        return self.method.cov(self.vm, self.W)

    def t(self, L: np.ndarray, rhs: np.ndarray):
        """``(estimate - rhs, se, df, reason)`` of each row of ``L``."""
        est = L @ self.vm.beta - rhs
        se = np.sqrt(np.einsum("ia,ab,ib->i", L, self.cov, L))
        df = self.method.df_rows(self.vm, L, self.W, self.df_resid)
        bad = ~(df > 0)
        reason = None
        if bad.any():
            reason = f"df could not be computed for {bad.sum()} contrast(s)"
            warnings.warn(f"{reason}; NaN reported", DDFWarning, stacklevel=4)
            df = np.where(bad, np.nan, df)
        return est, se, df, reason

    def f(self, L: np.ndarray, rhs: np.ndarray) -> dict:
        out = self.method.f(self.vm, L, self.W, self.cov, rhs, self.df_resid)
        if out["reason"] is not None:
            warnings.warn(f"{out['reason']}; reporting NaN df", DDFWarning, stacklevel=4)
        return out


class FTest(TestResult):
    """A small-sample F test (one row of an ANOVA table, or a Kenward-Roger model comparison).

    Attributes: ``statistic`` (= ``fvalue``, scaled for Kenward-Roger), ``fvalue_unscaled``,
    ``df`` (= ``df_num``), ``df_denom``, ``scaling``, ``pvalue``, ``pvalue_unscaled``,
    ``ddf_method``, ``information``, ``valid``, ``reason``.
    """

    title = "F test"

    def __init__(
        self, out: dict, ddf_method: str, information: str | None, information_note: str = ""
    ):
        self.information_note = information_note
        self.statistic = self.fvalue = out["F"]
        self.fvalue_unscaled = out["F_unscaled"]
        self.df = self.df_num = out["df_num"]
        self.df_denom = out["df_denom"]
        self.scaling = out["scaling"]
        self.ddf_method, self.information = ddf_method, information
        self.reason = out["reason"]
        self.pvalue = f_pvalue(self.fvalue, self.df_num, self.df_denom)
        self.pvalue_unscaled = f_pvalue(self.fvalue_unscaled, self.df_num, self.df_denom)


def t_test(vm: VarianceModel, names: list[str], r_matrix, ddf, information) -> ContrastTest:
    """t tests of ``L beta = q``, one per row (see :func:`statsmodels_lmm_ext.t_test`)."""
    inf = Inference(vm, ddf, information)
    L, rhs = parse_L(names, r_matrix)
    est, se, df, reason = inf.t(L, rhs)
    if inf.ddf == "asymptotic":
        return ContrastTest(
            effect=est + rhs,
            sd=se,
            statistic=est / se,
            distribution="norm",
            df_denom=df,
            ddf_method=inf.ddf,
        )
    return ContrastTest(
        t=est / se,
        sd=se,
        effect=est + rhs,
        df_denom=df,
        ddf_method=inf.ddf,
        reason=reason,
        information=inf.information,
        information_note=inf.information_note,
    )


def f_test(vm: VarianceModel, names: list[str], r_matrix, ddf, information) -> ContrastTest:
    """F test of ``L beta = q`` (see :func:`statsmodels_lmm_ext.f_test`)."""
    inf = Inference(vm, ddf, information)
    L, rhs = parse_L(names, r_matrix)
    out = inf.f(L, rhs)
    cr = ContrastTest(
        F=out["F"],
        df_num=out["df_num"],
        df_denom=out["df_denom"],
        ddf_method=inf.ddf,
        reason=out["reason"],
        information=inf.information,
        information_note=inf.information_note,
    )
    cr.pvalue = f_pvalue(out["F"], out["df_num"], out["df_denom"])
    cr.fvalue_unscaled = out["F_unscaled"]
    cr.scaling = out["scaling"]
    return cr


class AnovaTable(NotedFrame):
    """A Type III ANOVA table: a DataFrame (``num_df``, ``den_df``, ``F``, ``PR(>F)`` by term)
    whose ``tests`` attribute holds each row's :class:`FTest` (with ``valid``/``reason``).

    It prints with its title (``attrs["title"]``: the ddf method) and notes
    (``attrs["notes"]``: the information matrix used, rows whose df are undefined).
    """

    _metadata = ["tests"]

    @property
    def _constructor(self):
        return AnovaTable


def anova(vm: VarianceModel, model, ddf, information) -> AnovaTable:
    """Type III ANOVA table (see :func:`statsmodels_lmm_ext.anova`)."""
    inf = Inference(vm, ddf, information)
    tests, rows = {}, {}
    for term, L in type3_contrasts(model).items():
        t = FTest(inf.f(L, np.zeros(L.shape[0])), inf.ddf, inf.information, inf.information_note)
        tests[term] = t
        rows[term] = [t.df_num, t.df_denom, t.fvalue, t.pvalue]
    table = AnovaTable.from_dict(rows, orient="index", columns=["num_df", "den_df", "F", "PR(>F)"])
    table.tests = tests
    table.attrs["ddf"] = inf.ddf
    table.attrs["information"] = inf.information
    table.attrs["title"] = f"Type III tests of fixed effects ({DDF_METHODS[inf.ddf]})"
    notes = [inf.information_note] if inf.information_note else []
    notes += [f"{term}: {t.reason}" for term, t in tests.items() if not t.valid]
    table.attrs["notes"] = notes
    return table


def restriction_matrix(X: np.ndarray, X0: np.ndarray) -> np.ndarray:
    """``L`` with ``{beta : L beta = 0} = {beta : X beta in span(X0)}`` (small model nested)."""
    c0, *_ = np.linalg.lstsq(X, X0, rcond=None)
    if not np.allclose(X @ c0, X0, atol=1e-8 * max(1.0, np.abs(X0).max())):
        raise ValueError("the small model's fixed effects are not nested in the large model's")
    b, *_ = np.linalg.lstsq(X0, X, rcond=None)
    M = X - X0 @ b  # the part of X outside span(X0)
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    q = int((s > 1e-9 * np.linalg.norm(X, 2)).sum())
    if q == 0:
        raise ValueError("the two models have the same fixed effects; nothing to test")
    return Vt[:q]
