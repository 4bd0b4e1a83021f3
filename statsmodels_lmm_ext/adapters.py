"""TEMPORARY minimal adapter (replaced by the full one in the bootstrap/adapters work)."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from statsmodels.regression.mixed_linear_model import MixedLMResults as SMResults

from .covstruct import Independence
from .inference.variance_model import VarianceModel
from .model import MixedLM
from .results import MixedLMResults

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unwrap(results):
    return getattr(results, "_results", results)


class Fitted:
    def __init__(self, res):
        self.model = res.model
        self.fe_names = list(res.model.exog_names)
        self.nobs = res.model.nobs
        self.k_fe = res.model.exog.shape[1]
        self.reml = res.reml
        if isinstance(res, MixedLMResults):
            self.variance_model = res.variance_model
        else:
            m = res.model
            endog = pd.Series(np.asarray(m.endog, float), name=m.endog_names)
            exog = pd.DataFrame(np.asarray(m.exog, float), columns=list(m.exog_names))
            exog_re = None
            if m.k_re:
                exog_re = pd.DataFrame(np.asarray(m.exog_re), columns=list(m.data.exog_re_names))
            ours = MixedLM(endog, exog, np.asarray(m.groups), exog_re=exog_re, exog_vc=m.exog_vc,
                           cov_struct=Independence())  # fmt: skip
            self.variance_model = VarianceModel(
                ours.engine, ours.cov_params_spec, np.asarray(res.fe_params),
                np.asarray(res.cov_re), np.asarray(res.vcomp), res.scale, np.zeros(0), res.reml,
            )  # fmt: skip


def as_fitted(results) -> Fitted:
    res = _unwrap(results)
    if not isinstance(res, MixedLMResults | SMResults):
        raise TypeError(
            f"expected a MixedLM results object (statsmodels_lmm_ext or statsmodels), "
            f"got {type(res).__name__}"
        )
    if res not in _CACHE:
        _CACHE[res] = Fitted(res)
    return _CACHE[res]
