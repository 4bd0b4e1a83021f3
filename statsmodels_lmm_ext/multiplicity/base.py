"""The contract of a multiplicity adjustment, the registry :data:`ADJUSTMENTS` and :func:`adjust`.

An adjustment is a small :class:`Adjustment` subclass that owns both halves of simultaneous
inference for one family of estimates: the adjusted p-values and the critical values of the
intervals.  :func:`register` puts an instance into :data:`ADJUSTMENTS` as the class is defined;
:func:`adjust` looks the method up there and applies it family by family.  It owns the rules
that are not any one method's: a family of one estimate is not adjusted, and a method that
applies only to pairwise comparisons is replaced (Tukey by Sidak, as emmeans does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import stats

__all__ = [
    "ADJUSTMENTS",
    "AdjustedInference",
    "Adjustment",
    "Family",
    "adjust",
    "check_adjust",
    "register",
]


@dataclass
class Family:
    """One family of simultaneous inferences.

    Parameters
    ----------
    rows : ndarray of int
        Positions of the family's estimates in the table.
    n_means : int, optional
        Number of means compared, for a family of pairwise comparisons (Tukey).
    pairwise : bool
        True for the set of all pairwise comparisons of ``n_means`` means.
    rank : int
        Rank of the family's linear functions (Scheffe).
    corr : ndarray, optional
        Correlation matrix of the family's estimates (multivariate t).
    """

    rows: np.ndarray
    n_means: int | None = None
    pairwise: bool = False
    rank: int = 1
    corr: np.ndarray | None = None


@dataclass
class AdjustedInference:
    """p-values and critical values of a table, with the methods actually used."""

    pvalues: np.ndarray
    crit: np.ndarray
    method: str
    ci_method: str
    notes: list[str] = field(default_factory=list)


class Adjustment(ABC):
    """A multiplicity adjustment: adjusted p-values and simultaneous critical values.

    Subclasses set the class attributes, implement :meth:`pvalues` and either implement
    :meth:`critical` or name the adjustment whose intervals they use in ``interval_method``,
    and are registered with :func:`register`.  Both methods see one family of ``m >= 2``
    estimates (:func:`adjust` leaves a family of one unadjusted itself) and return one value
    per row of the family; a row without positive df gets NaN.

    Attributes
    ----------
    name : str
        The key in :data:`ADJUSTMENTS`, the ``adjust=`` value and the name in the notes.
    description : str
        One line for listings; also ``str(adjustment)``.
    aliases : tuple of str
        Further ``adjust=`` values that select this adjustment (not listed in the registry).
    interval_method : str or None
        Name of the adjustment whose critical values give this one's intervals (Holm and FDR
        use Bonferroni intervals, as emmeans); None when the adjustment has its own.
    non_pairwise : str or None
        For a method valid only for one family of pairwise comparisons: the adjustment used
        instead on any other family, with a note (Tukey -> Sidak).
    adjusts_single : bool
        True if a family of one estimate is adjusted too (Scheffe, whose p-value depends on
        the rank of the family's linear functions).
    alias_of : str or None
        For an entry listed under a second name: the adjustment that is used and reported
        (``"dunnett"`` is the ``"mvt"`` method).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    interval_method: ClassVar[str | None] = None
    non_pairwise: ClassVar[str | None] = None
    adjusts_single: ClassVar[bool] = False
    alias_of: ClassVar[str | None] = None

    @abstractmethod
    def pvalues(self, t: np.ndarray, df: np.ndarray, family: Family) -> np.ndarray:
        """Two-sided adjusted p-values of the family's t statistics ``t`` with df ``df``."""

    def critical(self, df: np.ndarray, family: Family, level: float) -> np.ndarray:
        """Critical values ``c``: the intervals ``estimate +- c * se`` have simultaneous
        coverage ``level`` over the family.  By default those of ``interval_method``."""
        if self.interval_method is None:
            raise NotImplementedError(f"adjustment {self.name!r} defines no critical values")
        return ADJUSTMENTS[self.interval_method].critical(df, family, level)

    def family_words(self, families: list[Family]) -> str:
        """How the notes describe the families: ``"for 3 tests"``."""
        return f"for {_join(sorted({len(f.rows) for f in families}))} tests"

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.description}>"


#: multiplicity adjustments by name (the one registry of adjustments; filled by :func:`register`)
ADJUSTMENTS: dict[str, Adjustment] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type[Adjustment]) -> type[Adjustment]:
    """Class decorator: put an instance of ``cls`` into :data:`ADJUSTMENTS` under ``cls.name``
    and its aliases into the alias table.  Registration order is the order of the listing."""
    taken = [n for n in (cls.name, *cls.aliases) if n in ADJUSTMENTS or n in _ALIASES]
    if taken:
        raise ValueError(f"adjustment names {taken} are already registered")
    if cls.interval_method is None and cls.critical is Adjustment.critical:
        raise TypeError(f"{cls.__name__} must define critical() or set interval_method")
    ADJUSTMENTS[cls.name] = cls()
    _ALIASES.update(dict.fromkeys(cls.aliases, cls.name))
    return cls


def check_adjust(adjust: str | None) -> str:
    """Validate an adjustment name; ``None`` means ``"none"``."""
    if adjust is None:
        return "none"
    key = str(adjust).lower()
    if key not in ADJUSTMENTS and key not in _ALIASES:
        raise ValueError(f"unknown adjustment {adjust!r}; choose one of {list(ADJUSTMENTS)}")
    return key


def _lookup(key: str) -> Adjustment:
    """The adjustment a checked name selects, through aliases and listed second names."""
    adj = ADJUSTMENTS[_ALIASES.get(key, key)]
    return ADJUSTMENTS[adj.alias_of] if adj.alias_of else adj


def _unadjusted(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    return 2 * stats.t.sf(np.abs(t), df)


def adjust(
    t,
    df,
    families: list[Family],
    method: str | None = "none",
    level: float = 0.95,
) -> AdjustedInference:
    """Adjust two-sided t tests and confidence intervals for multiplicity.

    Parameters
    ----------
    t, df : array_like
        t statistics and their (per-row) degrees of freedom; ``inf`` for normal inference.
    families : list of Family
        The families within which the adjustment applies (emmeans: one per ``by`` group).
    method : str
        One of :data:`ADJUSTMENTS` or an alias.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    AdjustedInference
        ``pvalues`` and per-row critical values ``crit`` (interval = estimate +- crit * se),
        the methods used for p-values and intervals and the notes to print with the table.
    """
    t = np.asarray(t, dtype=float)
    df = np.asarray(df, dtype=float)
    adj = _lookup(check_adjust(method))
    notes: list[str] = []
    if adj.non_pairwise is not None and not all(f.pairwise for f in families):
        notes.append(
            f'Note: adjust = "{adj.name}" was changed to "{adj.non_pairwise}" because '
            f'"{adj.name}" is only appropriate for one set of pairwise comparisons'
        )
        adj = ADJUSTMENTS[adj.non_pairwise]
    unadjusted = ADJUSTMENTS["none"]
    if not adj.adjusts_single and max((len(f.rows) for f in families), default=0) <= 1:
        adj = unadjusted
    ci = adj if adj.interval_method is None else ADJUSTMENTS[adj.interval_method]
    p = np.full(len(t), np.nan)
    crit = np.full(len(t), np.nan)
    for fam in families:
        r = np.asarray(fam.rows, dtype=int)
        single = len(r) == 1
        p_adj = unadjusted if single and not adj.adjusts_single else adj
        p[r] = p_adj.pvalues(t[r], df[r], fam)
        crit[r] = (unadjusted if single else ci).critical(df[r], fam, level)
    p = np.clip(p, 0.0, 1.0)
    if adj is not unadjusted:
        notes.append(f"P value adjustment: {adj.name} method {adj.family_words(families)}")
    if ci is not unadjusted:
        what = ci.family_words(families).replace("tests", "estimates")
        notes.append(f"Conf-level adjustment: {ci.name} method {what}")
    return AdjustedInference(p, crit, adj.name, ci.name, notes)


def _join(values) -> str:
    return " / ".join(str(v) for v in values)
