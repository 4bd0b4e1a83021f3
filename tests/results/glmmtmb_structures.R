# glmmTMB fits of the residual-only MMRM structures, a second source for
# tests/test_mmrm_glmmtmb.py (besides mmrm and nlme gls in mmrm_structures.R).
# Data: mmrm_fev.csv and mmrm_fev_holes.csv (written by mmrm_structures.R, next to this file).
# Model: FEV1 ~ ARMCD * AVISIT + RACE + <struct>(0 + AVISIT | USUBJID), dispformula = ~0
# (the whole residual covariance is the structure; glmmTMB then keeps a fixed residual
# standard deviation exp(zerodisp_val), by default sqrt(.Machine$double.eps), a variance 2.2e-16).
# ML fits use that default.  REML fits do not: glmmTMB's REML integrates the coefficients out
# with the random effects (Laplace), and with a residual variance of 2.2e-16 that Hessian is so
# ill-conditioned that the REML log-likelihood is wrong in the 8th digit (-1693.686483 for us on
# fev, above the exact optimum -1693.686500 of mmrm and ours); REML fits use a residual SD of
# 1e-5 (a variance 1e-10, ~1e-11 of the visit variances), which gives the exact optimum for us.
# glmmTMB 1.1.5 structures: us (unstructured), toep (heterogeneous Toeplitz), cs
# (heterogeneous compound symmetry), ar1 (homogeneous AR(1)), diag (heterogeneous
# independence).  The homogeneous cs and toep are the same fits with the log standard
# deviations mapped to one parameter (map = list(theta = ...)).  Both REML = TRUE and ML.
# Fits are converged tightly (glmmTMB's nlminb, then optim BFGS with reltol 1e-14 from its
# estimate: nlminb alone stops with "false convergence" or "singular convergence" here) and
# checked: convergence code 0, a positive definite Hessian, the largest absolute gradient.
# Rerun: Rscript tests/results/glmmtmb_structures.R  (writes glmmtmb_structures.json)
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
levels <- list(ARMCD = c("PBO", "TRT"), AVISIT = c("VIS1", "VIS2", "VIS3", "VIS4"),
               RACE = c("Asian", "Black or African American", "White"))
read_data <- function(name) {
  d <- read.csv(file.path(here, sprintf("mmrm_%s.csv", name)))
  for (col in names(levels)) d[[col]] <- factor(d[[col]], levels = levels[[col]])
  d$USUBJID <- factor(d$USUBJID)
  d
}
nv <- length(levels$AVISIT)
# name -> glmmTMB term and, for a homogeneous version, the map of theta (log SDs first)
structs <- list(
  us = list(term = "us", map = NULL),
  toeph = list(term = "toep", map = NULL),
  toep = list(term = "toep", map = c(rep(1, nv), 2:nv)),
  csh = list(term = "cs", map = NULL),
  cs = list(term = "cs", map = c(rep(1, nv), 2)),
  ar1 = list(term = "ar1", map = NULL),
  diag = list(term = "diag", map = NULL))
zerodisp <- function(reml) if (reml) log(1e-5) else glmmTMBControl()$zerodisp_val
control <- function(reml, bfgs) {
  if (!bfgs) return(glmmTMBControl(zerodisp_val = zerodisp(reml)))
  glmmTMBControl(zerodisp_val = zerodisp(reml), optimizer = optim,
                 optArgs = list(method = "BFGS"), optCtrl = list(reltol = 1e-14, maxit = 5000))
}
# nlminb (glmmTMB's default) first, then BFGS from its estimate (nlminb stops with "false
# convergence" or "singular convergence" here, a little short of the optimum)
fit_one <- function(f, d, reml, map) {
  first <- glmmTMB(f, data = d, dispformula = ~0, REML = reml, control = control(reml, FALSE),
                   map = map)
  start <- list(theta = first$obj$env$parList()$theta)
  fit <- tryCatch(glmmTMB(f, data = d, dispformula = ~0, REML = reml, start = start,
                          control = control(reml, TRUE), map = map), error = function(e) NULL)
  if (is.null(fit)) return(list(fit = first, optimizer = "nlminb"))
  list(fit = fit, optimizer = "nlminb, then BFGS")
}
out <- list(versions = list(R = R.version.string,
                            glmmTMB = as.character(packageVersion("glmmTMB")),
                            TMB = as.character(packageVersion("TMB"))),
            fits = list())
for (dn in c("fev", "fev_holes")) {
  d <- read_data(dn)
  for (st in names(structs)) {
    s <- structs[[st]]
    f <- as.formula(sprintf("FEV1 ~ ARMCD * AVISIT + RACE + %s(0 + AVISIT | USUBJID)", s$term))
    map <- if (is.null(s$map)) list() else list(theta = factor(s$map))
    for (reml in c(TRUE, FALSE)) {
      one <- fit_one(f, d, reml, map)
      fit <- one$fit
      b <- fixef(fit)$cond
      V <- vcov(fit)$cond
      vc <- VarCorr(fit)$cond$USUBJID
      cov <- unname(matrix(as.numeric(vc), nrow(vc)))
      grad <- fit$obj$gr(fit$fit$par)
      key <- paste(dn, st, if (reml) "REML" else "ML", sep = "/")
      message(key, " ", one$optimizer, " ", format(as.numeric(logLik(fit)), digits = 15))
      out$fits[[key]] <- list(data = dn, struct = st, reml = reml,
        loglik = as.numeric(logLik(fit)), coef = as.list(b), se = as.list(sqrt(diag(V))),
        cov = cov, zerodisp_sd = exp(zerodisp(reml)),
        optimizer = one$optimizer, convergence = fit$fit$convergence,
        pdHess = fit$sdr$pdHess, max_abs_gradient = max(abs(grad)))
    }
  }
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "glmmtmb_structures.json"))
