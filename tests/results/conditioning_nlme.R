# Reference log-likelihoods for the numerical-conditioning tests (tests/test_conditioning.py,
# issue 11): nlme's lme with a random intercept and corAR1 / corCAR1, on data generated here
# (60 subjects x 6 visits, 10% of rows dropped; the data go into the JSON), with the response
# shifted by constants and with uncentred calendar-year polynomials (ML).
# Run: Rscript tests/results/conditioning_nlme.R
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
set.seed(11)
n_sub <- 60; n_vis <- 6
d <- expand.grid(visit = 1:n_vis, subj = 1:n_sub)
b <- rnorm(n_sub)
e <- unlist(lapply(1:n_sub, function(i) as.numeric(arima.sim(list(ar = 0.6), n_vis))))
d$x <- rnorm(nrow(d))
d$y <- 1 + 0.3 * d$visit + 0.5 * d$x + b[d$subj] + e
d <- d[runif(nrow(d)) > 0.1, ]
d$year <- 2000 + d$visit
d$days <- 365.25 * d$visit
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500)
fit_ll <- function(formula, data, cor, method) tryCatch(fit_ll0(formula, data, cor, method),
  error = function(e) list(error = conditionMessage(e)))
fit_ll0 <- function(formula, data, cor, method) {
  f <- lme(formula, random = ~ 1 | subj, correlation = cor, data = data, method = method,
           control = ctrl)
  list(loglik = as.numeric(logLik(f)), fixef = as.numeric(fixef(f)),
       phi = as.numeric(coef(f$modelStruct$corStruct, unconstrained = FALSE)))
}
out <- list(nlme = as.character(packageVersion("nlme")), R = R.version.string,
            data = list(subj = d$subj, visit = d$visit, x = d$x, y = d$y),
            control = "lmeControl(maxIter = 500, msMaxIter = 500)")
ar1 <- corAR1(form = ~ visit | subj)
out$offset <- lapply(c(0, 1e4, 1e6, 1e8), function(off) {
  dd <- d; dd$y <- dd$y + off
  c(list(offset = off), fit_ll(y ~ visit + x, dd, ar1, "REML"))
})
out$year_cubic_ml <- fit_ll(y ~ year + I(year^2) + I(year^3) + x, d, ar1, "ML")
out$visit_cubic_ml <- fit_ll(y ~ visit + I(visit^2) + I(visit^3) + x, d, ar1, "ML")
out$car1_years <- fit_ll(y ~ visit + x, d, corCAR1(form = ~ visit | subj), "REML")
out$car1_days <- fit_ll(y ~ visit + x, d, corCAR1(form = ~ days | subj), "REML")
write_json(out, "tests/results/conditioning_nlme.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
