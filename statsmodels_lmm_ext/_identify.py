"""Identifiability of the G-side random effects together with the residual structure.

A residual structure whose correlation has a constant term (compound symmetry:
``sigma^2 C_i = sigma^2 (1 - rho) I + sigma^2 rho J``, :attr:`CovStruct.constant_correlation`)
adds the same covariance to every pair of rows of a group as a random intercept does
(``tau J``).  With both, ``V_i`` depends on ``tau + rho sigma^2`` only: the likelihood is flat
along a line, the optimiser stops anywhere on it, and the information matrix is singular (the
standard errors of ``tau`` and ``rho`` are huge).  The check is exact and general: the model
is not identified when some change of the random-effects covariances changes every ``V_i`` by
``J_i`` (all ones), i.e. when the linear system

    Z_i dG Z_i' + sum_k dtau_k Z_ik Z_ik' = J_i   for every group i

has a solution (``Z_i`` the random-effects rows, ``Z_ik`` those of variance component ``k``).
A random intercept (or any column constant within group, the same in every group), a variance
component constant within group, or random effects whose columns add up to one in every group
(``0 + C(arm)`` with ``arm`` constant within group) all make it solvable.  The system is solved
in least squares through per-group ``Z_i'Z_i`` and ``Z_i'1``; no ``n_i x n_i`` matrix is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .covstruct import CovStruct

__all__ = ["check_identified", "constant_random_effects"]

# relative residual of the least-squares system below which J is reproduced exactly
_TOL = 1e-8


def _basis(k_re: int, vc_widths: Sequence[int]) -> list[np.ndarray]:
    """Symmetric matrices on the stacked random-effects columns, one per covariance
    parameter: ``G`` entries in lower-triangle order (``np.tril_indices``), then one identity
    block per variance component."""
    k = k_re + sum(vc_widths)
    out = []
    for a, b in zip(*np.tril_indices(k_re), strict=True):
        E = np.zeros((k, k))
        E[a, b] = E[b, a] = 1.0
        out.append(E)
    start = k_re
    for w in vc_widths:
        E = np.zeros((k, k))
        E[start : start + w, start : start + w] = np.eye(w)
        out.append(E)
        start += w
    return out


def constant_random_effects(
    exog_re: np.ndarray, exog_vc: Sequence[np.ndarray], groups: np.ndarray
) -> np.ndarray | None:
    """Coefficients ``(dG lower triangle, dtau)`` that change every ``V_i`` by ``J_i``, or
    None if there are none (see the module docstring).

    Parameters
    ----------
    exog_re : ndarray (N, k_re)
    exog_vc : list of ndarray (N, w_k)
        Per-row designs of the variance components (zero outside a row's group's columns).
    groups : ndarray of int (N,)
        Group codes ``0 .. n_groups - 1``.
    """
    Z = np.column_stack([np.asarray(exog_re, float).reshape(len(groups), -1), *exog_vc])
    basis = _basis(np.shape(exog_re)[1], [np.shape(z)[1] for z in exog_vc])
    if not basis:
        return None
    # unit-RMS columns: the answer does not depend on the scale of a covariate
    rms = np.sqrt((Z**2).mean(axis=0))
    Z = Z / np.where(rms > 0, rms, 1.0)
    n_groups = int(groups.max()) + 1
    k = Z.shape[1]
    K = np.zeros((n_groups, k, k))  # Z_i'Z_i
    for a in range(k):
        for b in range(a + 1):
            K[:, a, b] = K[:, b, a] = np.bincount(groups, Z[:, a] * Z[:, b], n_groups)
    s = np.stack([np.bincount(groups, Z[:, a], n_groups) for a in range(k)], axis=1)  # Z_i'1
    n = np.bincount(groups, minlength=n_groups).astype(float)
    KA = [K @ A for A in basis]
    # Gram matrix <Z A_j Z', Z A_l Z'> = tr(A_j K A_l K), right side <Z A_j Z', J> = s'A_j s
    M = np.array([[np.einsum("gab,gba->", P, Q) for Q in KA] for P in KA])
    r = np.array([np.einsum("ga,ab,gb->", s, A, s) for A in basis])
    coef = np.linalg.pinv(M) @ r
    resid = (n**2).sum() - r @ coef  # ||J - sum coef_j Z A_j Z'||^2 at the least-squares fit
    if resid > _TOL * (n**2).sum():
        return None
    return coef


def check_identified(
    cov_struct: CovStruct,
    exog_re: np.ndarray,
    exog_vc: Sequence[np.ndarray],
    groups: np.ndarray,
    names: Sequence[str],
) -> None:
    """Raise ``ValueError`` if ``cov_struct``'s constant correlation term and the random
    effects are not identified together (see the module docstring).

    ``names`` are the names of the random-effects covariance parameters (G lower triangle,
    then the variance components), used in the message.
    """
    if not cov_struct.constant_correlation:
        return
    coef = constant_random_effects(exog_re, exog_vc, groups)
    if coef is None:
        return
    big = np.abs(coef) > 1e-6 * np.abs(coef).max()
    culprits = ", ".join(n for n, b in zip(names, big, strict=False) if b) or "random effects"
    raise ValueError(
        f"{cov_struct!r} and the random effect(s) {culprits} are not identified together: "
        "both add one covariance common to all rows of a group, so only their sum can be "
        "estimated.  Keep one of the two: the structure without these random effects "
        '(re_formula="0" drops the default random intercept), or the random effects without '
        "the structure; with a random intercept the two are the same model when the "
        "within-group correlation is not negative."
    )
