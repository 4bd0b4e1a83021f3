## Reference results from R/nlme for statsmodels_lmm_ext (residual covariance
## structures in linear mixed models / GLS).
##
## Run from this directory:
##     cd tests/results && Rscript nlme_structures.R
## Writes nlme_structures.json next to this script.
##
## Needs R packages nlme and jsonlite, and Python (statsmodels, pandas, numpy):
## the fixed-effect columns are mapped to patsy's names and order by
## _check_nlme_names.py, which verifies numerically that R's model.matrix
## equals the patsy design matrix after reordering the columns.  The Python
## executable is taken from the environment variable PYTHON (default python3).
##
## Factors: every factor gets alphabetical levels (C-locale order, as Python's
## sorted()), so that treatment contrasts have the same reference level as
## patsy.  All estimates in the JSON are in patsy order with patsy names
## (fe_names); fe_names_r gives R's name of each column.
##
## The data set CSVs in statsmodels_lmm_ext/datasets were exported from nlme
## 3.1.162 (row order as in nlme) with:
##   o <- as.data.frame(Orthodont)
##   write.csv(data.frame(distance = o$distance, age = o$age,
##     Subject = as.character(o$Subject), Sex = as.character(o$Sex),
##     visit = as.integer((o$age - 8) / 2 + 1)), "orthodont.csv", row.names = FALSE)
##   b <- as.data.frame(BodyWeight)
##   write.csv(data.frame(weight = b$weight, Time = b$Time,
##     Rat = as.character(b$Rat), Diet = as.character(b$Diet)),
##     "bodyweight.csv", row.names = FALSE)
##   w <- as.data.frame(Wheat2)
##   write.csv(data.frame(Block = as.character(w$Block),
##     variety = as.character(w$variety), grain_yield = w$yield,
##     latitude = w$latitude, longitude = w$longitude), "wheat2.csv", row.names = FALSE)

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})

data_dir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
out_file <- "nlme_structures.json"
checker <- "_check_nlme_names.py"
python <- Sys.getenv("PYTHON", "python3")
stopifnot(dir.exists(data_dir), file.exists(checker))

## alphabetical (C locale / code point) levels, as patsy
as_fac <- function(x) {
  x <- as.character(x)
  factor(x, levels = sort(unique(x), method = "radix"))
}
read_data <- function(stem, factors) {
  d <- read.csv(file.path(data_dir, paste0(stem, ".csv")), stringsAsFactors = FALSE)
  for (v in factors) d[[v]] <- as_fac(d[[v]])
  d
}

orthodont <- read_data("orthodont", c("Subject", "Sex"))
bodyweight <- read_data("bodyweight", c("Rat", "Diet"))
wheat2 <- read_data("wheat2", c("Block", "variety"))
fev_data <- read_data("fev_data", c("USUBJID", "AVISIT", "ARMCD", "RACE", "SEX"))
fev <- fev_data[!is.na(fev_data$FEV1), ]
rownames(fev) <- NULL

## -------------------------------------------------------------------------
## case definitions
## -------------------------------------------------------------------------
st <- function(name, time = NULL, coords = NULL, nugget = FALSE)
  list(name = name, time = time, coords = if (is.null(coords)) NULL else I(coords),
       nugget = nugget)

cases <- list(
  orthodont_ri_ar1_reml = list(
    dataset = "orthodont", data = "orthodont", subset = NULL, dropna = NULL,
    r_call = 'lme(distance ~ age * Sex, random = ~ 1 | Subject, correlation = corAR1(form = ~ visit | Subject), data = orthodont, method = "REML")',
    python_formula = "distance ~ age * Sex", groups = "Subject", re_formula = "1",
    structure = st("AR1", time = "visit"), reml = TRUE),
  orthodont_gls_cs_reml = list(
    dataset = "orthodont", data = "orthodont", subset = NULL, dropna = NULL,
    r_call = 'gls(distance ~ age * Sex, correlation = corCompSymm(form = ~ 1 | Subject), data = orthodont, method = "REML")',
    python_formula = "distance ~ age * Sex", groups = "Subject", re_formula = "0",
    structure = st("CompoundSymmetry"), reml = TRUE),
  orthodont_gls_cs_ml = list(
    dataset = "orthodont", data = "orthodont", subset = NULL, dropna = NULL,
    r_call = 'gls(distance ~ age * Sex, correlation = corCompSymm(form = ~ 1 | Subject), data = orthodont, method = "ML")',
    python_formula = "distance ~ age * Sex", groups = "Subject", re_formula = "0",
    structure = st("CompoundSymmetry"), reml = FALSE),
  bodyweight_gls_car1_reml = list(
    dataset = "bodyweight", data = "bodyweight", subset = NULL, dropna = NULL,
    r_call = 'gls(weight ~ Time * Diet, correlation = corCAR1(form = ~ Time | Rat), data = bodyweight, method = "REML")',
    python_formula = "weight ~ Time * C(Diet)", groups = "Rat", re_formula = "0",
    structure = st("AR1", time = "Time"), reml = TRUE,
    notes = "corCAR1: continuous-time AR(1), corr = rho^|t_i - t_j| with Time in days (real-valued positions). Diet is read by pandas as integer, hence C(Diet) in the Python formula."),
  bodyweight_ri_exp_reml = list(
    dataset = "bodyweight", data = "bodyweight", subset = NULL, dropna = NULL,
    r_call = c(
      'lme(weight ~ Time * Diet, random = ~ 1 | Rat, correlation = corExp(form = ~ Time | Rat), data = bodyweight, method = "REML")',
      'lme(weight ~ Time * Diet, random = ~ 1 | Rat, correlation = corExp(form = ~ Time | Rat), data = bodyweight, method = "REML", control = lmeControl(opt = "optim"))'),
    python_formula = "weight ~ Time * C(Diet)", groups = "Rat", re_formula = "1",
    structure = st("Exponential", time = "Time"), reml = TRUE,
    notes = "corExp without nugget: corr = exp(-|t_i - t_j| / range), Time in days. Diet is read by pandas as integer, hence C(Diet) in the Python formula. The default optimiser (nlminb) converges; loglik_lmeControl_optim records the fit with lmeControl(opt = \"optim\"), which stops early at a worse point (range about 477; the REML profile in range is unimodal with its maximum at the default fit).",
    extra = list(
      loglik_lmeControl_optim = 'lme(weight ~ Time * Diet, random = ~ 1 | Rat, correlation = corExp(form = ~ Time | Rat), data = bodyweight, method = "REML", control = lmeControl(opt = "optim"))'),
    fallback = list(
      dataset = "orthodont", data = "orthodont",
      r_call = 'lme(distance ~ age * Sex, random = ~ 1 | Subject, correlation = corExp(form = ~ age | Subject), data = orthodont, method = "REML")',
      python_formula = "distance ~ age * Sex", groups = "Subject",
      structure = st("Exponential", time = "age"))),
  wheat2_gls_gaus_nugget_reml = list(
    dataset = "wheat2", data = "wheat2", subset = NULL, dropna = NULL,
    r_call = 'gls(grain_yield ~ variety - 1, correlation = corGaus(form = ~ latitude + longitude, nugget = TRUE), data = wheat2, method = "REML")',
    python_formula = "grain_yield ~ 0 + variety", groups = NULL, re_formula = "0",
    structure = st("Gaussian", coords = c("latitude", "longitude"), nugget = TRUE), reml = TRUE,
    notes = "One group (the whole field), Euclidean distance d on (latitude, longitude); nlme: corr = (1 - nugget) * exp(-(d / range)^2) for d > 0. Default nlme start values (no explicit start); check_start_28_0.2 refits with corGaus(c(28, 0.2), ...) (Pinheiro & Bates ch. 5 style start).",
    extra = list(
      loglik_start_28_0.2 = 'gls(grain_yield ~ variety - 1, correlation = corGaus(c(28, 0.2), form = ~ latitude + longitude, nugget = TRUE), data = wheat2, method = "REML")')),
  fev_gls_ar1_reml = list(
    dataset = "fev_data", data = "fev", subset = "FEV1 not missing", dropna = "FEV1",
    r_call = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corAR1(form = ~ VISITN | USUBJID), data = fev, method = "REML")',
    python_formula = "FEV1 ~ ARMCD * AVISIT + FEV1_BL", groups = "USUBJID", re_formula = "0",
    structure = st("AR1", time = "VISITN"), reml = TRUE,
    notes = "fev = fev_data[!is.na(fev_data$FEV1), ]; visits are missing for some subjects, corAR1 uses the integer positions VISITN (gaps kept). loglik_car1_check: same model with corCAR1(form = ~ VISITN | USUBJID); loglik_ar1_order_only: corAR1(form = ~ 1 | USUBJID), which ignores the gaps (for contrast).",
    extra = list(
      loglik_car1_check = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corCAR1(form = ~ VISITN | USUBJID), data = fev, method = "REML")',
      loglik_ar1_order_only = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corAR1(form = ~ 1 | USUBJID), data = fev, method = "REML")')),
  fev_gls_ar1_ml = list(
    dataset = "fev_data", data = "fev", subset = "FEV1 not missing", dropna = "FEV1",
    r_call = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corAR1(form = ~ VISITN | USUBJID), data = fev, method = "ML")',
    python_formula = "FEV1 ~ ARMCD * AVISIT + FEV1_BL", groups = "USUBJID", re_formula = "0",
    structure = st("AR1", time = "VISITN"), reml = FALSE,
    notes = "fev = fev_data[!is.na(fev_data$FEV1), ]; see fev_gls_ar1_reml.",
    extra = list(
      loglik_car1_check = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corCAR1(form = ~ VISITN | USUBJID), data = fev, method = "ML")',
      loglik_ar1_order_only = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corAR1(form = ~ 1 | USUBJID), data = fev, method = "ML")')),
  fev_lme_ri_ar1_reml = list(
    dataset = "fev_data", data = "fev", subset = "FEV1 not missing", dropna = "FEV1",
    r_call = 'lme(FEV1 ~ ARMCD * AVISIT + FEV1_BL, random = ~ 1 | USUBJID, correlation = corAR1(form = ~ VISITN | USUBJID), data = fev, method = "REML")',
    python_formula = "FEV1 ~ ARMCD * AVISIT + FEV1_BL", groups = "USUBJID", re_formula = "1",
    structure = st("AR1", time = "VISITN"), reml = TRUE,
    notes = "fev = fev_data[!is.na(fev_data$FEV1), ]"),
  orthodont_lme_ri_reml = list(
    dataset = "orthodont", data = "orthodont", subset = NULL, dropna = NULL,
    r_call = 'lme(distance ~ age * Sex, random = ~ 1 | Subject, data = orthodont, method = "REML")',
    python_formula = "distance ~ age * Sex", groups = "Subject", re_formula = "1",
    structure = st("Independence"), reml = TRUE),
  orthodont_lme_ri_slope_ml = list(
    dataset = "orthodont", data = "orthodont", subset = NULL, dropna = NULL,
    r_call = 'lme(distance ~ age * Sex, random = ~ age | Subject, data = orthodont, method = "ML")',
    python_formula = "distance ~ age * Sex", groups = "Subject", re_formula = "1 + age",
    structure = st("Independence"), reml = FALSE)
)

## -------------------------------------------------------------------------
## fitting helpers
## -------------------------------------------------------------------------
fit_call <- function(call_str) {
  warns <- character(0)
  fit <- tryCatch(
    withCallingHandlers(eval(parse(text = call_str)),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }),
    error = function(e) e)
  list(fit = fit, warnings = warns)
}

corr_key <- function(k) {
  if (k %in% c("Phi", "Phi1", "Rho")) "rho" else k
}

fits <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  ## try the calls in turn (default optimiser first), then the fallback case
  res <- NULL
  tried <- character(0)
  used <- NULL
  for (call_str in cs$r_call) {
    res <- fit_call(call_str)
    if (!inherits(res$fit, "error")) { used <- call_str; break }
    tried <- c(tried, sprintf("%s failed: %s", call_str, conditionMessage(res$fit)))
  }
  if (is.null(used) && !is.null(cs$fallback)) {
    fb <- cs$fallback
    tried <- c(tried, "falling back to corExp on orthodont")
    for (k in names(fb)) cs[[k]] <- fb[[k]]
    res <- fit_call(fb$r_call)
    if (!inherits(res$fit, "error")) used <- fb$r_call
  }
  if (is.null(used)) stop(nm, ": ", conditionMessage(res$fit))
  cs$r_call <- used
  cs$control <- if (grepl("lmeControl", used, fixed = TRUE)) 'lmeControl(opt = "optim")' else "default"
  cs$failed_attempts <- tried
  cs$warnings <- res$warnings
  cases[[nm]] <- cs
  fits[[nm]] <- res$fit
  cat(sprintf("%-30s logLik = %.10f\n", nm, as.numeric(logLik(res$fit))))
}

## -------------------------------------------------------------------------
## fixed-effect design matrices -> patsy names/order (checked in Python)
## -------------------------------------------------------------------------
work <- tempfile("nlme_names_")
dir.create(work)
spec <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  fit <- fits[[nm]]
  dat <- get(cs$data)
  fixed <- if (inherits(fit, "lme")) eval(fit$call$fixed) else eval(fit$call$model)
  X <- model.matrix(fixed, data = dat)
  beta <- if (inherits(fit, "lme")) fixef(fit) else coef(fit)
  stopifnot(identical(colnames(X), names(beta)), nrow(X) == nobs(fit))
  ## the design matrix is the one nlme used: X beta = population fitted values
  fit0 <- if (inherits(fit, "lme")) fitted(fit, level = 0) else fitted(fit)
  stopifnot(max(abs(drop(X %*% beta) - as.numeric(fit0))) < 1e-8)
  x_file <- file.path(work, paste0(nm, "_X.csv"))
  write.csv(X, x_file, row.names = FALSE)
  spec[[nm]] <- list(dataset = cs$dataset, python_formula = cs$python_formula,
                     dropna = cs$dropna, x_file = normalizePath(x_file))
}
writeLines(toJSON(spec, auto_unbox = TRUE, null = "null", pretty = TRUE),
           file.path(work, "spec.json"))
## R puts /usr/lib/x86_64-linux-gnu first on LD_LIBRARY_PATH; a shared-library
## Python (e.g. pyenv) could then load the system libpython and lose its
## site-packages.  Run Python without R's LD_LIBRARY_PATH.
old_ld <- Sys.getenv("LD_LIBRARY_PATH", unset = NA)
Sys.unsetenv("LD_LIBRARY_PATH")
status <- system2(python, c(checker, shQuote(work)))
if (!is.na(old_ld)) Sys.setenv(LD_LIBRARY_PATH = old_ld)
if (status != 0) stop("name check in Python failed")
mapping <- fromJSON(file.path(work, "mapping.json"), simplifyVector = TRUE)

## -------------------------------------------------------------------------
## collect results
## -------------------------------------------------------------------------
out_cases <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  fit <- fits[[nm]]
  mp <- mapping[[nm]]
  is_lme <- inherits(fit, "lme")
  beta <- if (is_lme) fixef(fit) else coef(fit)
  stopifnot(setequal(mp$fe_names_r, names(beta)))
  ord <- match(mp$fe_names_r, names(beta))
  V <- unname(as.matrix(vcov(fit)))[ord, ord, drop = FALSE]
  dat <- get(cs$data)
  fixed <- if (is_lme) eval(fit$call$fixed) else eval(fit$call$model)
  X <- model.matrix(fixed, data = dat)
  ll <- logLik(fit)

  if (is_lme) {
    ngroups <- unname(fit$dims$ngrps[1])
    G <- as.matrix(pdMatrix(fit$modelStruct$reStruct)[[1]]) * fit$sigma^2
    G2 <- as.matrix(getVarCov(fit))
    stopifnot(max(abs(G - G2)) < 1e-8 * max(1, max(abs(G))))
    re_cov <- unname(G)
    re_names <- rownames(G)
  } else {
    ngroups <- if (is.null(cs$groups)) 1L else length(unique(dat[[cs$groups]]))
    re_cov <- NULL
    re_names <- NULL
  }

  cst <- fit$modelStruct$corStruct
  if (is.null(cst)) {
    corr_params <- setNames(list(), character(0))
  } else {
    cp <- coef(cst, unconstrained = FALSE)
    corr_params <- setNames(as.list(unname(cp)), vapply(names(cp), corr_key, ""))
  }

  extra <- list()
  for (k in names(cs$extra)) {
    r <- fit_call(cs$extra[[k]])
    if (inherits(r$fit, "error")) {
      extra[[k]] <- NULL
      cs$warnings <- c(cs$warnings, sprintf("%s: %s", k, conditionMessage(r$fit)))
    } else {
      extra[[k]] <- as.numeric(logLik(r$fit))
      cp2 <- coef(r$fit$modelStruct$corStruct, unconstrained = FALSE)
      extra[[paste0(k, "_corr_params")]] <-
        setNames(as.list(unname(cp2)), vapply(names(cp2), corr_key, ""))
      if (length(r$warnings))
        cs$warnings <- c(cs$warnings, sprintf("%s: %s", k, r$warnings))
    }
  }
  extra[["extra_calls"]] <- if (length(cs$extra)) cs$extra else NULL

  note <- c(cs$failed_attempts, cs$warnings)
  res <- list(
    dataset = cs$dataset,
    subset = cs$subset,
    r_call = cs$r_call,
    python_formula = cs$python_formula,
    groups = cs$groups,
    re_formula = cs$re_formula,
    structure = cs$structure,
    reml = cs$reml,
    control = cs$control,
    nobs = nobs(fit),
    ngroups = ngroups,
    fe_names = I(mp$fe_names),
    fe_names_r = I(mp$fe_names_r),
    fe_params = I(unname(beta[ord])),
    bse_fe = I(sqrt(diag(V))),
    cov_fe = V,
    loglik = as.numeric(ll),
    m2loglik = -2 * as.numeric(ll),
    aic = AIC(fit),
    bic = BIC(fit),
    df_loglik = attr(ll, "df"),
    sigma2 = fit$sigma^2,
    re_cov = re_cov,
    re_names_r = if (is.null(re_names)) NULL else I(re_names),
    corr_params = corr_params,
    log_det_xtx = as.numeric(determinant(crossprod(X), logarithm = TRUE)$modulus),
    converged_note = if (length(note)) paste(note, collapse = "; ") else NULL,
    notes = cs$notes
  )
  out_cases[[nm]] <- c(res, extra)
}

out <- list(
  r_version = R.version.string,
  nlme_version = as.character(packageVersion("nlme")),
  description = paste(
    "Reference fits from R/nlme for statsmodels_lmm_ext, produced by nlme_structures.R.",
    "Fixed effects (fe_names, fe_params, bse_fe, cov_fe) are in patsy order with patsy names;",
    "fe_names_r holds the corresponding R names (mapping verified numerically on the design matrices",
    "by _check_nlme_names.py). Factor levels are alphabetical (patsy reference levels).",
    "loglik is logLik(fit) (restricted log-likelihood for REML fits), aic/bic from AIC()/BIC(),",
    "df_loglik the number of parameters counted by nlme. sigma2 = fit$sigma^2 (residual variance);",
    "re_cov = random-effects covariance G on the data scale (order re_names_r); bse_fe/cov_fe = vcov(fit).",
    "corr_params from coef(corStruct, unconstrained = FALSE): rho (corAR1/corCAR1 Phi, corCompSymm Rho),",
    "range and nugget (spatial). log_det_xtx = log det(X'X) of the fixed-effect design matrix",
    "(for comparing REML log-likelihood constants)."),
  cases = out_cases
)

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null",
                  matrix = "rowmajor"),
           out_file)
unlink(work, recursive = TRUE)
cat("wrote", normalizePath(out_file), "\n")
