## Reference intervals for covariance parameters and intraclass correlations
## (statsmodels_lmm_ext: res.conf_int_cov(), res.icc()).
##
## Run from this directory:
##     cd tests/results && Rscript conf_int_cov.R
## Writes conf_int_cov.json next to this script.  Needs lme4, nlme and jsonlite.
##
## * lme4 confint(method = "profile"): profile-likelihood intervals on the sd / correlation
##   scale.  lme4's profile() refits by ML (devfun2 calls refitML), so its intervals are those
##   of the ML deviance even for a REML fit; the ML estimates are stored too.
##   Models: sleepstudy (random intercept and slope; data = lme4::sleepstudy, identical to
##   statsmodels_lmm_ext/datasets/sleepstudy.csv), Dyestuff and Dyestuff2 (one-way variance
##   components; data copied into the JSON; Dyestuff2's batch sd has lower limit 0).
## * nlme intervals(): Wald intervals from the numerical Hessian apVar on nlme's scale (log sd,
##   Fisher z of correlations, log((1+phi)/(1-phi)) of corAR1, log of varIdent ratios, log
##   sigma).  Models on Orthodont (statsmodels_lmm_ext/datasets/orthodont.csv, exported from
##   nlme 3.1.162): lme random intercept + corAR1, gls corSymm + varIdent(visit) and gls
##   corAR1 + varIdent(Sex); and lme's random intercept and slope on sleepstudy (sds and
##   their correlation).  The numerical Hessian uses .relStep = 1e-4 and
##   minAbsParApVar = 0.5 (lmeControl / glsControl): with the default step (eps^(1/3) times
##   |parameter|, tiny for a parameter near 0 such as phi = -0.04 here) fdHess is unstable -- the
##   SE of corAR1's unconstrained parameter came out 0.355 in one fit and 0.327 in a refit --
##   while steps from 1e-4 to 1e-3 agree to 1e-4.
## * ICC of a one-way model: the REML profile likelihood of icc = s_b^2 / (s_b^2 + s^2),
##   written out with dense matrices (an independent definition check: the profile over the
##   total variance is minimised with optimize() and the limits found with uniroot()), the
##   exact F-based interval of the balanced one-way layout (Searle, Casella and McCulloch 1992,
##   section 3.5) and the Wald interval on the logit scale from nlme's apVar (delta method).

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(jsonlite)
})

data_dir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
stopifnot(dir.exists(data_dir))
level <- 0.95
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            nlme = as.character(packageVersion("nlme"))),
            level = level)

ci_frame <- function(ci) {
  list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

## ---------------------------------------------------------------- lme4 profile
lme4_case <- function(formula, data) {
  fm <- lmer(formula, data = data, REML = TRUE)
  fml <- lmer(formula, data = data, REML = FALSE)
  ci <- confint(fm, method = "profile", level = level, oldNames = FALSE)
  ci <- ci[!rownames(ci) %in% names(fixef(fm)), , drop = FALSE]
  vc <- as.data.frame(VarCorr(fml))
  list(profile = ci_frame(ci),
       ml_estimate = setNames(as.list(vc$sdcor), paste(vc$grp, vc$var1, vc$var2)),
       reml_loglik = as.numeric(logLik(fm)), ml_loglik = as.numeric(logLik(fml)))
}

out$sleepstudy <- lme4_case(Reaction ~ Days + (Days | Subject), sleepstudy)
out$dyestuff <- c(lme4_case(Yield ~ 1 + (1 | Batch), Dyestuff),
                  list(data = list(Batch = as.character(Dyestuff$Batch), Yield = Dyestuff$Yield)))
out$dyestuff2 <- c(lme4_case(Yield ~ 1 + (1 | Batch), Dyestuff2),
                   list(data = list(Batch = as.character(Dyestuff2$Batch),
                                    Yield = Dyestuff2$Yield)))

## ------------------------------------------- REML profile written out (sleepstudy)
## lme4 profiles only the ML deviance; our default profiles the fit's criterion.  Reference
## for the REML profile: the REML deviance -2 l(sd_int, cor, sd_days, sigma) of the
## random-slope model written out group by group (V_i = Z_i G Z_i' + sigma^2 I), minimised
## with optim (BFGS, then Nelder-Mead, then BFGS) over the other three parameters on the
## log / atanh scale, and the limits found with uniroot() where the profile deviance exceeds
## the minimum by qchisq(level, 1).
reml_profile_sleepstudy <- function(d, rows) {
  y <- d$Reaction
  X <- cbind(1, d$Days)
  n <- length(y)
  p <- ncol(X)
  groups <- split(seq_len(n), d$Subject)
  dev <- function(par) tryCatch(dev1(par), error = function(e) 1e10)  # outside the space
  dev1 <- function(par) {  # par = (sd_int, cor, sd_days, sigma)
    G <- matrix(c(par[1]^2, par[2] * par[1] * par[3], par[2] * par[1] * par[3], par[3]^2), 2)
    ld <- 0; A <- matrix(0, p, p); b <- numeric(p); cc <- 0
    for (g in groups) {
      ch <- chol(X[g, ] %*% G %*% t(X[g, ]) + par[4]^2 * diag(length(g)))
      ld <- ld + 2 * sum(log(diag(ch)))
      Xs <- backsolve(ch, X[g, ], transpose = TRUE)
      ys <- backsolve(ch, y[g], transpose = TRUE)
      A <- A + crossprod(Xs); b <- b + drop(crossprod(Xs, ys)); cc <- cc + sum(ys^2)
    }
    q <- cc - sum(b * solve(A, b))
    (n - p) * log(2 * pi) + ld + as.numeric(determinant(A)$modulus) + q
  }
  to_par <- function(x) c(exp(x[1]), tanh(x[2]), exp(x[3]), exp(x[4]))
  minimise <- function(f, x0) {
    ctl <- list(reltol = 1e-15, maxit = 5000, ndeps = rep(1e-6, length(x0)))
    r <- optim(x0, f, method = "BFGS", control = ctl)
    r <- optim(r$par, f, method = "Nelder-Mead", control = list(reltol = 1e-15, maxit = 5000))
    optim(r$par, f, method = "BFGS", control = ctl)
  }
  fm <- lmer(Reaction ~ Days + (Days | Subject), data = d, REML = TRUE)
  vc <- as.data.frame(VarCorr(fm))$sdcor  # sd_int, sd_days, cor, sigma
  x0 <- c(log(vc[1]), atanh(vc[3]), log(vc[2]), log(vc[4]))
  full <- minimise(function(x) dev(to_par(x)), x0)
  dmin <- full$value
  xhat <- full$par
  crit <- qchisq(level, 1)
  res <- list(estimate = to_par(xhat), deviance = dmin, rows = rows, lower = c(), upper = c())
  for (j in rows) {
    warm <- xhat[-j]
    prof <- function(t) {  # t on the real line of parameter j
      r <- minimise(function(x) { z <- numeric(4); z[j] <- t; z[-j] <- x; dev(to_par(z)) },
                    warm)
      warm <<- r$par
      r$value - dmin - crit
    }
    se <- 0.3
    lo <- uniroot(prof, xhat[j] - c(8 * se, 0), tol = 1e-10)$root
    warm <- xhat[-j]
    hi <- uniroot(prof, xhat[j] + c(0, 8 * se), tol = 1e-10)$root
    z <- numeric(4); z[j] <- lo; res$lower <- c(res$lower, to_par(z)[j])
    z[j] <- hi; res$upper <- c(res$upper, to_par(z)[j])
  }
  res
}
## rows: 2 = correlation, 3 = sd of the Days slope (1-based in (sd_int, cor, sd_days, sigma))
out$sleepstudy_reml_profile <- reml_profile_sleepstudy(sleepstudy, c(2, 3))

## ---------------------------------------------------------------- nlme Wald
as_fac <- function(x) factor(as.character(x), levels = sort(unique(as.character(x)),
                                                           method = "radix"))
o <- read.csv(file.path(data_dir, "orthodont.csv"), stringsAsFactors = FALSE)
o$Subject <- as_fac(o$Subject)
o$Sex <- as_fac(o$Sex)

nlme_rows <- function(iv, parts) {
  res <- list()
  for (p in parts) {
    m <- iv[[p]]
    if (is.list(m) && !is.matrix(m)) m <- m[[1]]
    if (is.null(dim(m))) {
      res[[p]] <- list(names = p, lower = m[["lower"]], est = m[["est."]],
                       upper = m[["upper"]])
    } else {
      res[[p]] <- list(names = rownames(m), lower = unname(m[, "lower"]),
                       est = unname(m[, "est."]), upper = unname(m[, "upper"]))
    }
  }
  res
}

m1 <- lme(distance ~ age * Sex, random = ~ 1 | Subject,
          correlation = corAR1(form = ~ visit | Subject), data = o, method = "REML",
          control = lmeControl(.relStep = 1e-4, minAbsParApVar = 0.5))
out$orthodont_lme_ar1 <- c(nlme_rows(intervals(m1, level = level, which = "var-cov"),
                                     c("reStruct", "corStruct", "sigma")),
                           list(loglik = as.numeric(logLik(m1))))
m_ss <- lme(Reaction ~ Days, random = ~ Days | Subject, data = sleepstudy, method = "REML",
            control = lmeControl(.relStep = 1e-4, minAbsParApVar = 0.5))
out$sleepstudy_lme <- c(nlme_rows(intervals(m_ss, level = level, which = "var-cov"),
                                  c("reStruct", "sigma")),
                        list(loglik = as.numeric(logLik(m_ss))))
gctl <- glsControl(.relStep = 1e-4, minAbsParApVar = 0.5)
m2 <- gls(distance ~ age * Sex, correlation = corSymm(form = ~ visit | Subject),
          weights = varIdent(form = ~ 1 | visit), data = o, method = "REML", control = gctl)
out$orthodont_gls_un <- c(nlme_rows(intervals(m2, level = level, which = "var-cov"),
                                    c("corStruct", "varStruct", "sigma")),
                          list(loglik = as.numeric(logLik(m2))))
m3 <- gls(distance ~ age * Sex, correlation = corAR1(form = ~ visit | Subject),
          weights = varIdent(form = ~ 1 | Sex), data = o, method = "REML", control = gctl)
out$orthodont_gls_ar1_varident <- c(nlme_rows(intervals(m3, level = level, which = "var-cov"),
                                              c("corStruct", "varStruct", "sigma")),
                                    list(loglik = as.numeric(logLik(m3))))

## ---------------------------------------------------------------- ICC of a one-way model
icc_case <- function(y, g) {
  g <- as_fac(g)
  N <- length(y)
  Z <- model.matrix(~ 0 + g)
  X <- matrix(1, N, 1)
  p <- 1
  ## REML deviance (-2 l) at (icc, total variance tau2), dense V
  dev <- function(icc, tau2) {
    V <- tau2 * (icc * Z %*% t(Z) + (1 - icc) * diag(N))
    Vi <- solve(V)
    A <- t(X) %*% Vi %*% X
    beta <- solve(A, t(X) %*% Vi %*% y)
    r <- y - X %*% beta
    as.numeric((N - p) * log(2 * pi) + determinant(V)$modulus + determinant(A)$modulus +
                 t(r) %*% Vi %*% r)
  }
  prof <- function(icc) {
    optimize(function(lt) dev(icc, exp(lt)), log(var(y)) + c(-5, 5), tol = 1e-12)$objective
  }
  fit <- optimize(prof, c(0, 1 - 1e-9), tol = 1e-12)
  dmin <- fit$objective
  crit <- qchisq(level, 1)
  h <- function(icc) prof(icc) - dmin - crit
  lower <- if (h(0) <= 0) 0 else uniroot(h, c(0, fit$minimum), tol = 1e-12)$root
  upper <- uniroot(h, c(fit$minimum, 1 - 1e-9), tol = 1e-12)$root
  ## exact interval of the balanced one-way layout (a groups of n)
  a <- nlevels(g)
  n <- N / a
  stopifnot(all(table(g) == n))
  msa <- n * sum((tapply(y, g, mean) - mean(y))^2) / (a - 1)
  mse <- sum((y - ave(y, g))^2) / (a * (n - 1))
  Fs <- msa / mse
  fl <- Fs / qf(1 - (1 - level) / 2, a - 1, a * (n - 1))
  fu <- Fs / qf((1 - level) / 2, a - 1, a * (n - 1))
  exact <- c(max(0, (fl - 1) / (fl + n - 1)), (fu - 1) / (fu + n - 1))
  ## Wald on the logit scale from nlme's apVar (log sd_b, log sigma)
  d <- data.frame(y = y, g = g)
  m <- lme(y ~ 1, random = ~ 1 | g, data = d, method = "REML",
           control = lmeControl(.relStep = 1e-4, minAbsParApVar = 0.5))
  av <- m$apVar
  pars <- attr(av, "Pars")
  sb2 <- exp(2 * pars[1])
  s2 <- exp(2 * pars[2])
  icc_hat <- sb2 / (sb2 + s2)
  ## logit(icc) = 2 log sd_b - 2 log sigma
  grad <- c(2, -2)
  se <- sqrt(as.numeric(t(grad) %*% av %*% grad))
  z <- qnorm(1 - (1 - level) / 2)
  wald <- plogis(qlogis(icc_hat) + c(-1, 1) * z * se)
  list(estimate = fit$minimum, profile = c(lower, upper), exact_f = exact,
       nlme_estimate = icc_hat, wald_logit = wald, data = list(g = as.character(g), y = y))
}
out$icc_dyestuff <- icc_case(Dyestuff$Yield, Dyestuff$Batch)
ow <- read.csv(file.path(data_dir, "oneway.csv"), stringsAsFactors = FALSE)
out$icc_oneway <- icc_case(ow$y, ow$group)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null",
                  na = "null"), "conf_int_cov.json")
