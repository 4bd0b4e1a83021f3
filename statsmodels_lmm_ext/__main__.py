"""Demo analysis: ``python -m statsmodels_lmm_ext``.

Fits the growth curves of the Orthodont data (Potthoff & Roy 1964) with a random intercept per
child and AR(1) residual correlation over the visits, next to statsmodels' random-intercept
model, and prints both summaries and the likelihood comparison; then the marginal means of the
Oats split-plot experiment with Tukey-adjusted pairwise comparisons and their letter display.
"""

from __future__ import annotations

import warnings

import statsmodels.formula.api as smf

import statsmodels_lmm_ext as lmm


def main() -> None:
    data = lmm.datasets.load("orthodont")
    print(lmm.datasets.describe("orthodont"))
    model = lmm.mixedlm(
        "distance ~ age * Sex",
        data,
        groups="Subject",
        re_formula="1",
        cov_struct=lmm.AR1(time="visit"),
    )
    res = model.fit(reml=True)
    print(res.summary())
    print("Residual correlation parameters:")
    print(res.cov_struct_params.to_string())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = smf.mixedlm("distance ~ age * Sex", data, groups="Subject").fit(reml=True)
    print()
    print(f"REML log-likelihood, statsmodels random intercept: {base.llf:.4f}")
    print(f"REML log-likelihood, random intercept + AR(1):     {res.llf:.4f}")

    print()
    print("Oats split-plot: nitrogen means (Kenward-Roger df), Tukey pairs, letters")
    oats = lmm.datasets.load("oats")
    split = lmm.mixedlm(
        "grain_yield ~ Variety * nitro_f",
        oats,
        groups="Block",
        re_formula="1",
        vc_formula={"Variety": "0 + C(Variety)"},
    ).fit()
    em = lmm.emmeans(split, "nitro_f")
    print(em)
    print()
    print(em.pairs(adjust="tukey"))
    print()
    print(em.pairs().cld().to_string(index=False))


if __name__ == "__main__":
    main()
