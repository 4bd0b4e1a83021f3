# Deletion (leave-one-subject-out) diagnostics of linear mixed models, for
# tests/test_diagnostics_influence.py: refits without one subject by R (mmrm for unstructured,
# nlme gls for compound symmetry, nlme lme for random intercept + AR(1)) and the statistics of
# SAS PROC MIXED's INFLUENCE(ITER=...) computed here from those fits with dense per-subject
# likelihoods written out below (independently of the Python package).
# Data: tests/results/mmrm_fev_holes.csv (mmrm's fev_data, see mmrm_structures.R).
# Rerun: Rscript tests/results/influence_groups.R  (writes influence_groups.json next to it)
suppressPackageStartupMessages({library(mmrm); library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
d0 <- read.csv(file.path(here, "mmrm_fev_holes.csv"))
d0$ARMCD <- factor(d0$ARMCD, levels = c("PBO", "TRT"))
d0$AVISIT <- factor(d0$AVISIT, levels = c("VIS1", "VIS2", "VIS3", "VIS4"))
d0$RACE <- factor(d0$RACE, levels = c("Asian", "Black or African American", "White"))
d0$USUBJID <- factor(d0$USUBJID)
fixed <- FEV1 ~ ARMCD * AVISIT + RACE
groups <- c("PT138", "PT77", "PT10", "PT108")

# ---------------------------------------------------------------- V_i of each model
# theta (the package's natural parameters): cs = (sigma2, rho); ri_ar1 = (tau2, sigma2, rho);
# un = (sigma2, rho21, rho31, rho32, rho41, rho42, rho43, sd_ratio2, sd_ratio3, sd_ratio4)
V_block <- function(model, theta, rows) {
  n <- nrow(rows)
  if (model == "cs") {
    return(theta[1] * ((1 - theta[2]) * diag(n) + theta[2]))
  }
  if (model == "ri_ar1") {
    lag <- abs(outer(rows$VISITN, rows$VISITN, "-"))
    return(theta[1] + theta[2] * theta[3]^lag)
  }
  C2 <- diag(4)
  idx <- which(lower.tri(C2), arr.ind = TRUE)
  idx <- idx[order(idx[, 1], idx[, 2]), , drop = FALSE]  # by row: (2,1), (3,1), (3,2), ...
  for (m in seq_len(nrow(idx))) {
    C2[idx[m, 1], idx[m, 2]] <- theta[1 + m]
    C2[idx[m, 2], idx[m, 1]] <- theta[1 + m]
  }
  s <- c(1, theta[8:10])
  S <- theta[1] * (s %o% s) * C2
  v <- as.integer(rows$AVISIT)
  S[v, v, drop = FALSE]
}

# -2 log-likelihood of the data d: REML at theta; ML at (theta, beta) (beta NULL: GLS beta)
m2loglik <- function(model, theta, d, reml, beta = NULL) {
  X <- model.matrix(fixed, d)
  y <- d$FEV1
  p <- ncol(X)
  XVX <- matrix(0, p, p); XVy <- numeric(p); yVy <- 0; logdet <- 0
  blocks <- split(seq_len(nrow(d)), droplevels(d$USUBJID))
  Vinv <- list()
  for (g in names(blocks)) {
    r <- blocks[[g]]
    V <- V_block(model, theta, d[r, ])
    ch <- chol(V)
    logdet <- logdet + 2 * sum(log(diag(ch)))
    Vi <- chol2inv(ch)
    Vinv[[g]] <- Vi
    XVX <- XVX + t(X[r, , drop = FALSE]) %*% Vi %*% X[r, , drop = FALSE]
    XVy <- XVy + t(X[r, , drop = FALSE]) %*% Vi %*% y[r]
    yVy <- yVy + t(y[r]) %*% Vi %*% y[r]
  }
  if (identical(beta, "vcov")) return(solve(XVX))  # Var(beta_hat) = (X'V^-1X)^-1
  b <- if (is.null(beta)) solve(XVX, XVy) else beta
  q <- as.numeric(yVy - 2 * t(b) %*% XVy + t(b) %*% XVX %*% b)
  N <- nrow(d)
  if (reml) {
    return((N - p) * log(2 * pi) + logdet + as.numeric(determinant(XVX)$modulus) + q)
  }
  N * log(2 * pi) + logdet + q
}

# observed information of theta: the Hessian of -l (REML, or ML profiled over beta) by central
# differences (steps 1e-3 relative: smaller ones let rounding in the log-determinants dominate);
# W is its inverse
information <- function(model, theta, d, reml) {
  f <- function(th) m2loglik(model, th, d, reml) / 2
  k <- length(theta)
  h <- 1e-3 * pmax(abs(theta), 0.05)
  H <- matrix(0, k, k)
  for (a in 1:k) for (b in a:k) {
    ea <- replace(numeric(k), a, h[a]); eb <- replace(numeric(k), b, h[b])
    H[a, b] <- (f(theta + ea + eb) - f(theta + ea - eb) - f(theta - ea + eb) +
                f(theta - ea - eb)) / (4 * h[a] * h[b])
    H[b, a] <- H[a, b]
  }
  H
}

# ---------------------------------------------------------------- fits
fit_model <- function(model, d, reml) {
  if (model == "un") {
    f <- FEV1 ~ ARMCD * AVISIT + RACE + us(AVISIT | USUBJID)
    # tightly converged as in mmrm_structures.R: nlminb, else BFGS where nlminb reports a
    # singular convergence
    fit <- tryCatch(
      mmrm(f, data = d, reml = reml, optimizer = "nlminb",
           optimizer_control = list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 5000,
                                    iter.max = 5000)),
      error = function(e) mmrm(f, data = d, reml = reml, optimizer = "BFGS",
                               optimizer_control = list(reltol = 1e-15, maxit = 5000)))
    S <- VarCorr(fit)
    sd <- sqrt(diag(S))
    C <- cov2cor(S)
    rho <- c(C[2, 1], C[3, 1], C[3, 2], C[4, 1], C[4, 2], C[4, 3])
    theta <- c(S[1, 1], rho, sd[2:4] / sd[1])
    return(list(beta = coef(fit), theta = unname(theta)))
  }
  ctrl <- list(tolerance = 1e-12, msTol = 1e-14, msMaxIter = 1000, maxIter = 1000,
               niterEM = 0, returnObject = TRUE)
  method <- if (reml) "REML" else "ML"
  if (model == "cs") {
    fit <- gls(fixed, data = d, correlation = corCompSymm(form = ~ 1 | USUBJID),
               method = method, control = ctrl)
    rho <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
    theta <- c(fit$sigma^2, rho)
  } else {
    fit <- lme(fixed, data = d, random = ~ 1 | USUBJID,
               correlation = corAR1(form = ~ VISITN | USUBJID), method = method,
               control = ctrl)
    rho <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
    theta <- c(as.numeric(getVarCov(fit)[1, 1]), fit$sigma^2, rho)
  }
  list(beta = fixef_or_coef(fit), theta = unname(theta))
}
# Var(beta_hat) = (X'V^-1X)^-1 at the fit's theta (SAS's model-based covariance; nlme's vcov of
# an ML gls fit scales it by N / (N - p))
with_vcov <- function(fit, model, d) {
  fit$vcov <- m2loglik(model, fit$theta, d, TRUE, beta = "vcov")
  fit
}
fixef_or_coef <- function(fit) if (inherits(fit, "lme")) fixef(fit) else coef(fit)

cases <- list(un_reml = list(model = "un", reml = TRUE),
              cs_reml = list(model = "cs", reml = TRUE),
              cs_ml = list(model = "cs", reml = FALSE),
              ri_ar1_ml = list(model = "ri_ar1", reml = FALSE),
              ri_ar1_reml = list(model = "ri_ar1", reml = TRUE))
out <- list(versions = list(R = R.version.string, mmrm = as.character(packageVersion("mmrm")),
                            nlme = as.character(packageVersion("nlme"))),
            groups = groups, cases = list())
for (cn in names(cases)) {
  cs <- cases[[cn]]
  full <- with_vcov(fit_model(cs$model, d0, cs$reml), cs$model, d0)
  p <- length(full$beta)
  W <- solve(information(cs$model, full$theta, d0, cs$reml))
  m2l_full <- if (cs$reml) m2loglik(cs$model, full$theta, d0, TRUE) else
    m2loglik(cs$model, full$theta, d0, FALSE, full$beta)
  rows <- list()
  for (g in groups) {
    dg <- d0[d0$USUBJID != g, ]
    dg$USUBJID <- droplevels(dg$USUBJID)
    del <- with_vcov(fit_model(cs$model, dg, cs$reml), cs$model, dg)
    db <- full$beta - del$beta
    dt <- full$theta - del$theta
    m2l <- if (cs$reml) m2loglik(cs$model, del$theta, d0, TRUE) else
      m2loglik(cs$model, del$theta, d0, FALSE, del$beta)
    X <- model.matrix(fixed, d0)[d0$USUBJID == g, , drop = FALSE]
    yg <- d0$FEV1[d0$USUBJID == g]
    rows[[g]] <- list(
      nobs = length(yg),
      beta = unname(del$beta), theta = del$theta,
      cookd = as.numeric(t(db) %*% solve(full$vcov, db)) / p,
      mdffits = as.numeric(t(db) %*% solve(del$vcov, db)) / p,
      covratio = det(del$vcov) / det(full$vcov),
      covtrace = abs(sum(diag(solve(full$vcov, del$vcov))) - p),
      cookd_cov = as.numeric(t(dt) %*% solve(W, dt)),
      ld = m2l - m2l_full,
      press = sum((yg - X %*% del$beta)^2))
  }
  out$cases[[cn]] <- list(model = cs$model, reml = cs$reml, beta = unname(full$beta),
                          theta = full$theta, names = names(full$beta), deleted = rows)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "influence_groups.json"))
