"""Draw the figures of the user guide's workflow page (docs/workflow.rst) into docs/_static/.

Run from the repository root after a change that alters them::

    python docs/make_figures.py

The code is the page's own (same models, same calls), so the images show what the page's
examples print.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import statsmodels_lmm_ext as lmm  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static"


def orthodont() -> None:
    ortho = lmm.datasets.load("orthodont")
    ri_ar1 = lmm.mixedlm(
        "distance ~ age * Sex", ortho, groups="Subject", cov_struct=lmm.AR1(time="visit")
    ).fit()
    fig = ri_ar1.plot_diagnostics()
    fig.savefig(OUT / "workflow_orthodont_diagnostics.png", dpi=80)


def fev() -> None:
    fev = lmm.datasets.load("fev_data").dropna(subset=["FEV1"])
    formula = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
    fits = {
        name: lmm.mixedlm(formula, fev, groups="USUBJID", re_formula="0", cov_struct=cs).fit()
        for name, cs in {
            "CS": lmm.CompoundSymmetry(),
            "UN": lmm.Unstructured(time="AVISIT"),
        }.items()
    }
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, (name, res) in zip(axes, fits.items(), strict=True):
        res.variogram("normalized").plot(ax=ax)
        ax.set_title(f"{name}: normalized residuals")
    fig.tight_layout()
    fig.savefig(OUT / "workflow_fev_variograms.png", dpi=80)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    orthodont()
    fev()
    print("figures written to", OUT)
