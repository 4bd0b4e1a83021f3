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
    # sum_kl W_kl P_k Phi P_l = sum_k (P_k Phi) (sum_l W_kl P_l): K^2 p^2 + K p^3, not K^2 p^4
    WP = np.tensordot(W, P, axes=(1, 0))
    Lam = np.tensordot(W, b["Q"], axes=([0, 1], [0, 1])) - np.einsum("kab,kbc->ac", P @ Phi, WP)
    if not linear:
        Lam = Lam - 0.25 * np.tensordot(W, b["R"], axes=([0, 1], [0, 1]))
    PhiA = Phi + 2.0 * Phi @ Lam @ Phi
    return (PhiA + PhiA.T) / 2.0


# ``1 - A2/q`` and ``1 - c2 B`` closer than this are equal (see _df_and_scaling): each is 1
# minus a sum of products of O(1) numbers, and rounding leaves equal ones ~1e-15 apart.
_EQUAL = 1e-10


def _df_and_scaling(q: int, A1: float, A2: float) -> tuple[float, float]:
    """Kenward and Roger's (1997) ``m`` and ``lambda`` from ``A1``, ``A2``, written without
    their removable singularities.

    With ``e = 1 - A2/q = 1/E*``, ``V0 = 1 + c1 B``, ``V1 = 1 - c2 B``, ``V2 = 1 - c3 B`` the
    paper's ``q rho = (e/V1)^2 V0/V2``, hence

        m = 4 + (q+2)/(q rho - 1) = 4 + (q+2) V2 / ((e/V1)^2 V0 - V2),
        lambda = m e / (m - 2).

    The exact F tests have ``e = V1`` identically: one-row tests (``q = 1``, any model) and
    the tests that Kenward and Roger show to be exact, inside one error stratum of a balanced
    design (``A1/A2 = q``) and Hotelling's T^2 (``A1/A2 = 2/(q+1)``).  Since
    ``2 V0 + q V2 = (q+2) V1`` always, ``e = V1`` gives

        m = 4 + (q+2) V2 / (V0 - V2),   lambda = m (V0 - V2) / (q+2),

    where ``V0 - V2 = (q+2) B / (3q + 2(1-g)) > 0``: no singularity at all.  The paper's form
    divides by ``V2`` (zero at m = 4: rounding gives ``rho = +-inf`` and m = 4 or NaN at
    random) and by ``e``, ``V1``, ``m - 2`` (all zero at m = 2), and loses half its digits
    near those points; this one is exact there (m = d, lambda = 1 in a stratum;
    ``lambda = (n-q)/(n-1)`` for Hotelling's T^2 on n subjects).  pbkrtest reaches the same
    values at m = 4 through IEEE infinities, at m = 2 by taking ``e/V1 = 1`` when both are
    below 1e-14 and lambda = 1 within 0.01 of m = 2 (right in a stratum, not for Hotelling).
    For ``q = 1``, ``m = 2/A1`` (the Satterthwaite df with the same ``W``) and ``lambda = 1``.
    """
    if q == 1:
        with np.errstate(divide="ignore"):
            return 2.0 / A1, 1.0
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    e, V0, V1, V2 = 1.0 - A2 / q, 1.0 + c1 * B, 1.0 - c2 * B, 1.0 - c3 * B
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(e - V1) <= _EQUAL:
            m = 4.0 + (q + 2.0) * V2 / (V0 - V2)
            return float(m), float(m * (V0 - V2) / (q + 2.0))
        m = 4.0 + (q + 2.0) * V2 / ((e / V1) ** 2 * V0 - V2)
        return float(m), float(e if np.isinf(m) else m * e / (m - 2.0))


def kenward_roger_f(
    vm: VarianceModel, L: np.ndarray, W: np.ndarray, PhiA: np.ndarray, rhs=None
) -> dict:
    """Kenward-Roger scaled F test of ``L beta = 0``: F, numerator df q, denominator df m.

    Formulas of Kenward and Roger (1997, section 4) with ``Theta = L'(L Phi L')^-1 L``, ``m``
    and ``lambda`` as in :func:`_df_and_scaling`.  Returns a dict (testing ``L beta = rhs``)
    with ``F`` (scaled), ``F_unscaled``, ``df_num``, ``df_denom`` (m), ``scaling`` (lambda),
    ``A1``, ``A2`` and ``reason`` (why the df are undefined, or None).
    """
    q = L.shape[0]
    Phi = vm.Phi
    P = vm.blocks["P"]
    beta = vm.beta
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    M = (Theta @ Phi) @ P @ Phi  # Theta Phi P_k Phi, (K, p, p)
    tr = np.einsum("kaa->k", M)
    A1 = float(tr @ W @ tr)
    A2 = float(np.einsum("kab,kba->", M, np.tensordot(W, M, axes=(1, 0))))
    m, lam = _df_and_scaling(q, A1, A2)
    Lb = L @ beta - (0.0 if rhs is None else rhs)
    Fu = float(Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)) / q
    out = {"F": Fu, "F_unscaled": Fu, "df_num": q, "df_denom": m, "scaling": lam, "A1": A1,
           "A2": A2, "reason": None}  # fmt: skip
    if not m > 0:
        out.update(df_denom=float("nan"), scaling=float("nan"))
        out["reason"] = f"Kenward-Roger df undefined (m = {m:.3g}); the F statistic is unscaled"
    elif not (np.isfinite(lam) and lam > 0):
        out["scaling"] = float("nan")
        out["reason"] = (
            f"Kenward-Roger scaling undefined (lambda = {lam:.3g}); the F statistic is unscaled"
        )
    else:
        out["F"] = lam * Fu
    return out
