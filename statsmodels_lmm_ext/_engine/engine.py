"""The batched per-group likelihood engine (no formulas, no pandas).

Model, for group ``i`` with ``n_i`` rows::

    y_i = X_i beta + Z_i b_i + e_i,   V_i = sigma^2 H_i,
    H_i = sum_m lam_m K_mi + R_i(rho)

where the ``K_mi`` are fixed matrices built from the random-effects design (one per distinct
element of ``Psi = G / sigma^2``, lower triangle, and one per variance component) and
``R_i = S_i C_i S_i`` comes from the residual structure.

References
----------
Pinheiro, J. C. and Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*. Springer.
Harville, D. A. (1977). Maximum likelihood approaches to variance component estimation.
*JASA* 72, 320-338.
"""

from __future__ import annotations

import numpy as np

from .._threads import blas_threads
from ..covstruct import CovStruct
from .conditional import ConditionalMixin
from .conditioning import Conditioning
from .derivatives import DerivativesMixin
from .designs import CellDesign
from .layout import LayoutMixin
from .likelihood import LikelihoodMixin


class Engine(LayoutMixin, LikelihoodMixin, DerivativesMixin, ConditionalMixin):
    """Likelihood, gradient and derivative blocks of a linear mixed model.

    Parameters
    ----------
    y : ndarray (N,)
    X : ndarray (N, p)
        Full column rank (checked by the caller).
    groups : ndarray (N,) of int
        Group codes ``0 .. G-1``.
    Z : ndarray (N, q)
        Random-effects design (``q`` may be 0).
    Zvc : list of ndarray (N, m_j)
        Variance-component designs, zero-padded per row.
    positions : ndarray (N, d)
        Rows' positions for the residual structure (``d`` may be 0).
    cov_struct : CovStruct
    mode : {"auto", "pattern", "group"}
        Units are visit patterns when that saves work (``auto``), or always/never.
    qr : tuple, optional
        The pivoted QR of ``X`` (:func:`~.conditioning.pivoted_qr`) when already computed.
    cond : Conditioning, optional
        The conditioning of ``(X, y)`` when already computed (the model's, from its rank
        check); ``qr`` is then not used.

    Notes
    -----
    The likelihood and derivative blocks are computed on the conditioned ``(Xc, yc)``
    (:mod:`.conditioning`) and returned on the user's scale; ``X`` and ``y`` stay the user's
    for BLUPs and simulation.
    """

    @blas_threads()
    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        groups: np.ndarray,
        Z: np.ndarray,
        Zvc: list[np.ndarray],
        positions: np.ndarray,
        cov_struct: CovStruct,
        mode: str = "auto",
        qr=None,
        cond: Conditioning | None = None,
    ):
        self.y = np.ascontiguousarray(y, dtype=float)
        # a design kept in the formula's form (.designs) stays so: the engine only gathers
        # its rows, multiplies it by vectors and maps its columns
        self.X = X if isinstance(X, CellDesign) else np.ascontiguousarray(X, dtype=float)
        # the likelihood works on the conditioned design and response (DESIGN.md section 9)
        self.cond = Conditioning(self.X, self.y, qr=qr) if cond is None else cond
        self.Xc, self.yc = self.cond.Xt, self.cond.yt
        Z = np.asarray(Z, dtype=float).reshape(len(y), -1)
        # a broadcast column (the model's random intercept) stays a view
        self.Z = Z if Z.strides[0] == 0 else np.ascontiguousarray(Z)
        self.Zvc = [np.asarray(z, dtype=float).reshape(len(y), -1) for z in Zvc]
        self.positions = np.asarray(positions, dtype=float).reshape(len(y), -1)
        self.cov_struct = cov_struct
        self.visit = np.asarray(cov_struct.visit_index(self.positions), dtype=np.int64)
        self.nobs, self.k_fe = self.X.shape
        self.k_re = self.Z.shape[1]
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = len(self.Zvc)
        self.k_lin = self.k_re2 + self.k_vc
        self.k_corr = cov_struct.k_params
        self.groups = np.asarray(groups)
        self.n_groups = int(self.groups.max()) + 1 if self.nobs else 0
        self._layout()
        self.max_group_size = int(self.sizes.max())
        self.mode = self._choose_mode(mode)
        self.chunks = self._build_chunks(self.mode == "pattern")
