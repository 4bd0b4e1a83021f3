"""Residuals of a fitted mixed model: marginal or conditional, raw, Pearson or normalized.

For group ``i`` with within-group error covariance ``sigma^2 R_i``, ``R_i = S_i C_i S_i``
(the residual structure, variance functions included; :mod:`statsmodels_lmm_ext.covstruct`)::

    marginal     r_i = y_i - X_i beta
    conditional  r_i = y_i - X_i beta - Z_i b_i          (b_i the BLUPs, all random effects)
    pearson      r_ij / (sigma s_ij)                      (s_ij = sqrt(R_i[j, j]))
    normalized   L_i^-1 (pearson_i),  C_i = L_i L_i'      (lower Cholesky factor of C_i)

These are the definitions of nlme's ``residuals.lme(fit, level = 0 | 1, type = ...)`` and
``residuals.gls``: Pearson residuals divide by the fitted standard deviation of the
*within-group error* for both kinds (not by the marginal standard deviation), and normalized
residuals of both kinds use the within-group correlation ``C_i`` (not ``V_i``).  Within a group
the Cholesky factor is taken over the rows in the order of their positions (time), ties and
structures without positions in data order, so that the residuals do not depend on the order
of the data.  nlme's agree when the data are sorted by time within group; for other row orders
nlme's normalized residuals depend on the order (they matched neither the time order nor the
data order within group in a check with shuffled Orthodont rows).

Everything is computed group by group (no ``N x N`` matrix).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._lazy_exog import fe_design

__all__ = ["KINDS", "TYPES", "residuals", "residual_values", "within_group_blocks"]

KINDS = ("conditional", "marginal")
TYPES = ("response", "pearson", "normalized")


@dataclass
class GroupBlocks:
    """The within-group error of a stack of groups of one size ``n``.

    ``rows`` (U, n): row indices in position order; ``sd`` (U, n): ``sigma s_ij``;
    ``corr`` (U, n, n): ``C_i``; ``chol`` (U, n, n): its lower Cholesky factor.
    """

    rows: np.ndarray
    sd: np.ndarray
    corr: np.ndarray
    chol: np.ndarray


def within_group_blocks(res) -> Iterator[GroupBlocks]:
    """The fitted within-group error covariance, chunk by chunk of equal-size groups.

    ``res`` is a fitted results object of this package (``res.model.engine``, ``res._rho``
    and ``res.scale`` are read).
    """
    eng = res.model.engine
    rho = np.asarray(res._rho, float)[None]
    for ch in eng.group_chunks():
        R = eng.residual_blocks(ch, rho, 0)[0][0]  # (U, n, n) = S C S
        s = np.sqrt(np.diagonal(R, axis1=1, axis2=2))
        C = R / (s[:, :, None] * s[:, None, :])
        yield GroupBlocks(ch.rows, np.sqrt(res.scale) * s, C, np.linalg.cholesky(C))


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``; otherwise a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def _raw(res, kind: str) -> np.ndarray:
    model = res.model
    y = np.asarray(model.endog, float)
    if kind == "marginal":
        return y - fe_design(model) @ np.asarray(res.fe_params, float)
    return y - np.asarray(res.fittedvalues, float)


def residual_values(res, kind: str = "conditional", type: str = "response") -> np.ndarray:
    """Residuals as an array in the model's row order (see the module docstring)."""
    check_choice(kind, KINDS, "kind")
    check_choice(type, TYPES, "type")
    r = _raw(res, kind)
    if type == "response":
        return r
    out = np.empty_like(r)
    for b in within_group_blocks(res):
        e = r[b.rows] / b.sd  # (U, n) Pearson
        if type == "normalized":
            e = solve_triangular_stack(b.chol, e)
        out[b.rows] = e
    return out


def solve_triangular_stack(L: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``L_u^-1 e_u`` for lower-triangular ``L`` (U, n, n) and ``e`` (U, n), by forward
    substitution over the ``n`` rows (vectorised over the groups)."""
    out = np.empty_like(e)
    for t in range(e.shape[1]):
        out[:, t] = (e[:, t] - np.einsum("us,us->u", L[:, t, :t], out[:, :t])) / L[:, t, t]
    return out


def row_index(res) -> pd.Index:
    """The data's index of the model's rows (a RangeIndex for array input)."""
    labels = getattr(res.model.data, "row_labels", None)
    n = len(res.model.endog)
    if labels is None or len(labels) != n:
        return pd.RangeIndex(n)
    return pd.Index(labels)


def residuals(res, kind: str = "conditional", type: str = "response") -> pd.Series:
    """Residuals of a fitted model as a Series on the data's index.

    Parameters
    ----------
    res : MixedLMResults
    kind : {"conditional", "marginal"}
        ``conditional``: ``y - X beta - Z b`` (nlme ``level = 1``, the innermost level);
        ``marginal``: ``y - X beta`` (nlme ``level = 0``).  The same for a model without
        random effects.
    type : {"response", "pearson", "normalized"}
        As nlme's ``type``.

    Returns
    -------
    Series
        Indexed by the data's row labels, in the data's order; rows dropped for missing
        values are absent.
    """
    values = residual_values(res, kind, type)
    name = f"{kind} {type} residuals"
    return pd.Series(values, index=row_index(res), name=name)
