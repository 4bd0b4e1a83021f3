# lme4 REML reference values for three of statsmodels' own lme test data sets
# (statsmodels/regression/tests/results/lmeNN.csv, as used by test_lme.py).
#
# Writes /work/refs/lme4_small_reml.json (jsonlite, digits = NA).
# Run:  Rscript /work/refs/lme4_small_reml.R [results_dir]
# results_dir defaults to $SM_LME_RESULTS, else to the installed statsmodels'
# regression/tests/results (found by asking `python`).
#
# Model (the "drf" = dependent random effects case of statsmodels'
# results/lme_results.R, which is what MixedLM(endog, exog_fe, groups, exog_re)
# fits):
#   endog ~ 0 + exog_fe_* + (0 + exog_re_* | groups),  REML = TRUE
# (exog_re_0 is a column of ones, so the random part is a random intercept,
#  plus a random slope on exog_re_1 when present; there is no fixed intercept.)
#
# Reported: fixed effects, their SEs from vcov() = (X' V^-1 X)^-1 evaluated at
# the REML estimate, the full vcov matrix, the random-effects covariance, the
# residual variance (scale), the REML log-likelihood, and the data itself.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(tools)
})

args <- commandArgs(trailingOnly = TRUE)
all_args <- commandArgs(trailingOnly = FALSE)
script_dir <- dirname(normalizePath(sub("^--file=", "", all_args[grep("^--file=", all_args)][1])))
out_file <- file.path(script_dir, "lme4_small_reml.json")

results_dir <- if (length(args) >= 1) args[1] else Sys.getenv("SM_LME_RESULTS", "")
sm_version <- NA_character_
if (!nzchar(results_dir)) {
  # R puts its own lib dirs on LD_LIBRARY_PATH, which can make a pyenv python
  # load the system libpython (and miss its site-packages): drop it for the call.
  sm_dir <- system2("env", c("-u", "LD_LIBRARY_PATH", "python", "-c", shQuote("import statsmodels, os; print(os.path.dirname(statsmodels.__file__))")),
                    stdout = TRUE)
  results_dir <- file.path(sm_dir, "regression", "tests", "results")
}
sm_version <- tryCatch(system2("env", c("-u", "LD_LIBRARY_PATH", "python", "-c", shQuote("import statsmodels; print(statsmodels.__version__)")),
                               stdout = TRUE), error = function(e) NA_character_)

files <- c("lme00.csv", "lme03.csv", "lme08.csv")

mat_rows <- function(m) unname(lapply(seq_len(nrow(m)), function(i) I(unname(m[i, ]))))
# I(): keep length-1 vectors as JSON arrays under auto_unbox = TRUE

out <- list(
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite")),
                  statsmodels_data_from = sm_version),
  generated = format(Sys.time(), tz = "UTC", usetz = TRUE),
  note = paste("REML fits, lme4 default optimizer and controls.",
               "se_fe = sqrt(diag(vcov(m))) = sqrt(diag((X' V^-1 X)^-1)) at the REML estimate.",
               "cov_re is the random-effects covariance on the data scale (not divided by scale).",
               "loglike_reml = logLik(m) = -REMLcrit/2 (statsmodels' MixedLM llf uses the same convention)."),
  fits = list()
)

for (f in files) {
  path <- file.path(results_dir, f)
  d <- read.csv(path)
  fe <- grep("^exog_fe", names(d), value = TRUE)
  re <- grep("^exog_re", names(d), value = TRUE)
  fml <- sprintf("endog ~ 0 + %s + (0 + %s | groups)",
                 paste(fe, collapse = " + "), paste(re, collapse = " + "))
  m <- lmer(as.formula(fml), data = d, REML = TRUE)
  V <- as.matrix(vcov(m))
  vc <- VarCorr(m)
  cov_re <- as.matrix(vc$groups)
  attributes(cov_re)[c("stddev", "correlation")] <- NULL
  out$fits[[sub("\\.csv$", "", f)]] <- list(
    file = f,
    file_md5 = unname(md5sum(path)),
    n_obs = nrow(d),
    n_groups = length(unique(d$groups)),
    formula = fml,
    exog_fe = I(fe),
    exog_re = I(re),
    REML = TRUE,
    fe_params = as.list(fixef(m)),
    se_fe = as.list(setNames(sqrt(diag(V)), fe)),
    vcov_fe = mat_rows(V),
    cov_re = mat_rows(cov_re),
    cov_re_names = I(re),
    scale = sigma(m)^2,
    theta = I(unname(getME(m, "theta"))),
    loglike_reml = as.numeric(logLik(m)),
    REML_criterion = unname(getME(m, "devcomp")$cmp["REML"]),
    singular = isSingular(m),
    optimizer_messages = m@optinfo$conv$lme4$messages,
    data = list(groups = d$groups, endog = d$endog,
                exog_fe = lapply(setNames(fe, fe), function(v) d[[v]]),
                exog_re = lapply(setNames(re, re), function(v) d[[v]]))
  )
  cat("\n==", f, ":", fml, "\n")
  print(cbind(est = fixef(m), se = sqrt(diag(V))))
  print(vc, comp = "Variance")
  cat("REML logLik:", as.numeric(logLik(m)), "\n")
}

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"),
           out_file)
cat("wrote", out_file, "\n")
