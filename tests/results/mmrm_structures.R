# R mmrm (and nlme gls) fits of the MMRM covariance structures, for tests/test_mmrm_structures.py.
# Data: fev_data of mmrm (also statsmodels_lmm_ext/datasets/fev_data.csv) as is, and a variant
# with rows shuffled and extra visits removed ("fev_holes": every 7th remaining row dropped).
# Rerun: Rscript tests/results/mmrm_structures.R  (writes mmrm_structures.json next to it)
suppressPackageStartupMessages({library(mmrm); library(jsonlite); library(nlme)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
data(fev_data, package = "mmrm")
fev <- fev_data[!is.na(fev_data$FEV1), ]
set.seed(42)
holes <- fev[-seq(3, nrow(fev), by = 7), ]
holes <- holes[sample(nrow(holes)), ]
datasets <- list(fev = fev, fev_holes = holes)
# tightly converged: mmrm's default stops ~1e-5 short in beta; nlminb (rel.tol 1e-15), else
# BFGS (reltol 1e-15) where nlminb reports a singular convergence
tight_fit <- function(f, d, method, reml = TRUE) {
  m <- if (method == "Satterthwaite") method else "Kenward-Roger"
  v <- if (method == "Satterthwaite") NULL else method
  opts <- list(
    list("nlminb", list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 5000, iter.max = 5000)),
    list("BFGS", list(reltol = 1e-15, maxit = 5000)))
  for (o in opts) {
    fit <- tryCatch(mmrm(f, data = d, reml = reml, method = m, vcov = v, optimizer = o[[1]],
                         optimizer_control = o[[2]]), error = function(e) NULL)
    if (!is.null(fit)) return(fit)
  }
  mmrm(f, data = d, reml = reml, method = m, vcov = v)
}
structs <- c("us", "toep", "toeph", "ad", "adh", "cs", "csh", "ar1", "ar1h")
out <- list(versions = list(R = R.version.string, mmrm = as.character(packageVersion("mmrm")),
                            nlme = as.character(packageVersion("nlme"))), fits = list(),
            gls = list(), ml = list())
for (dn in names(datasets)) {
  d <- datasets[[dn]]
  for (st in structs) {
    f <- as.formula(sprintf("FEV1 ~ ARMCD * AVISIT + RACE + %s(AVISIT | USUBJID)", st))
    for (method in c("Satterthwaite", "Kenward-Roger", "Kenward-Roger-Linear")) {
      fit <- tight_fit(f, d, method)
      b <- coef(fit)
      V <- vcov(fit)
      L <- matrix(0, 1, length(b)); L[which(names(b) == "ARMCDTRT")] <- 1
      t1 <- df_1d(fit, L[1, ])
      # the treatment main effect and an F test of the interaction
      Li <- matrix(0, 3, length(b)); nm <- grep("ARMCDTRT:", names(b))
      for (i in seq_along(nm)) Li[i, nm[i]] <- 1
      fm <- df_md(fit, Li)
      key <- paste(dn, st, method, sep = "/")
      out$fits[[key]] <- list(data = dn, struct = st, method = method,
        loglik = as.numeric(logLik(fit)), coef = as.list(b), se = as.list(sqrt(diag(V))),
        trt = list(est = t1$est, se = t1$se, df = t1$df),
        interaction = list(f = fm$f_stat, num_df = fm$num_df, denom_df = fm$denom_df),
        varcor = unname(VarCorr(fit)), theta = unname(component(fit, "theta_est")),
        converged = component(fit, "convergence") == 0)
    }
  }
  # ML fits (Satterthwaite): log-likelihood, coefficients, SEs
  for (st in structs) {
    f <- as.formula(sprintf("FEV1 ~ ARMCD * AVISIT + RACE + %s(AVISIT | USUBJID)", st))
    fit <- tight_fit(f, d, "Satterthwaite", reml = FALSE)
    out$ml[[paste(dn, st, sep = "/")]] <- list(loglik = as.numeric(logLik(fit)),
      coef = as.list(coef(fit)), se = as.list(sqrt(diag(vcov(fit)))))
  }
  # nlme gls as a second source where it has the structure (REML, visits as integer codes)
  d$VIS <- as.integer(factor(d$AVISIT))
  glsf <- FEV1 ~ ARMCD * AVISIT + RACE
  vi <- varIdent(form = ~ 1 | AVISIT)
  ctl <- glsControl(tolerance = 1e-10, msMaxIter = 500, maxIter = 500)
  gfits <- list(
    us = gls(glsf, d, correlation = corSymm(form = ~ VIS | USUBJID), weights = vi,
             control = ctl),
    toep = gls(glsf, d, correlation = corARMA(form = ~ VIS | USUBJID, p = 3), control = ctl),
    csh = gls(glsf, d, correlation = corCompSymm(form = ~ VIS | USUBJID), weights = vi,
              control = ctl),
    ar1h = gls(glsf, d, correlation = corAR1(form = ~ VIS | USUBJID), weights = vi,
               control = ctl))
  for (st in names(gfits)) {
    g <- gfits[[st]]
    out$gls[[paste(dn, st, sep = "/")]] <- list(loglik = as.numeric(logLik(g)),
      coef = as.list(coef(g)), se = as.list(sqrt(diag(vcov(g)))))
  }
  write.csv(d[, setdiff(names(d), "VIS")], file.path(here, sprintf("mmrm_%s.csv", dn)), row.names = FALSE)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "mmrm_structures.json"))
