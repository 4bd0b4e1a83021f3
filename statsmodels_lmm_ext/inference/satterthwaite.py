"""Satterthwaite denominator degrees of freedom (Satterthwaite 1946; Fai and Cornelius 1996;
lmerTest, Kuznetsova et al. 2017)."""

from __future__ import annotations

import numpy as np

from .variance_model import VarianceModel

__all__ = ["satterthwaite_df", "satterthwaite_df_1d"]


def satterthwaite_df_1d(vm: VarianceModel, L: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each row ``l`` of ``L``: ``2 (l'Phi l)^2 / (g' W g)`` with
    ``g_k = d(l'Phi l)/dtheta_k = -l'Phi P_k Phi l``."""
    Phi = vm.Phi
    LPhi = L @ Phi
    v = np.einsum("ia,ia->i", LPhi, L)
    g = -np.einsum("ia,kab,ib->ik", LPhi, vm.blocks["P"], LPhi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * v**2 / np.einsum("ik,kl,il->i", g, W, g)


def satterthwaite_df(vm: VarianceModel, L: np.ndarray, W: np.ndarray) -> tuple[float, str | None]:
    """Denominator df of the F test of ``L beta = 0`` (q rows) and, if undefined, why.

    Eigen-decompose ``L Phi L' = U D U'``; one-row df ``nu_m`` for the rows of ``U'L``;
    ``E = sum nu_m / (nu_m - 2)``; ``ddf = 2E / (E - q)`` (Fai and Cornelius 1996), which is
    the common value when all ``nu_m`` are equal (also at ``nu_m = 2``, where ``E`` is
    infinite).  Otherwise the df are undefined when some ``nu_m <= 2`` or ``E <= q``.
    """
    q = L.shape[0]
    if q == 1:
        df = float(satterthwaite_df_1d(vm, L, W)[0])
        return (df, None) if df > 0 else (float("nan"), "the Satterthwaite df are not positive")
    d, U = np.linalg.eigh(L @ vm.Phi @ L.T)
    nu = satterthwaite_df_1d(vm, U.T @ L, W)
    if nu[0] > 0 and np.allclose(nu, nu[0], rtol=1e-8, atol=0.0):
        # equal nu_m: 2E/(E - q) = nu for any nu != 2, and nu is the limit at 2 (an exact
        # F(q, 2) test of a balanced design); lmerTest returns the common value too
        return float(nu.mean()), None
    if np.any(nu <= 2):
        return float("nan"), (
            f"Satterthwaite df undefined for this F test: a component has nu = {nu.min():.3g} <= 2"
        )
    E = np.sum(nu / (nu - 2.0))
    if E <= q:
        return float("nan"), f"Satterthwaite df undefined: E = {E:.3g} <= q = {q}"
    return float(2.0 * E / (E - q)), None
