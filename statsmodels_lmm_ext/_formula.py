"""Everything that reads a model formula or its design spec (patsy or formulaic).

statsmodels keeps the fixed-effects design spec at ``model.data.model_spec`` (statsmodels >=
0.15; a patsy ``DesignInfo`` or a formulaic ``ModelSpec``) or ``model.data.design_info``
(older versions).  From it this module builds design rows for new data (reference grids),
the columns of each term and the Type III hypothesis matrices; it also finds the data
columns a formula refers to, to check them before patsy meets the data.

Nothing here touches the likelihood engine, and nothing is written onto the user's objects:
the Type III matrices are memoised in a :class:`weakref.WeakKeyDictionary` keyed by the model.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import tokenize
import weakref
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from patsy import build_design_matrices
from patsy.categorical import categorical_to_int
from patsy.missing import NAAction

from ._engine.designs import GatheredRows, first_occurrence

__all__ = [
    "categories",
    "check_columns",
    "design_info",
    "design_rows",
    "formula_names",
    "model_spec",
    "names_in",
    "row_codes",
    "namespace_for",
    "term_columns",
    "type3_contrasts",
    "used_frame",
]

# Names patsy evaluates itself (functions, codings, transforms), not data columns.
_PATSY_NAMES = frozenset(
    {"C", "I", "Q", "np", "center", "standardize", "scale", "bs", "cr", "cc", "te"}
    | {"Treatment", "Sum", "Diff", "Helmert", "Poly", "ContrastMatrix", "log", "exp", "sqrt"}
)


# --------------------------------------------------------------------------------------------
# Names in a formula
# --------------------------------------------------------------------------------------------


def formula_names(formula: str) -> set[str]:
    """Variable names a formula (or one side of it) refers to.

    Python names that are neither attributes (``log`` in ``np.log``) nor keyword-argument names
    (``reference`` in ``Treatment(reference="a")``), and the columns quoted by ``Q("...")``.
    Functions and constants count too (``C``, ``np``, ``ctr``): :func:`check_columns` tells
    columns from names of the calling namespace.
    """
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(formula).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(re.findall(r"[A-Za-z_]\w*", formula)) - set(keyword.kwlist)
    names: set[str] = set()
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1].string if i else ""
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
            if prev != "." and nxt != "=":
                names.add(tok.string)
        elif tok.type == tokenize.STRING and prev == "(" and nxt == ")" and i >= 2:
            if tokens[i - 2].string == "Q":
                value = ast.literal_eval(tok.string)
                if isinstance(value, str):
                    names.add(value)
    return names


def check_columns(
    data: pd.DataFrame, needed: Mapping[str, Sequence[str]], env: Mapping | None = None
) -> None:
    """Raise if a referenced name is neither a column, a name of ``env`` (the namespace the
    formula is evaluated in) nor something patsy can evaluate.

    ``needed`` maps where the names come from (``"formula"``, ``"groups"`` ...) to the names;
    the error names the offending names, where they were found and the data's columns.
    """
    known = set(map(str, data.columns))
    env = env or {}
    for where, names in needed.items():
        missing = [
            n
            for n in names
            if n not in known
            and n not in env
            and n not in _PATSY_NAMES
            and not hasattr(builtins, n)
        ]
        if missing:
            raise ValueError(
                f"unknown column(s) {', '.join(repr(m) for m in missing)} in {where}: neither "
                f"a column of the data nor a name of the calling namespace; the data has "
                f"columns {sorted(known)}"
            )


def namespace_for(names: Iterable[str], columns: Iterable, namespace: Mapping) -> dict:
    """The part of ``namespace`` a formula needs: its names that are not data columns.

    Passed to patsy/formulaic as ``eval_env`` (a dict, which both engines accept), it resolves
    functions and variables of the caller (``ctr(x)``, ``I(x - ref)``) as ``smf.mixedlm`` does;
    data columns take precedence, as in patsy.
    """
    columns = set(map(str, columns))
    return {n: namespace[n] for n in names if n not in columns and n in namespace}


def names_in(code: str, columns: Iterable) -> list[str]:
    """Data columns referenced in a piece of formula code (in order of appearance).

    A name counts when it is a column and is neither called (``log(...)``) nor an attribute
    (``np.log``); code that does not tokenize falls back to whole-word matching.
    """
    columns = list(columns)
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError):
        return [c for c in columns if re.search(rf"\b{re.escape(str(c))}\b", code)]
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string not in columns or tok.string in out:
            continue
        nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
        prev = tokens[i - 1].string if i else ""
        if nxt != "(" and prev != ".":
            out.append(tok.string)
    return out


# --------------------------------------------------------------------------------------------
# The model's design spec
# --------------------------------------------------------------------------------------------


def model_spec(model):
    """The formula design spec of a model (patsy ``DesignInfo`` or formulaic ``ModelSpec``)."""
    data = model.data
    spec = getattr(data, "model_spec", None) or getattr(data, "design_info", None)
    if spec is None:
        raise ValueError(
            "this needs the model's formula (term-wise tests, marginal means): build the model "
            "from a formula (lmm.mixedlm, smf.mixedlm, smf.ols ...)"
        )
    return spec


def design_info(model):
    """The patsy DesignInfo of a formula model, or a clear error."""
    spec = model_spec(model)
    if not hasattr(spec, "term_codings"):
        raise NotImplementedError(
            f"term-wise tests support patsy design specs; got {type(spec).__name__} "
            "(statsmodels' formulaic engine); use the patsy engine"
        )
    return spec


def term_columns(model) -> dict[str, np.ndarray]:
    """Column indices of each model term (``Intercept`` included), in formula order."""
    di = design_info(model)
    return {name: np.arange(sl.start, sl.stop) for name, sl in di.term_name_slices.items()}


def used_frame(model) -> pd.DataFrame:
    """The rows of the model's data frame that the fit used (missing rows dropped)."""
    frame = model.data.frame
    if frame is None:
        raise ValueError("the model keeps no data frame; marginal means need the data")
    labels = getattr(model.data, "row_labels", None)
    if len(frame) != model.nobs and labels is not None:
        frame = frame.loc[labels]
    return frame


def categories(spec, var: str) -> list | None:
    """The level order the formula used for ``var`` (patsy or formulaic), if it says."""
    pattern = re.compile(rf"^C\(\s*{re.escape(var)}\s*[,)]")
    if hasattr(spec, "factor_infos"):  # patsy
        for f, fi in spec.factor_infos.items():
            if fi.type == "categorical" and (f.code == var or pattern.match(f.code)):
                return list(fi.categories)
        return None
    state = getattr(spec, "encoder_state", {}) or {}
    for key, (_kind, st) in state.items():
        if (key == var or pattern.match(key)) and "categories" in st:
            return list(st["categories"])
    return None


def design_rows(spec, grid: pd.DataFrame) -> np.ndarray:
    """Design rows of new data through the model's own spec (patsy or formulaic)."""
    if hasattr(spec, "term_codings"):  # patsy
        return np.asarray(build_design_matrices([spec], grid, NA_action="raise")[0], float)
    return np.asarray(spec.get_model_matrix(grid, output="numpy"), float)


# --------------------------------------------------------------------------------------------
# Type III hypotheses
# --------------------------------------------------------------------------------------------


def _factor_columns(factor, info, frame, NA):
    """Evaluated columns of one factor: level codes (categorical) or values (numeric)."""
    value = factor.eval(info.state, frame)
    if info.type == "categorical":
        return categorical_to_int(value, info.categories, NA)
    return np.asarray(value, dtype=float).reshape(len(frame), -1)


def _coded_design(di, frame: pd.DataFrame, coding: str):
    """Design of ``di`` on ``frame`` with every categorical factor re-coded.

    ``coding="treatment"``: reduced-rank contrasts become treatment contrasts (first level
    dropped), full-rank codings stay indicators — the design R builds with contr.treatment.
    ``coding="full"``: every categorical factor as indicators of all its levels (R's
    ``model.matrix(~ 0 + term)`` per term, lmerTest's "rank-deficient" design).

    Returns the matrix, one label per column ``(term, ((factor, level or column), ...))`` and
    the column indices of each term.
    """
    NA = NAAction(NA_types=[])
    evaluated = {f: _factor_columns(f, fi, frame, NA) for f, fi in di.factor_infos.items()}
    n = len(frame)
    blocks, labels, cols, start = [], [], {}, 0
    for term, subterms in di.term_codings.items():
        name = term.name()
        width = 0
        for st in subterms:
            if coding == "full" and st is not subterms[0]:
                continue  # all of the term's columns come from one fully coded block
            block = np.ones((n, 1))
            lab = [()]
            factors = term.factors if coding == "full" else st.factors
            for f in factors:
                fi = di.factor_infos[f]
                if fi.type == "categorical":
                    k = len(fi.categories)
                    full = coding == "full" or st.contrast_matrices[f].matrix.shape[1] == k
                    levels = list(range(k)) if full else list(range(1, k))
                    part = np.eye(k)[evaluated[f]][:, levels]
                    keys = [(f.name(), fi.categories[j]) for j in levels]
                else:
                    part = evaluated[f]
                    keys = [(f.name(), j) for j in range(part.shape[1])]
                block = (block[:, :, None] * part[:, None, :]).reshape(n, -1)
                lab = [a + (b,) for a in lab for b in keys]
            blocks.append(block)
            labels += [(name, key) for key in lab]
            width += block.shape[1]
        cols[name] = np.arange(start, start + width)
        start += width
    return np.hstack(blocks), labels, cols


def _contained_in(di) -> dict[str, list[str]]:
    """For each term, the terms containing it: a superset of its categorical factors with the
    same numeric covariates (SAS / lmerTest containment)."""
    sets = {}
    for term in di.terms:
        cat = {f.name() for f in term.factors if di.factor_infos[f].type == "categorical"}
        num = {f.name() for f in term.factors if di.factor_infos[f].type != "categorical"}
        sets[term.name()] = (cat, num)
    out = {}
    for t, (cat, num) in sets.items():
        out[t] = [
            u for u, (cu, nu) in sets.items() if u != t and cat <= cu and num == nu and cat != cu
        ]
    return out


def row_codes(X: np.ndarray, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)``: a code per row of the finite matrix ``X`` (or per row of
    ``X[rows]``, gathered a block at a time) from two fixed random projections (one product
    and a pandas factorisation: linear time, where sorting the rows costs seconds at a million
    rows), and the first row of each code.  Unequal rows share a code only if their
    projections coincide, and equal rows may (rarely, by rounding) get two: callers that need
    exactness check ``X[first][inverse] == X``."""
    P = np.random.default_rng(12345).standard_normal((X.shape[1], 2))
    if rows is None:
        h = X @ P
    else:
        step = 16_384
        h = np.concatenate(
            [np.asarray(X[rows[a : a + step]]) @ P for a in range(0, len(rows), step)]
        )
    inverse, uniques = pd.factorize(h[:, 0] + 1j * h[:, 1], sort=False)
    return first_occurrence(inverse, len(uniques)), inverse


def _distinct_rows(model, max_rows: int, seed: int) -> np.ndarray:
    """Row positions carrying the design's distinct rows (a random subset of at most
    ``max_rows`` of them when there are many; all rows when ``max_rows`` covers the data)."""
    n = len(model.data.frame)
    if max_rows >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    cells = model.__dict__.get("_exog_cells")
    if isinstance(cells, GatheredRows):  # a design kept as its distinct rows knows them
        rows = np.sort(cells.first_rows())
        return np.sort(rng.choice(rows, max_rows, replace=False)) if len(rows) > max_rows else rows
    exog = model.exog if cells is None else cells  # a lazy design gathers the pool's rows
    pool = np.arange(n)
    if len(pool) > 50 * max_rows:
        pool = np.sort(rng.choice(pool, 50 * max_rows, replace=False))
    # first row of each distinct design row (row_codes); a rare collision only leaves a row
    # out, and a subset that loses rank is replaced by all rows (_type3)
    first, _ = row_codes(exog, pool)
    rows = pool[np.sort(first)]
    if len(rows) > max_rows:
        rows = rng.choice(rows, max_rows, replace=False)
    return np.sort(rows)


#: model -> {(max_rows, seed): Type III matrices}; entries go with their model.
_TYPE3_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def type3_contrasts(model, max_rows: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Type III hypothesis matrices ``L`` (one per term but the intercept) on ``beta``.

    lmerTest's construction (Kuznetsova et al. 2017, ``get_contrasts_type3``), which follows
    SAS: with ``X`` the treatment-coded design and ``X_full`` the over-parameterised design of
    all level indicators, ``L0 = (X^+ X_full)'``; each term's columns of ``L0`` are made
    orthogonal to those of the terms containing it (higher-order terms first); the rows for the
    model's coefficients are kept, and mapped to the user's coding by ``X^+ X_user``.  The
    hypotheses do not depend on the contrast coding the user chose.  (The F statistics do not
    depend on the choice of rows either; the multi-df Satterthwaite ddf does, which is why the
    rows are built exactly as lmerTest builds them.)

    The hypotheses depend on the design's distinct rows only, so those are used (at most
    ``max_rows`` of them, drawn with ``seed``; all rows if the subset loses rank).  Results are
    memoised per model without writing onto it.
    """
    per_model = _TYPE3_CACHE.setdefault(model, {})
    key = (int(max_rows), int(seed))
    if key not in per_model:
        per_model[key] = _type3(model, max_rows, seed)
    return per_model[key]


def _type3(model, max_rows: int, seed: int) -> dict[str, np.ndarray]:
    """The computation behind :func:`type3_contrasts` (not memoised)."""
    di = design_info(model)
    frame = model.data.frame
    if frame is None:
        raise ValueError("the model keeps no data frame; cannot build Type III contrasts")
    frame = frame.iloc[_distinct_rows(model, max_rows, seed)]
    X_user = np.asarray(build_design_matrices([di], frame, NA_action="drop")[0])
    X, labels, cols = _coded_design(di, frame, "treatment")
    Xf, labels_f, _ = _coded_design(di, frame, "full")
    if X_user.shape[0] != X.shape[0]:
        raise ValueError("missing values in the model's data frame; refit with missing='drop'")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        if len(frame) < len(model.data.frame):
            return _type3(model, len(model.data.frame), seed)
        raise ValueError(
            "the fixed-effects design is rank deficient; Type III tests need full rank"
        )
    Xpinv = np.linalg.pinv(X)
    L = (Xpinv @ Xf).T  # rows: full-design columns; columns: treatment coefficients
    L[np.abs(L) < 1e-10] = 0.0
    contained = _contained_in(di)
    for term in sorted(di.terms, key=lambda t: len(t.factors), reverse=True):
        t = term.name()
        if contained[t]:
            A = L[:, np.concatenate([cols[u] for u in contained[t]])]
            B = L[:, cols[t]]
            coef, *_ = np.linalg.lstsq(A, B, rcond=None)
            R = B - A @ coef
            R[np.abs(R) < 1e-10] = 0.0
            L[:, cols[t]] = R
    row_of = {lab: i for i, lab in enumerate(labels_f)}
    L = L[[row_of[lab] for lab in labels]]  # rows of the model's coefficients
    to_user = Xpinv @ X_user  # beta_trt = to_user @ beta_user
    out = {}
    for name, c in cols.items():
        if name == "Intercept":
            continue
        Lt = L[:, c].T
        Lt = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
        out[name] = Lt @ to_user
    return out
