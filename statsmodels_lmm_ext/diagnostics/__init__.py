"""Checking a fitted model: residuals, variograms and autocorrelation, influence of groups,
intervals for the covariance parameters and intraclass correlations.

The modules here sit below :mod:`statsmodels_lmm_ext.results` (they use the engine, the parameter
object, the optimiser and the inference core, never the results or model modules), and the
results' methods (``res.residuals()``, ``res.variogram()``, ``res.acf()``, ``res.influence()``,
``res.conf_int_cov()``, ``res.icc()``, ``res.plot_diagnostics()``) delegate to them.
"""
