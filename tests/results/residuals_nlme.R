## Reference residuals, semivariograms and autocorrelations from R/nlme for
## statsmodels_lmm_ext's res.residuals(), res.variogram() and res.acf()
## (tests/test_diagnostics_residuals.py).
##
## Run from this directory:
##     cd tests/results && Rscript residuals_nlme.R
## Writes residuals_nlme.json next to this script.  Needs nlme and jsonlite.
##
## The data sets are the package's CSVs (statsmodels_lmm_ext/datasets, exported from nlme in
## nlme's row order, see nlme_structures.R), read in file order: every group's rows are sorted
## by time there, the order in which nlme's normalized residuals and ACF are defined.
## Factors get alphabetical levels (as patsy).  Vectors of residuals are in the rows' order.

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})

data_dir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
as_fac <- function(x) {
  x <- as.character(x)
  factor(x, levels = sort(unique(x), method = "radix"))
}
orthodont <- read.csv(file.path(data_dir, "orthodont.csv"), stringsAsFactors = FALSE)
orthodont$Subject <- as_fac(orthodont$Subject)
orthodont$Sex <- as_fac(orthodont$Sex)
bodyweight <- read.csv(file.path(data_dir, "bodyweight.csv"), stringsAsFactors = FALSE)
bodyweight$Rat <- as_fac(bodyweight$Rat)
bodyweight$Diet <- as_fac(bodyweight$Diet)
wheat2 <- read.csv(file.path(data_dir, "wheat2.csv"), stringsAsFactors = FALSE)
wheat2$variety <- as_fac(wheat2$variety)

ctl_lme <- lmeControl(tolerance = 1e-10, msMaxIter = 500, maxIter = 500, msTol = 1e-12)
ctl_gls <- glsControl(tolerance = 1e-10, msMaxIter = 500, maxIter = 500, msTol = 1e-12)

fits <- list(
  orthodont_lme_ar1_varident = list(
    call = 'lme(distance ~ age * Sex, random = ~ 1 | Subject, correlation = corAR1(form = ~ visit | Subject), weights = varIdent(form = ~ 1 | Sex), data = orthodont, method = "REML", control = ctl_lme)',
    variogram_form = ~ visit | Subject, levels = 0:1),
  orthodont_gls_symm_varident = list(
    call = 'gls(distance ~ age * Sex, correlation = corSymm(form = ~ visit | Subject), weights = varIdent(form = ~ 1 | visit), data = orthodont, method = "REML", control = ctl_gls)',
    variogram_form = ~ visit | Subject, levels = NULL),
  bodyweight_lme_exp = list(
    call = 'lme(weight ~ Time * Diet, random = ~ 1 | Rat, correlation = corExp(form = ~ Time | Rat), data = bodyweight, method = "REML")',
    variogram_form = NULL, levels = 0:1),
  ## one group (the field): normalized residuals and the ACF depend on the order of the rows
  ## within the group (nlme: the data's), so only raw and Pearson ones are used from this case
  wheat2_gls_gaus_nugget = list(
    call = 'gls(grain_yield ~ variety - 1, correlation = corGaus(c(28, 0.2), form = ~ latitude + longitude, nugget = TRUE), data = wheat2, method = "REML", control = ctl_gls)',
    variogram_form = NULL, levels = NULL)
)

## nlme's estimates, for evaluating the package's residuals at exactly these values: the fixed
## effects, sigma, the random-intercept variance (lme), the correlation parameters (corAR1 phi,
## corExp / corGaus range and nugget: coef(, unconstrained = FALSE); corSymm: the matrix) and
## all varIdent standard-deviation ratios (allCoef = TRUE: the reference stratum's is 1).
nlme_estimates <- function(fit) {
  ms <- fit$modelStruct
  est <- list(sigma = fit$sigma,
              fixef = as.list(if (inherits(fit, "lme")) fixef(fit) else coef(fit)))
  if (inherits(fit, "lme"))
    est$re_var <- as.numeric(pdMatrix(ms$reStruct[[1]])) * fit$sigma^2
  cs <- ms$corStruct
  if (inherits(cs, "corSymm")) {
    ## the whole matrix (coef() lists it by columns of the upper triangle, without names): that
    ## of the first subject, whose rows are its four visits in order
    est$corr_matrix <- unname(corMatrix(cs)[[1]])
  } else if (!is.null(cs)) est$corr <- as.list(coef(cs, unconstrained = FALSE))
  if (!is.null(ms$varStruct))
    est$var_ratios <- as.list(coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE))
  est
}

vg_list <- function(v) list(dist = v$dist, variog = v$variog, n_pairs = v$n.pairs)

out <- list(software = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))),
            cases = list())
for (nm in names(fits)) {
  spec <- fits[[nm]]
  fit <- eval(parse(text = spec$call))
  case <- list(r_call = spec$call, loglik = as.numeric(logLik(fit)), sigma = fit$sigma,
               coef = unname(fixef_or_coef <- if (inherits(fit, "lme")) fixef(fit) else coef(fit)))
  case$estimates <- nlme_estimates(fit)
  types <- c("response", "pearson", "normalized")
  res <- list()
  if (is.null(spec$levels)) {
    for (ty in types) res$marginal[[ty]] <- unname(as.numeric(resid(fit, type = ty)))
  } else {
    for (lev in spec$levels) {
      kind <- if (lev == 0) "marginal" else "conditional"
      for (ty in types) res[[kind]][[ty]] <- unname(as.numeric(resid(fit, level = lev, type = ty)))
    }
  }
  case$residuals <- res
  vg <- list()
  for (ty in types) {
    v <- if (is.null(spec$variogram_form)) Variogram(fit, resType = ty)
         else Variogram(fit, form = spec$variogram_form, resType = ty)
    vg[[ty]] <- vg_list(v)
  }
  if (is.null(spec$variogram_form)) {
    ## corSpatial: the model's semivariogram (nlme's modelVariog, sig2 = 1 for Pearson
    ## residuals) at the distances of the Pearson variogram, and nlme's default grid
    csT <- fit$modelStruct$corStruct
    v <- Variogram(fit, resType = "pearson")
    mv <- Variogram(csT, distance = v$dist, sig2 = 1)
    vg$model_pearson <- list(dist = mv$dist, variog = mv$variog)
    ## and at the distances of 40 pairs (a nugget shows here: 1 - C(d) = nugget + ...)
    d40 <- Variogram(fit, resType = "pearson", collapse = "none")$dist[seq(1, 4000, by = 100)]
    d40 <- d40[!is.na(d40)]
    mv <- Variogram(csT, distance = d40, sig2 = 1)
    vg$model_pearson_pairs <- list(dist = mv$dist, variog = mv$variog)
    pairs <- Variogram(fit, resType = "pearson", collapse = "none")
    if (nrow(pairs) < 2000) vg$collapse_none <- vg_list(transform(pairs, n.pairs = 1))
    vg$robust <- vg_list(Variogram(fit, resType = "pearson", robust = TRUE))
    vg$maxdist_30 <- vg_list(Variogram(fit, resType = "pearson", maxDist = 30))
    vg$nint_10 <- vg_list(Variogram(fit, resType = "pearson", nint = 10))
    vg$fixed_nint_10 <- vg_list(Variogram(fit, resType = "pearson", nint = 10, collapse = "fixed"))
  }
  case$variogram <- vg
  acf <- list()
  for (ty in types) {
    a <- ACF(fit, resType = ty)
    acf[[ty]] <- list(lag = a$lag, ACF = a$ACF, n_used = as.numeric(attr(a, "n.used")))
  }
  a <- ACF(fit, resType = "normalized", maxLag = 2)
  acf$normalized_maxlag_2 <- list(lag = a$lag, ACF = a$ACF, n_used = as.numeric(attr(a, "n.used")))
  case$acf <- acf
  out$cases[[nm]] <- case
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "residuals_nlme.json")
