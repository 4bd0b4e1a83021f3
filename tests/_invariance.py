"""Data and transformations of the invariance suite (tests/test_conditioning.py).

Each transformation changes the data (units, offsets, parameterisation, labels, order) in a
way that leaves the model the same; ``compare`` maps the fit of the transformed data back and
returns the worst relative differences of the log-likelihood, the fixed effects and their
standard errors.
"""

import warnings

import numpy as np
import pandas as pd

import statsmodels_lmm_ext as lmm

#: the invariance claims of DESIGN.md section 9
LLF_RTOL = 1e-8
EST_RTOL = 1e-6


def invariance_data(seed: int = 3, n_groups: int = 30, n_visits: int = 5) -> pd.DataFrame:
    """Groups with visits 1..n (15% of rows dropped): ``visit`` (integer), ``time`` (visit +
    U(-0.3, 0.3)), coordinates ``x``, ``y`` (U(0, 3)), a covariate ``z`` and the response
    ``resp`` with a random intercept and AR(1)-like residuals (``v``: the visit as a
    covariate)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        b = rng.normal()
        e = rng.normal()
        for v in range(1, n_visits + 1):
            e = 0.5 * e + np.sqrt(0.75) * rng.normal()
            z = rng.normal()
            rows.append((f"g{g:02d}", v, v + rng.uniform(-0.3, 0.3), *rng.uniform(0, 3, 2), z,
                         2.0 + 0.3 * v + 0.5 * z + 0.2 * z**2 + b + e))  # fmt: skip
    d = pd.DataFrame(rows, columns=["grp", "visit", "time", "x", "y", "z", "resp"])
    d["v"] = d["visit"]  # the visit as a covariate, apart from the positions
    return d[rng.uniform(size=len(d)) > 0.15].reset_index(drop=True)


def fit(cs, data, formula="resp ~ v + z + I(z**2)", reml=True):
    re = "0" if cs.constant_correlation else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lmm.mixedlm(formula, data, groups="grp", re_formula=re, cov_struct=cs)
        return model.fit(reml=reml, gtol=1e-9)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300), initial=0.0))


def _scaled_positions(cs, data):
    """Positions in other units: AR1 times x 100 (still integers), Power x 365.25, spatial
    coordinates x 1000 plus an offset."""
    d = data.copy()
    factor = {"AR1": 100.0, "Power": 365.25}.get(type(cs).__name__, 1000.0)
    for c in cs.position_columns:
        d[c] = d[c] * factor + (0.0 if type(cs).__name__ == "AR1" else 5e4)
    return d


def transformations(cs):
    """``name -> (data transform, reml, formula, expected map)``; the map takes the reference
    fit's ``(llf, fe, bse)`` to what the transformed fit must give."""
    n_fe = 4

    def same(llf, fe, bse, n):
        return llf, fe, bse

    def offset(llf, fe, bse, n):
        return llf, fe + np.r_[1e6, np.zeros(n_fe - 1)], bse

    def scale_y(llf, fe, bse, n):
        return llf - (n - n_fe) * np.log(1e4), fe * 1e4, bse * 1e4

    def covariate(llf, fe, bse, n):
        # z' = 1e3 (z + 100): b_z' = b_z / 1e3, quadratic and intercept re-expressed
        # (ML likelihood invariant; compare the visit effect and the quadratic's curvature)
        return llf, fe, bse

    out = {
        "y + 1e6": (lambda d: d.assign(resp=d.resp + 1e6), True, None, offset),
        "y x 1e4": (lambda d: d.assign(resp=d.resp * 1e4), True, None, scale_y),
        "z -> 1e3 (z + 100) (ML)": (
            lambda d: d.assign(z=1e3 * (d.z + 100)),
            False,
            None,
            covariate,
        ),  # fmt: skip
        "relabel groups": (
            lambda d: d.assign(grp=d.grp.map(lambda g: "s" + g[::-1])),
            True,
            None,
            same,
        ),  # fmt: skip
        "reorder rows": (
            lambda d: d.sample(frac=1.0, random_state=1).reset_index(drop=True),
            True,
            None,
            same,
        ),  # fmt: skip
    }
    if cs.position_columns:
        out["positions in other units"] = (lambda d: _scaled_positions(cs, d), True, None, same)
    return out


def compare(cs, name, data=None):
    """Worst relative differences ``(llf, fe, bse)`` of one transformation (for the ML
    covariate transformation only the log-likelihood and the ``v`` effect are compared)."""
    data = invariance_data() if data is None else data
    transform, reml, formula, expected = transformations(cs)[name]
    kw = {"reml": reml} if formula is None else {"reml": reml, "formula": formula}
    ref = fit(cs, data, **kw)
    new = fit(cs, transform(data), **kw)
    llf, fe, bse = expected(ref.llf, ref.fe_params.values, ref.bse_fe.values, ref.nobs)
    if name.startswith("z ->"):
        return _rel(new.llf, llf), _rel(new.fe_params["v"], fe[1]), _rel(
            new.bse_fe["v"], bse[1])  # fmt: skip
    return _rel(new.llf, llf), _rel(new.fe_params.values, fe), _rel(new.bse_fe.values, bse)
