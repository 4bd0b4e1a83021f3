"""The residual-covariance contract: :class:`Blocks`, :class:`CovStruct` and the registry.

The residual covariance of group ``i`` is

    R_i = sigma^2 S_i C_i S_i,   S_i = diag(s(v_ij)),

with ``v_ij`` the visit index of row ``j``, ``s`` the relative standard deviations (all 1 for a
homogeneous structure) and ``C_i`` a correlation matrix built from the rows' positions.  A
structure turns positions and visits into an opaque *geometry* once per model and then returns
``C``, ``s`` and ``S C S`` with their first and second derivatives in its natural parameters for
any parameter value.  The engine only calls :meth:`CovStruct.residual`.

Every concrete structure class that sets a class attribute ``name`` registers itself in
:data:`COV_STRUCTS` under that name and its ``aliases`` when it is defined; a new structure
therefore needs no edit anywhere else (and is picked up by the conformance tests).
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
from scipy.special import expit, logit

__all__ = ["Blocks", "CovStruct", "COV_STRUCTS", "Reported", "make_cov_struct"]

#: the one registry of the available structures, by lower-case name (filled by
#: :meth:`CovStruct.__init_subclass__` as the classes are defined)
COV_STRUCTS: dict[str, type[CovStruct]] = {}

# Optimiser coordinates are clipped this far inside a bounded interval, so that a start value on
# the boundary maps to a finite coordinate.
_CLIP = 1e-12


class Blocks(NamedTuple):
    """A batch of matrices (or scale vectors) and their parameter derivatives.

    Attributes
    ----------
    value : ndarray, shape (U, n, n) or (U, n)
        One matrix (or, for :meth:`CovStruct.scales`, one vector) per group of the batch.
    d1 : ndarray, shape (k, U, n, n) or (k, U, n), or None
        First derivatives in the ``k`` natural parameters (None if not requested).
    d2 : ndarray, shape (k, k, U, n, n) or (k, k, U, n), or None
        Second derivatives (None if not requested).
    """

    value: np.ndarray
    d1: np.ndarray | None = None
    d2: np.ndarray | None = None


class Reported(NamedTuple):
    """The covariance parameters ``phi`` a structure reports (SAS's), and the maps between
    them and ``theta = (sigma^2, params)`` (analytic operations only, batch axes first)."""

    names: list[str]
    phi_of_theta: Any
    theta_of_phi: Any
    #: True if ``V`` is linear in ``phi`` (UN, TOEP, CS): no second-derivative term
    linear: bool = False


class CovStruct(ABC):
    """Base class of residual covariance structures.

    A structure models ``R_i = sigma^2 S_i C_i S_i`` (see the module docstring).  Subclasses set
    ``name`` (the registry key), ``param_names`` and ``example_params``, implement
    :meth:`correlation` and :meth:`example` and, if they depend on positions, take the position
    columns in their constructor (``position_columns``) and override :meth:`geometry`.
    Heterogeneous structures set ``homogeneous = False`` and override :meth:`scales`;
    :meth:`residual` then composes ``S C S`` and its derivatives.

    Defining a subclass with a class attribute ``name`` registers it in :data:`COV_STRUCTS`
    under ``name`` and ``aliases``; pass ``register=False`` in the class statement
    (``class Mine(CovStruct, register=False)``) to define one that stays out of the registry.

    Notes
    -----
    Arrays are batches of ``U`` groups of one size ``n``: positions ``(U, n, d)``, visits
    ``(U, n)``, matrices ``(U, n, n)``; derivatives carry leading parameter axes.  Parameters are
    *natural* (the ones SAS and nlme report, which inference works on); the optimiser sees them
    through :meth:`to_optimizer` / :meth:`from_optimizer`.
    """

    #: registry key (lower case); set on concrete classes only
    name: ClassVar[str]
    #: further registry keys of the class
    aliases: ClassVar[tuple[str, ...]] = ()
    #: names of the natural parameters (nlme's parameterisation)
    param_names: tuple[str, ...] = ()
    #: True if two rows of one group may not share a position
    unique_positions: ClassVar[bool] = False
    #: True if ``S = I``: :meth:`residual` is then :meth:`correlation`, at no extra cost
    homogeneous: ClassVar[bool] = True
    #: True if every correlation matrix has a constant term ``a J`` with ``a`` free (compound
    #: symmetry): a random intercept then duplicates it, and the model refuses the pair
    #: (``statsmodels_lmm_ext._identify``)
    constant_correlation: ClassVar[bool] = False
    #: interior parameter values of :meth:`example` for the conformance tests
    example_params: ClassVar[tuple[float, ...]] = ()

    #: a subject-level factor with one parameter set per level (SAS ``GROUP=``); every
    #: structure accepts ``group=`` (see :mod:`~statsmodels_lmm_ext.covstruct.composite`)
    group: str | None = None

    def __init__(self, *, group: str | None = None) -> None:
        self.group = _check_group(group)

    def __init_subclass__(cls, *, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _with_group(cls.__dict__["__init__"])
        if register and "name" in cls.__dict__:
            _register(cls)

    # ------------------------------------------------------------------ data
    @property
    def position_columns(self) -> list[str]:
        """Data columns holding the rows' positions (empty if none are needed)."""
        return []

    @property
    def k_params(self) -> int:
        """Number of natural parameters."""
        return len(self.param_names)

    def check_positions(self, pos: np.ndarray, columns: Sequence[str]) -> None:  # noqa: B027
        """Validate the positions ``(N, d)`` of all rows; raise ``ValueError`` on bad ones."""

    def check_design(  # noqa: B027
        self, visit: np.ndarray, groups: np.ndarray, labels: Sequence | None = None
    ) -> None:
        """Check that the data identify the parameters: ``visit`` (N,) visit indices, ``groups``
        (N,) group codes ``0..G-1``, ``labels`` the visits' labels; raise ``ValueError``."""

    def visit_index(self, pos: np.ndarray) -> np.ndarray:
        """Visit index ``(N,)`` of each row from its positions ``(N, d)``.

        Zeros if ``d == 0``, else the codes ``0, 1, ...`` of the sorted distinct values of the
        first position column.
        """
        pos = np.asarray(pos, dtype=float)
        if pos.ndim < 2 or pos.shape[1] == 0:
            return np.zeros(len(pos), dtype=np.intp)
        return np.unique(pos[:, 0], return_inverse=True)[1].reshape(-1).astype(np.intp)

    def geometry(self, pos: np.ndarray, visit: np.ndarray) -> object:
        """What the structure needs from a batch of groups, computed once per model.

        Parameters
        ----------
        pos : ndarray, shape (U, n, d)
            Positions of the rows of ``U`` groups of size ``n``.
        visit : ndarray of int, shape (U, n)
            Visit index of the same rows (:meth:`visit_index`).

        Returns
        -------
        object
            Opaque to the engine, which stores it and passes it back.  The default is ``visit``
            itself (all a structure without positions needs is the batch shape).
        """
        return np.asarray(visit)

    def batch_shape(self, geom: object) -> tuple[int, int]:
        """``(U, n)`` of a geometry; the default reads the first two axes of an array."""
        shape = np.shape(geom)
        return int(shape[0]), int(shape[1])

    # ------------------------------------------------------------- parameters
    def bounds(self, max_group_size: int) -> list[tuple[float, float]]:
        """Open interval of each natural parameter, given the largest group size."""
        return []

    def start_params(self, geometry: list[object]) -> list[np.ndarray]:
        """Candidate start values (natural scale), given the geometries of all batches; the
        caller keeps the best."""
        return [np.zeros(0)]

    # ------------------------------------------------------ matrices (contract)
    @abstractmethod
    def correlation(self, params: np.ndarray, geom: object, order: int = 0) -> Blocks:
        """Correlation matrices ``C`` (unit diagonal) and their derivatives.

        Parameters
        ----------
        params : ndarray, shape (k,)
            Natural parameters.
        geom : object
            Output of :meth:`geometry`.
        order : {0, 1, 2}
            Highest derivative wanted.

        Returns
        -------
        Blocks
            ``value`` (U, n, n), ``d1`` (k, U, n, n) if ``order >= 1``, ``d2`` (k, k, U, n, n)
            if ``order >= 2``.
        """

    def scales(self, params: np.ndarray, geom: object, order: int = 0) -> Blocks:
        """Relative standard deviations ``s`` (U, n) of the rows and their derivatives
        ``(k, U, n)``, ``(k, k, U, n)``; ones and zeros for a homogeneous structure."""
        u, n = self.batch_shape(geom)
        k = self.k_params
        return Blocks(
            np.ones((u, n)),
            np.zeros((k, u, n)) if order >= 1 else None,
            np.zeros((k, k, u, n)) if order >= 2 else None,
        )

    def residual(self, params: np.ndarray, geom: object, order: int = 0) -> Blocks:
        """``S C S`` (U, n, n) and its derivatives, as :class:`Blocks` (the engine's method).

        A homogeneous structure returns :meth:`correlation` unchanged; otherwise the product
        rule combines :meth:`scales` and :meth:`correlation`.
        """
        corr = self.correlation(params, geom, order)
        if self.homogeneous:
            return corr
        return _scale_blocks(self.scales(params, geom, order), corr, order)

    # ---------------------------------------------------- optimiser coordinates
    def to_optimizer(
        self, params: np.ndarray, bounds: Sequence[tuple[float, float]]
    ) -> np.ndarray:
        """Optimiser coordinates ``(k,)`` of natural parameters ``(k,)``.

        The default maps each parameter on its own: a scaled logit on a finite interval (the
        argument clipped to ``[1e-12, 1 - 1e-12]``), ``log(p - lo)`` on ``(lo, inf)``.
        """
        params = np.asarray(params, dtype=float)
        out = np.empty(len(bounds))
        for j, (lo, hi) in enumerate(bounds):
            p = params[j]
            if np.isinf(hi):
                out[j] = np.log(p - lo) if np.isfinite(lo) else p
            elif np.isinf(lo):
                out[j] = -np.log(hi - p)
            else:
                out[j] = logit(np.clip((p - lo) / (hi - lo), _CLIP, 1 - _CLIP))
        return out

    def from_optimizer(self, T: np.ndarray, bounds: Sequence[tuple[float, float]]) -> np.ndarray:
        """Natural parameters ``(B, k)`` of optimiser coordinates ``T`` (B, k)."""
        T = np.asarray(T, dtype=float)
        out = np.empty_like(T)
        for j, (lo, hi) in enumerate(bounds):
            t = T[:, j]
            if np.isinf(hi):
                out[:, j] = lo + np.exp(t) if np.isfinite(lo) else t
            elif np.isinf(lo):
                out[:, j] = hi - np.exp(-t)
            else:
                out[:, j] = lo + (hi - lo) * expit(t)
        return out

    def optimizer_chain(
        self, T: np.ndarray, G: np.ndarray, bounds: Sequence[tuple[float, float]]
    ) -> np.ndarray:
        """Gradients ``(B, k)`` in the optimiser coordinates ``T`` from gradients ``G`` (B, k)
        in the natural parameters (a vector-Jacobian product of :meth:`from_optimizer`)."""
        T = np.asarray(T, dtype=float)
        out = np.empty_like(T)
        for j, (lo, hi) in enumerate(bounds):
            t = T[:, j]
            if np.isinf(hi):
                d = np.exp(t) if np.isfinite(lo) else np.ones_like(t)
            elif np.isinf(lo):
                d = np.exp(-t)
            else:
                e = expit(t)
                d = (hi - lo) * e * (1.0 - e)
            out[:, j] = G[:, j] * d
        return out

    # ------------------------------------------------------------ conformance
    @classmethod
    def example(cls) -> CovStruct:
        """An instance on the conformance data's standard columns, for the conformance tests
        (``tests/test_covstruct.py``) at :attr:`example_params`.

        The columns are ``"visit"`` (integer positions ``1..T``, with gaps), ``"time"`` (real,
        within 0.3 of the visit) and the coordinates ``"x"``, ``"y"`` (within ``[0, 3]``).  The
        default calls the class without arguments.
        """
        return cls()

    # ------------------------------------------------------------ reporting
    def reported(self, scale: float, params: np.ndarray):
        """The covariance parameters as SAS prints them, if they differ from ours.

        Returns None (inference works in ``(sigma^2, params)``), or a :class:`Reported`:
        SAS's names of the ``1 + k`` parameters ``phi`` and the two maps between
        ``theta = (sigma^2, params)`` and ``phi``, written with analytic operations only (the
        Jacobians are taken by the complex step).  Inference then works in ``phi``
        (e.g. ``UN(i,j)`` of the unstructured covariance, in which ``V`` is linear).
        """
        return None

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        args = [repr(c) for c in self.position_columns]
        return f"{type(self).__name__}({', '.join(args)}{self._group_repr()})"

    def _group_repr(self) -> str:
        """``", group='f'"`` for a group-specific structure (every ``__repr__`` ends with it)."""
        return f", group={self.group!r}" if self.group is not None else ""

    @property
    def sas_name(self) -> str:
        """The SAS PROC MIXED ``type=`` of the structure."""
        return "VC"


def _check_group(group):
    if group is not None and not isinstance(group, str):
        raise TypeError(f"group= takes a column name, not {group!r}")
    return group


def _with_group(init):
    """``init`` also accepting the base class's keyword ``group`` (every structure takes it)."""
    if getattr(init, "_takes_group", False):
        return init

    @functools.wraps(init)
    def __init__(self, *args, group=None, **kwargs):
        init(self, *args, **kwargs)
        self.group = _check_group(group)

    __init__._takes_group = True
    sig = inspect.signature(init)
    if "group" not in sig.parameters:
        group = inspect.Parameter("group", inspect.Parameter.KEYWORD_ONLY, default=None)
        params = list(sig.parameters.values())
        tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
        head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        __init__.__signature__ = sig.replace(parameters=[*head, group, *tail])
    return __init__


def _register(cls: type[CovStruct]) -> None:
    """Put ``cls`` in :data:`COV_STRUCTS` under its name and aliases."""
    for key in (cls.name, *cls.aliases):
        if not isinstance(key, str) or key != key.lower() or not key:
            raise ValueError(f"{cls.__name__}: registry keys are lower-case strings, not {key!r}")
        old = COV_STRUCTS.get(key)
        # a class redefined under the same qualified name (a module reload) replaces itself
        if old is not None and (old.__module__, old.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ValueError(
                f"residual structure name {key!r} of {cls.__qualname__} is already taken by "
                f"{old.__module__}.{old.__qualname__}"
            )
    for key in (cls.name, *cls.aliases):
        COV_STRUCTS[key] = cls


def make_cov_struct(name: str, /, **kwargs: Any) -> CovStruct:
    """A residual structure by registry name (case-insensitive).

    Parameters
    ----------
    name : str
        A key of :data:`COV_STRUCTS`, e.g. ``"ar1"`` or ``"compound_symmetry"``.
    **kwargs
        Passed to the structure's constructor, e.g. ``time="visit"``.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.

    Examples
    --------
    >>> make_cov_struct("ar1", time="visit")
    AR1('visit')
    """
    key = name.lower() if isinstance(name, str) else name
    try:
        cls = COV_STRUCTS[key]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in sorted(COV_STRUCTS))
        raise ValueError(f"unknown residual structure {name!r}; known: {known}") from None
    return cls(**kwargs)


def _offdiag(u: int, n: int) -> np.ndarray:
    """``1 - I`` broadcast to ``(u, n, n)`` (read-only)."""
    return np.broadcast_to(1.0 - np.eye(n), (u, n, n))


def _scale_blocks(s: Blocks, c: Blocks, order: int) -> Blocks:
    """``R = P * C`` with ``P_jk = s_j s_k``, and its derivatives by the product rule."""
    sv = s.value
    P = sv[:, :, None] * sv[:, None, :]
    R = P * c.value
    if order < 1:
        return Blocks(R)
    ds = s.d1
    dP = ds[..., :, None] * sv[:, None, :] + sv[:, :, None] * ds[..., None, :]
    dR = dP * c.value + P * c.d1
    if order < 2:
        return Blocks(R, dR)
    cross = ds[:, None, :, :, None] * ds[None, :, :, None, :]
    d2P = (
        s.d2[..., :, None] * sv[:, None, :]
        + sv[:, :, None] * s.d2[..., None, :]
        + cross
        + np.swapaxes(cross, -1, -2)
    )
    d2R = d2P * c.value + dP[:, None] * c.d1[None] + dP[None] * c.d1[:, None] + P * c.d2
    return Blocks(R, dR, d2R)
