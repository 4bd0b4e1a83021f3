# nlme side of benchmarks/bench_convergence.py: fits every data set of the CSV given as first
# argument with lme(y ~ visit + trt, random = ~ 1 | subj, correlation = corAR1(form = ~ visit |
# subj), method = "REML") and writes one row per data set (converged, log-likelihood, seconds)
# to the JSON file given as second argument.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
out <- lapply(split(d, d$dataset), function(dd) {
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(
    lme(y ~ visit + trt, random = ~ 1 | subj, data = dd, method = "REML",
        correlation = corAR1(form = ~ visit | subj)),
    error = function(e) conditionMessage(e))
  ok <- inherits(fit, "lme")
  list(dataset = dd$dataset[1], converged = ok,
       loglik = if (ok) as.numeric(logLik(fit)) else NA,
       error = if (ok) "" else fit,
       seconds = proc.time()[["elapsed"]] - t0)
})
write_json(list(nlme = as.character(packageVersion("nlme")), R = R.version.string,
                fits = unname(out)), args[2], digits = NA, auto_unbox = TRUE, na = "null")
