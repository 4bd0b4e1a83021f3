## Reference results from R (mmrm 0.3.11, nlme) for group-specific covariances, variance
## functions, observation weights and conditional prediction (issue 12).
##
## Run from this directory:
##     cd tests/results && Rscript mmrm_group_weights.R
## Writes mmrm_group_weights.json next to this script.
##
## Data: statsmodels_lmm_ext/datasets/fev_data.csv (mmrm's fev_data, row order as in mmrm).
## Factors get alphabetical levels (as Python's sorted()), so treatment contrasts have the same
## reference level as patsy; coefficients are stored with R's names, which the tests map to
## patsy's ("ARMCDTRT:AVISITVIS2" <-> "ARMCD[T.TRT]:AVISIT[T.VIS2]").
suppressPackageStartupMessages({
  library(mmrm)
  library(nlme)
  library(jsonlite)
})
fev <- read.csv("../../statsmodels_lmm_ext/datasets/fev_data.csv", stringsAsFactors = FALSE)
for (v in c("USUBJID", "AVISIT", "ARMCD", "RACE", "SEX")) {
  fev[[v]] <- factor(fev[[v]], levels = sort(unique(fev[[v]])))
}
obs <- fev[!is.na(fev$FEV1), ]
fml <- FEV1 ~ RACE + ARMCD * AVISIT

mmrm_out <- function(fit) {
  vc <- VarCorr(fit)
  if (!is.list(vc)) vc <- list(all = vc)
  list(
    loglik = as.numeric(logLik(fit)),
    coef = as.list(coef(fit)),
    se = as.list(sqrt(diag(vcov(fit)))),
    varcor = lapply(vc, function(m) unname(as.matrix(m)))
  )
}

out <- list(versions = list(
  R = R.version.string,
  mmrm = as.character(packageVersion("mmrm")),
  nlme = as.character(packageVersion("nlme"))
))

# ---------------------------------------------------------------- group-specific (mmrm)
for (ml in c(FALSE, TRUE)) {
  tag <- if (ml) "ml" else "reml"
  f_cs <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + cs(AVISIT | ARMCD / USUBJID), data = fev,
               reml = !ml)
  out[[paste0("cs_group_", tag)]] <- mmrm_out(f_cs)
  f_ar <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + ar1(AVISIT | ARMCD / USUBJID), data = fev,
               reml = !ml)
  out[[paste0("ar1_group_", tag)]] <- mmrm_out(f_ar)
}
f_cs <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + cs(AVISIT | ARMCD / USUBJID), data = fev)
f_cs_kr <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + cs(AVISIT | ARMCD / USUBJID), data = fev,
                method = "Kenward-Roger", vcov = "Kenward-Roger-Linear")
sm_kr <- summary(f_cs_kr)$coefficients
sm_sat <- summary(f_cs)$coefficients
out$cs_group_reml$df_satterthwaite <- as.list(sm_sat[, "df"])
out$cs_group_reml$df_kr_linear <- as.list(sm_kr[, "df"])
out$cs_group_reml$se_kr_linear <- as.list(sm_kr[, "Std. Error"])

# --------------------------------------------------------------------- weights (mmrm, gls)
f_w <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + ar1(AVISIT | USUBJID), data = fev,
            weights = fev$WEIGHT)
out$ar1_weights_reml <- mmrm_out(f_w)
g_w <- gls(fml, data = obs, correlation = corAR1(form = ~ VISITN | USUBJID),
           weights = varFixed(~ 1 / WEIGHT), method = "REML")
out$ar1_weights_reml$gls_loglik <- as.numeric(logLik(g_w))
out$ar1_weights_reml$gls_rho <- as.numeric(coef(g_w$modelStruct$corStruct, unconstrained = FALSE))
out$ar1_weights_reml$gls_sigma2 <- g_w$sigma^2

# ------------------------------------------------------------------ variance functions (nlme)
gls_out <- function(g) {
  list(
    loglik = as.numeric(logLik(g)),
    coef = as.list(coef(g)),
    se = as.list(sqrt(diag(vcov(g)))),
    sigma2 = g$sigma^2,
    cor = I(as.numeric(coef(g$modelStruct$corStruct, unconstrained = FALSE))),
    var = as.list(coef(g$modelStruct$varStruct, unconstrained = FALSE))
  )
}
for (ml in c(FALSE, TRUE)) {
  meth <- if (ml) "ML" else "REML"
  tag <- tolower(meth)
  out[[paste0("gls_varident_", tag)]] <- gls_out(gls(
    fml, data = obs, method = meth, correlation = corAR1(form = ~ VISITN | USUBJID),
    weights = varIdent(form = ~ 1 | AVISIT)))
  out[[paste0("gls_varpower_", tag)]] <- gls_out(gls(
    fml, data = obs, method = meth, correlation = corCompSymm(form = ~ 1 | USUBJID),
    weights = varPower(form = ~ FEV1_BL)))
  out[[paste0("gls_varexp_", tag)]] <- gls_out(gls(
    fml, data = obs, method = meth, correlation = corAR1(form = ~ VISITN | USUBJID),
    weights = varExp(form = ~ VISITN2)))
}
l_vi <- lme(fml, data = obs, random = ~ 1 | USUBJID, weights = varIdent(form = ~ 1 | ARMCD),
            method = "REML")
out$lme_varident_reml <- list(
  loglik = as.numeric(logLik(l_vi)),
  coef = as.list(fixef(l_vi)),
  se = as.list(sqrt(diag(vcov(l_vi)))),
  sigma2 = l_vi$sigma^2,
  re_var = as.numeric(getVarCov(l_vi)[1, 1]),
  var = as.list(coef(l_vi$modelStruct$varStruct, unconstrained = FALSE))
)

# ---------------------------------------------------------------- conditional prediction
miss <- which(is.na(fev$FEV1))
pred_out <- function(fit) {
  p <- predict(fit, newdata = fev, se.fit = TRUE, interval = "confidence")
  list(row = miss - 1L, fit = unname(p[miss, "fit"]), se = unname(p[miss, "se"]))
}
f_ar1 <- mmrm(FEV1 ~ RACE + ARMCD * AVISIT + ar1(AVISIT | USUBJID), data = fev)
out$predict_ar1 <- pred_out(f_ar1)
out$predict_ar1$fit_ar1 <- mmrm_out(f_ar1)
out$predict_ar1$theta <- f_ar1$theta_est
out$predict_cs_group <- pred_out(f_cs)
out$predict_weights <- pred_out(f_w)

write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "mmrm_group_weights.json")
