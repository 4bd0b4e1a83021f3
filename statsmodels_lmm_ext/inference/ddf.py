"""Denominator-degrees-of-freedom methods: ONE registry of objects that dispatch.

Each method owns the covariance of ``beta_hat`` it uses, the df of single contrasts and of F
tests, its default information matrix and whether it needs a REML fit.  The rest of the package
looks methods up in :data:`DDF_METHODS` (through :func:`check_ddf`) and calls them; nothing else
branches on method names.

Adding a method: subclass :class:`DDFMethod`, implement ``df_rows`` and ``f`` (and ``cov`` if
it adjusts the covariance), instantiate it with :func:`register`; the conformance tests in
``tests/test_inference_ddf.py`` run every registered method.
"""

from __future__ import annotations

import numpy as np

from .kenward_roger import kenward_roger_cov, kenward_roger_f
from .satterthwaite import satterthwaite_df, satterthwaite_df_1d
from .variance_model import INFORMATION, VarianceModel

__all__ = ["DDF_METHODS", "DDFMethod", "check_ddf", "register"]

#: the registry: name -> method object (iteration gives the method names)
DDF_METHODS: dict[str, DDFMethod] = {}
_ALIASES: dict[str, str] = {}


class DDFMethod:
    """A denominator-df method.

    Attributes
    ----------
    name, description, sas : str
        Registry key, what it is, and the SAS ``ddfm=`` equivalent.
    aliases : tuple of str
    default_information : {"observed", "expected"} or None
        Information matrix for ``W = Cov(theta_hat)`` of models whose covariance parameters
        are all G-side (random effects, variance components, ``sigma^2`` of independent
        residuals); None if the method needs no ``W``.
    residual_information : {"observed", "expected"} or None
        Information matrix for models with residual-structure (R-side) parameters, if it
        differs from ``default_information``: each model class gets the choice of the software
        that is the reference for it.
    information_source : str
        Whose choice ``default_information`` is.
    residual_information_source : str
        Whose choice ``residual_information`` is.
    requires_reml : bool
    """

    name = ""
    description = ""
    sas = ""
    aliases: tuple[str, ...] = ()
    default_information: str | None = None
    residual_information: str | None = None
    information_source = ""
    residual_information_source = ""
    requires_reml = False

    @property
    def uses_information(self) -> bool:
        return self.default_information is not None

    def _default(self, vm: VarianceModel | None) -> tuple[str | None, str]:
        """The default information for ``vm`` and whose choice it is."""
        if vm is not None and vm.has_residual_structure and self.residual_information:
            return self.residual_information, self.residual_information_source
        return self.default_information, self.information_source

    def information(self, information: str | None, vm: VarianceModel | None = None) -> str | None:
        """The information matrix used (validated), or None if the method needs none.

        ``information`` given wins; otherwise the default of the model's class
        (:attr:`residual_information` if ``vm`` has residual-structure parameters, else
        :attr:`default_information`).
        """
        if information is not None and information not in INFORMATION:
            raise ValueError(f"information must be one of {INFORMATION}, not {information!r}")
        if not self.uses_information:
            return information
        return information or self._default(vm)[0]

    def information_note(self, information: str | None, vm: VarianceModel | None = None) -> str:
        """A line for tables' notes saying which information matrix gave ``W`` and why
        (empty if the method needs none)."""
        if not self.uses_information:
            return ""
        info, source = self._default(vm)
        if information is not None:
            info, source = self.information(information, vm), "set by information="
        else:
            source = f"default {source}"
        return f"Information matrix: {info} ({source})"

    def cov(self, vm: VarianceModel, W) -> np.ndarray:
        """Covariance of ``beta_hat`` used by the method (default ``Phi``)."""
        return vm.Phi

    def df_rows(self, vm: VarianceModel, L: np.ndarray, W, df_resid: float) -> np.ndarray:
        """df of each one-row contrast of ``L``."""
        raise NotImplementedError

    def f(self, vm, L, W, cov, rhs, df_resid) -> dict:
        """F test of ``L beta = rhs``: ``F``, ``F_unscaled``, ``df_num``, ``df_denom``,
        ``scaling`` and ``reason`` (None, or why the df are undefined)."""
        q = L.shape[0]
        d = L @ vm.beta - rhs
        F = float(d @ np.linalg.solve(L @ cov @ L.T, d)) / q
        ddf, reason = self.f_df(vm, L, W, df_resid)
        return {"F": F, "F_unscaled": F, "df_num": q, "df_denom": ddf, "scaling": 1.0,
                "reason": reason}  # fmt: skip

    def f_df(self, vm, L, W, df_resid) -> tuple[float, str | None]:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<DDFMethod {self.name!r}: {self.description}>"


def register(method: DDFMethod) -> DDFMethod:
    """Add a method (and its aliases) to :data:`DDF_METHODS`."""
    DDF_METHODS[method.name] = method
    for a in method.aliases:
        _ALIASES[a] = method.name
    return method


def check_ddf(ddf) -> DDFMethod:
    """The registered method for a name or alias (case and ``_``/``-`` insensitive)."""
    if isinstance(ddf, DDFMethod):
        return ddf
    key = str(ddf).lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DDF_METHODS:
        raise ValueError(f"unknown ddf method {ddf!r}; choose one of {list(DDF_METHODS)}")
    return DDF_METHODS[key]


class Satterthwaite(DDFMethod):
    name = "satterthwaite"
    description = "Satterthwaite (SAS ddfm=satterthwaite; lmerTest)"
    sas = "satterthwaite"
    aliases = ("sat",)
    default_information = "observed"  # the Hessian, as lmerTest and SAS
    information_source = "as in lmerTest and SAS PROC MIXED"

    def df_rows(self, vm, L, W, df_resid):
        return satterthwaite_df_1d(vm, L, W)

    def f_df(self, vm, L, W, df_resid):
        return satterthwaite_df(vm, L, W)


class KenwardRoger(DDFMethod):
    """Kenward-Roger: adjusted covariance ``Phi_A`` and scaled F.

    The default information follows the reference software of the model's class: "expected"
    for models with G-side parameters only (independent residuals), as Kenward and Roger
    (1997), pbkrtest and lmerTest (lme4 models); "observed" for models with a residual
    structure, as SAS PROC MIXED (``ddfm=kr``) and the R package mmrm, the references for
    those models.
    """

    sas = "kr"
    default_information = "expected"
    residual_information = "observed"
    information_source = "for models with independent residuals, as pbkrtest and lmerTest"
    residual_information_source = "for models with a residual structure, as SAS PROC MIXED, mmrm"
    requires_reml = True

    def __init__(self, linear: bool):
        self.linear = linear
        if linear:
            self.name = "kenward-roger-linear"
            self.aliases = ("kenward-roger(linear)", "kr-linear")
            self.sas = "kr(linear)"
            self.description = (
                "Kenward-Roger without the second-derivative term (SAS ddfm=kr(linear))"
            )
        else:
            self.name = "kenward-roger"
            self.aliases = ("kr",)
            self.description = "Kenward-Roger, adjusted covariance (SAS ddfm=kr; pbkrtest)"

    def cov(self, vm, W):
        return kenward_roger_cov(vm, W, linear=self.linear)

    def df_rows(self, vm, L, W, df_resid):
        return satterthwaite_df_1d(vm, L, W)  # for one row m equals the Satterthwaite df

    def f(self, vm, L, W, cov, rhs, df_resid):
        return kenward_roger_f(vm, L, W, cov, rhs=rhs)


class Residual(DDFMethod):
    name = "residual"
    description = "residual df N - p (SAS ddfm=residual)"
    sas = "residual"

    def df_rows(self, vm, L, W, df_resid):
        return np.full(L.shape[0], float(df_resid))

    def f_df(self, vm, L, W, df_resid):
        return float(df_resid), None


class Asymptotic(DDFMethod):
    name = "asymptotic"
    description = "normal / chi-square (statsmodels' default; infinite df)"
    sas = "none"
    aliases = ("normal", "wald")

    def df_rows(self, vm, L, W, df_resid):
        return np.full(L.shape[0], np.inf)

    def f_df(self, vm, L, W, df_resid):
        return np.inf, None


for _m in (Satterthwaite(), KenwardRoger(False), KenwardRoger(True), Residual(), Asymptotic()):
    register(_m)
