## Reference for lmm.compare: nlme's logLik / AIC / BIC and anova() tables of several
## residual structures and random-effects models on the Orthodont data, REML and ML,
## and SAS PROC MIXED's AICC definition evaluated on the same fits.
##
## Run from this directory:
##     cd tests/results && Rscript compare_nlme.R
## Writes compare_nlme.json next to this script (nlme and R versions inside).
##
## Data: statsmodels_lmm_ext/datasets/orthodont.csv (nlme's Orthodont, see
## nlme_structures.R); factors get alphabetical levels as patsy.
## Models (python names in the JSON; distance ~ age * Sex unless said):
##   cs   gls, corCompSymm(form = ~ 1 | Subject)
##   ar1  gls, corAR1(form = ~ visit | Subject)
##   un   gls, corSymm(form = ~ visit | Subject) + varIdent(form = ~ 1 | visit)
##   ri   lme, random = ~ 1 | Subject
##   rs   lme, random = ~ age | Subject
##   ri_ar1 lme, random = ~ 1 | Subject, corAR1(form = ~ visit | Subject)
##   ri_add (ML only) lme distance ~ age + Sex, random = ~ 1 | Subject
## Tables: anova(cs, ar1, un) and anova(ri, rs, ri_ar1) for REML and ML, and the ML
## table anova(ri_add, ri) (different fixed effects).
## AICC as SAS PROC MIXED documents it ("Information Criteria"): -2l + 2 d n*/(n* - d - 1)
## with d = covariance parameters (REML) or covariance parameters + rank(X) (ML) and
## n* = N - rank(X) (REML) or N (ML); computed here from nlme's logLik.

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
as_fac <- function(x) {
  x <- as.character(x)
  factor(x, levels = sort(unique(x), method = "radix"))
}
d <- read.csv(file.path("..", "..", "statsmodels_lmm_ext", "datasets", "orthodont.csv"),
              stringsAsFactors = FALSE)
d$Subject <- as_fac(d$Subject)
d$Sex <- as_fac(d$Sex)
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-12, msTol = 1e-14,
                   niterEM = 100, opt = "optim")
gctrl <- glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-12, msTol = 1e-14,
                    opt = "optim")

fits <- function(method) {
  f <- distance ~ age * Sex
  list(
    cs = gls(f, d, correlation = corCompSymm(form = ~ 1 | Subject), method = method,
             control = gctrl),
    ar1 = gls(f, d, correlation = corAR1(form = ~ visit | Subject), method = method,
              control = gctrl),
    un = gls(f, d, correlation = corSymm(form = ~ visit | Subject),
             weights = varIdent(form = ~ 1 | visit), method = method, control = gctrl),
    ri = lme(f, d, random = ~ 1 | Subject, method = method, control = ctrl),
    rs = lme(f, d, random = ~ age | Subject, method = method, control = ctrl),
    ri_ar1 = lme(f, d, random = ~ 1 | Subject, correlation = corAR1(form = ~ visit | Subject),
                 method = method, control = ctrl)
  )
}
sas_aicc <- function(m, reml) {
  ll <- logLik(m)
  n <- attr(ll, "nall")
  p <- length(fixef_or_coef(m))
  df <- attr(ll, "df")
  d_sas <- if (reml) df - p else df
  nstar <- if (reml) n - p else n
  nstar <- max(nstar, d_sas + 2)
  -2 * as.numeric(ll) + 2 * d_sas * nstar / (nstar - d_sas - 1)
}
fixef_or_coef <- function(m) if (inherits(m, "lme")) fixef(m) else coef(m)
one <- function(m, reml) {
  ll <- logLik(m)
  list(loglik = as.numeric(ll), df = attr(ll, "df"), nobs = attr(ll, "nall"),
       aic = AIC(m), bic = BIC(m), aicc_sas = sas_aicc(m, reml))
}
table_of <- function(a) {
  list(df = a$df, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
       L.Ratio = if (is.null(a$L.Ratio)) NULL else a$L.Ratio,
       p.value = if (is.null(a$`p-value`)) NULL else a$`p-value`,
       test = if (is.null(a$Test)) NULL else as.character(a$Test))
}
out <- list(versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))),
            fits = list(), tables = list())
for (method in c("REML", "ML")) {
  fs <- fits(method)
  reml <- method == "REML"
  out$fits[[method]] <- lapply(fs, one, reml = reml)
  out$tables[[method]] <- list(
    structures = table_of(anova(fs$cs, fs$ar1, fs$un)),
    random = table_of(anova(fs$ri, fs$rs, fs$ri_ar1))
  )
}
ri_ml <- lme(distance ~ age * Sex, d, random = ~ 1 | Subject, method = "ML", control = ctrl)
ri_add <- lme(distance ~ age + Sex, d, random = ~ 1 | Subject, method = "ML", control = ctrl)
out$fits$ML$ri_add <- one(ri_add, FALSE)
out$tables$ML$fixed <- table_of(anova(ri_add, ri_ml))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "compare_nlme.json")
