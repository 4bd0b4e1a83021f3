"""Kenward-Roger adjusted covariance and scaled F test (Kenward and Roger 1997).

References
----------
Kenward, M. G. and Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics* 53, 983-997.
"""

from __future__ import annotations

import numpy as np

from .variance_model import VarianceModel

__all__ = ["kenward_roger_cov", "kenward_roger_f"]


def kenward_roger_cov(vm: VarianceModel, W: np.ndarray, linear: bool = False) -> np.ndarray:
    """Kenward-Roger adjusted covariance of beta_hat (Kenward and Roger 1997, eq. 3).

    ``Phi_A = Phi + 2 Phi {sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)} Phi``; ``linear`` drops
    the second-derivative term ``R_kl`` (SAS ``ddfm=kr(linear)``).
    """
    b = vm.blocks
    Phi = vm.Phi
    P = b["P"]
    PPhiP = np.einsum("kab,bc,lcd->klad", P, Phi, P)
    inner = b["Q"] - PPhiP
    if not linear:
        inner = inner - 0.25 * b["R"]
    Lam = np.einsum("kl,klab->ab", W, inner)
    PhiA = Phi + 2.0 * Phi @ Lam @ Phi
    return (PhiA + PhiA.T) / 2.0


def kenward_roger_f(
    vm: VarianceModel, L: np.ndarray, W: np.ndarray, PhiA: np.ndarray, rhs=None
) -> dict:
    """Kenward-Roger scaled F test of ``L beta = 0``: F, numerator df q, denominator df m.

    Formulas of Kenward and Roger (1997, section 4) with ``Theta = L'(L Phi L')^-1 L``.
    Returns a dict (testing ``L beta = rhs``) with ``F`` (scaled), ``F_unscaled``, ``df_num``,
    ``df_denom`` (m), ``scaling`` (lambda), ``E``, ``V``, ``rho`` and ``reason`` (why the df
    are undefined, or None).
    """
    q = L.shape[0]
    Phi = vm.Phi
    P = vm.blocks["P"]
    beta = vm.beta
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    M = np.einsum("ab,bc,kcd,de->kae", Theta, Phi, P, Phi)  # Theta Phi P_k Phi
    tr = np.einsum("kaa->k", M)
    A1 = tr @ W @ tr
    A2 = np.einsum("kl,kab,lba->", W, M, M)
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    Estar = 1.0 / (1.0 - A2 / q)
    Vstar = (2.0 / q) * (1.0 + c1 * B) / ((1.0 - c2 * B) ** 2 * (1.0 - c3 * B))
    rho = Vstar / (2.0 * Estar**2)
    Lb = L @ beta - (0.0 if rhs is None else rhs)
    Fu = float(Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)) / q
    if q * rho <= 1.0 or not np.isfinite(rho):
        return {
            "F": Fu,
            "F_unscaled": Fu,
            "df_num": q,
            "df_denom": float("nan"),
            "scaling": float("nan"),
            "E": Estar,
            "V": Vstar,
            "rho": rho,
            "reason": f"Kenward-Roger df undefined (q * rho = {q * rho:.3g} <= 1); the F "
            "statistic is unscaled",
        }
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (Estar * (m - 2.0))
    return {
        "F": lam * Fu,
        "F_unscaled": Fu,
        "df_num": q,
        "df_denom": float(m),
        "scaling": float(lam),
        "E": Estar,
        "V": Vstar,
        "rho": rho,
        "reason": None,
    }
