"""Fit candidate covariance models in parallel and rank them (``select_cov_struct``).

Each candidate is one call of :func:`~statsmodels_lmm_ext.mixedlm` with the common formula,
data and groups and the candidate's own keywords, then ``fit(**fit_kwargs)``; the candidates
run through joblib (each worker builds and fits its model).  The fits are ranked by the
criterion in :func:`~statsmodels_lmm_ext.selection.compare.compare`'s table; a candidate that
raises (a structure the data do not identify, a covariance that is not positive definite, ...)
is listed with its reason, never dropped, and one that did not converge is flagged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from joblib import Parallel, delayed
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .._display import NotedFrame
from .._formula import formula_names, namespace_for
from .._threads import blas_threads
from ..bootstrap.parallel import check_n_jobs
from ..covstruct import CovStruct
from ..model import mixedlm
from ..model_formula import caller_namespace
from .compare import COLUMNS, comparison_table

__all__ = ["CovStructSelection", "select_cov_struct"]

CRITERIA = ("aic", "aicc", "bic")
#: keywords a candidate may set (those of :func:`mixedlm` apart from formula, data, groups)
CANDIDATE_KEYS = ("cov_struct", "re_formula", "vc_formula", "variance", "weights")


@dataclass
class CovStructSelection:
    """Result of :func:`select_cov_struct`.

    Attributes
    ----------
    table : DataFrame
        :func:`compare`'s table of the fits that succeeded, sorted by the criterion (best
        first), with ``delta`` (criterion minus the best) and ``converged``; then one row per
        failed candidate with its reason in ``note``.
    best : MixedLMResults
        The fit with the smallest criterion.
    criterion : str
    results : dict
        Fitted results by candidate name (successful fits only).
    failures : dict
        Reason by candidate name for the candidates whose fit raised.
    """

    table: pd.DataFrame
    best: object
    criterion: str
    results: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return repr(self.table)


def _candidate(spec, common_re) -> dict:
    """A candidate's :func:`mixedlm` keywords from a CovStruct or a dict of keywords."""
    if isinstance(spec, CovStruct):
        return {"cov_struct": spec, "re_formula": common_re}
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(CANDIDATE_KEYS))
        if unknown:
            raise ValueError(
                f"candidate keywords {unknown} are not allowed; a candidate may set "
                f"{', '.join(CANDIDATE_KEYS)} (formula, data and groups are common to all)"
            )
        return {"re_formula": common_re, **spec}
    raise TypeError(
        "each candidate must be a CovStruct (e.g. lmm.AR1(time='visit')) or a dict of "
        f"mixedlm keywords ({', '.join(CANDIDATE_KEYS)}); got {type(spec).__name__}"
    )


def _name(kw: dict) -> str:
    cs = kw.get("cov_struct")
    name = repr(cs) if cs is not None else "Independence()"
    if kw.get("re_formula") not in (None, "0", "0 + 1", "-1"):
        name += f" + re({kw['re_formula']})"
    if kw.get("vc_formula"):
        name += f" + vc({', '.join(kw['vc_formula'])})"
    if kw.get("variance") is not None:
        name += f" + variance({kw['variance']!r})"
    return name


def _specs(candidates, re_formula) -> dict:
    """Candidate name -> :func:`mixedlm` keywords."""
    if isinstance(candidates, Mapping):
        specs = {str(k): _candidate(v, re_formula) for k, v in candidates.items()}
    else:
        specs = {}
        for spec in candidates:
            kw = _candidate(spec, re_formula)
            name = _name(kw)
            if name in specs:
                raise ValueError(f"candidate {name} is given twice")
            specs[name] = kw
    if not specs:
        raise ValueError("candidates is empty: give the covariance structures to compare")
    return specs


def _formula_columns(formula: str, specs: dict) -> set:
    """Names used by the formulas of all candidates."""
    names = set(formula_names(formula))
    for kw in specs.values():
        if isinstance(kw.get("re_formula"), str):
            names |= formula_names(kw["re_formula"])
        for f in (kw.get("vc_formula") or {}).values():
            names |= formula_names(f)
    return names


def _environment(formula: str, specs: dict, data: pd.DataFrame, namespace) -> dict:
    """The caller's names the formulas of all candidates need (sent to the workers)."""
    return namespace_for(_formula_columns(formula, specs), data.columns, namespace)


def _fit_one(formula, data, groups, kw, eval_env, fit_kwargs, missing="none"):
    """``(results, reason, notes)``; ``reason`` is "" when the fit succeeded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # the model's construction (a pivoted QR of X) runs under the package's BLAS limit
            # too: a multi-threaded QR competing with the other workers is 10x slower
            with blas_threads():
                model = mixedlm(
                    formula, data, groups=groups, eval_env=eval_env, missing=missing, **kw
                )
                res = model.fit(**fit_kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            return None, f"{type(exc).__name__}: {exc}", []
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return res, "", notes


def _table(fits: dict, failures: dict, criterion: str, notes: dict) -> pd.DataFrame:
    if fits:
        first = comparison_table(list(fits.values()), list(fits))
        names = list(first.sort_values(criterion, kind="stable").index)
        table = comparison_table([fits[n] for n in names], names)
    else:
        table = pd.DataFrame(columns=COLUMNS)
    table.insert(COLUMNS.index("bic") + 1, "delta", table[criterion] - table[criterion].min())
    table["converged"] = [bool(getattr(fits[n], "converged", True)) for n in table.index]
    for n in table.index:
        if notes.get(n):
            table.loc[n, "note"] = "; ".join(filter(None, [table.loc[n, "note"], *notes[n]]))
    failed = pd.DataFrame(
        {"structure": list(failures), "note": [f"fit failed: {r}" for r in failures.values()]},
        index=list(failures),
    )
    failed["converged"] = False
    out = NotedFrame(pd.concat([table, failed]) if len(failed) else table)
    out.attrs["title"] = f"Covariance structures ranked by {criterion.upper()}"
    out.attrs["notes"] = list(getattr(table, "attrs", {}).get("notes", []))
    if failures:
        out.attrs["notes"].append(f"{len(failures)} candidate(s) failed to fit (listed last)")
    return out


def select_cov_struct(
    formula: str,
    data: pd.DataFrame,
    groups=None,
    candidates: Sequence | Mapping = (),
    *,
    criterion: str = "aic",
    re_formula: str | None = "0",
    n_jobs: int | None = 1,
    missing: str = "none",
    eval_env=None,
    **fit_kwargs,
) -> CovStructSelection:
    """Fit candidate covariance models and rank them by an information criterion.

    Parameters
    ----------
    formula : str
        Fixed-effects formula, common to all candidates (REML comparisons need the same
        fixed effects).
    data : DataFrame
    groups : str or array_like
        Grouping column (subjects).
    candidates : sequence or mapping
        Each a :class:`~statsmodels_lmm_ext.CovStruct` (fitted with ``re_formula``) or a dict
        of :func:`~statsmodels_lmm_ext.mixedlm` keywords (``cov_struct``, ``re_formula``,
        ``vc_formula``, ``variance``, ``weights``), e.g.
        ``{"re_formula": "1", "cov_struct": lmm.AR1(time="t")}``.  A mapping gives each
        candidate its name; otherwise names are built from the structures.
    criterion : {"aic", "aicc", "bic"}
        ``aic``/``bic`` as nlme, ``aicc`` as SAS (see :func:`compare`).
    re_formula : str or None
        Random effects of candidates given as a bare structure: ``"0"`` (default) none, the
        SAS ``REPEATED`` / MMRM setting; ``None`` a random intercept.
    n_jobs : int
        joblib workers (``-1``: all cores); any joblib backend applies
        (``joblib.parallel_config``).
    missing : {"none", "drop", "raise"}
        Missing values, as in :func:`~statsmodels_lmm_ext.mixedlm` (``"drop"`` drops the rows
        with a missing value in a column the formulas use, the same rows for every candidate
        whose formulas use the same columns).
    eval_env : optional
        Namespace of names the formulas use that are not columns (default: the caller's).
    **fit_kwargs
        Passed to every ``fit`` (e.g. ``reml=False``).

    Returns
    -------
    CovStructSelection
        ``table`` (the ranked :func:`compare` table with failures listed last) and ``best``.

    Examples
    --------
    >>> sel = lmm.select_cov_struct(
    ...     "FEV1 ~ ARMCD * AVISIT", fev, groups="USUBJID",
    ...     candidates=[lmm.CompoundSymmetry(), lmm.AR1(time="VISITN"),
    ...                 lmm.Unstructured(time="AVISIT")], n_jobs=2)
    >>> sel.table
    >>> sel.best.summary()
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    specs = _specs(candidates, re_formula)
    n_jobs = check_n_jobs(n_jobs)
    namespace = caller_namespace(eval_env, depth=1)
    env = _environment(formula, specs, data, namespace)
    jobs = [
        delayed(_fit_one)(formula, data, groups, kw, env, fit_kwargs, missing)
        for kw in specs.values()
    ]
    if n_jobs in (None, 1) or len(jobs) == 1:
        out = [job[0](*job[1], **job[2]) for job in jobs]
    else:
        out = Parallel(n_jobs=min(n_jobs, len(jobs)) if n_jobs > 0 else n_jobs)(jobs)
    fits, failures, notes = {}, {}, {}
    for name, (res, reason, msgs) in zip(specs, out, strict=True):
        if reason:
            failures[name] = reason
        else:
            fits[name], notes[name] = res, msgs
    table = _table(fits, failures, criterion, notes)
    if not fits:
        warnings.warn(
            f"all {len(failures)} candidates failed to fit (the table lists why); best is None",
            RuntimeWarning,
            stacklevel=2,
        )
    best = fits[table.index[0]] if fits else None
    return CovStructSelection(table, best, criterion, fits, failures)
