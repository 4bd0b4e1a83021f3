"""Residual (R-side) covariance structures.

A structure describes the within-group residual covariance ``R_i = sigma^2 S_i C_i S_i`` of
``e_i ~ N(0, R_i)``: a correlation matrix ``C_i`` built from the rows' positions (a time or a set
of coordinates) and relative standard deviations ``S_i`` (the identity for the homogeneous
structures here).  The contract (:class:`CovStruct`, :class:`Blocks`) lives in
:mod:`~statsmodels_lmm_ext.covstruct.base`, one small module per family holds the structures,
and every structure registers itself in :data:`COV_STRUCTS` when it is defined.

Parameters follow nlme (``rho`` for compound symmetry, AR(1) and the continuous-time AR(1);
``range`` and ``nugget`` for the spatial structures) so that estimates can be compared directly
with ``nlme::gls``/``nlme::lme``.  The SAS PROC MIXED and mmrm equivalents are given in each
docstring.
"""

from .base import COV_STRUCTS, Blocks, CovStruct, make_cov_struct
from .basic import CompoundSymmetry, CompoundSymmetryH, Independence
from .composite import (
    FixedWeights,
    GroupSpecific,
    Heteroscedastic,
    VarExp,
    VarFunc,
    VarIdent,
    VarPower,
)
from .spatial import Exponential, Gaussian
from .temporal import AR1, AR1H, Power
from .unstructured import AnteDependence, Toeplitz, Unstructured

__all__ = [
    "Blocks",
    "CovStruct",
    "Independence",
    "CompoundSymmetry",
    "AR1",
    "Power",
    "Exponential",
    "Gaussian",
    "GroupSpecific",
    "Heteroscedastic",
    "VarFunc",
    "VarIdent",
    "VarPower",
    "VarExp",
    "FixedWeights",
    "CompoundSymmetryH",
    "AR1H",
    "Unstructured",
    "Toeplitz",
    "AnteDependence",
    "COV_STRUCTS",
    "make_cov_struct",
]
