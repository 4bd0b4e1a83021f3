## Reference results for statsmodels_lmm_ext: Satterthwaite (lmerTest) and
## Kenward-Roger (pbkrtest) inference for linear mixed models fitted by REML.
##
## Usage:  cd tests/results && Rscript lmertest_kr.R
## Reads:  ../../statsmodels_lmm_ext/datasets/{sleepstudy,oats,oats_unbalanced}.csv
## Writes: lmertest_kr.json (this directory)
##         model matrices (R column order/names) to $LMERTEST_MM_DIR
##         (default: <tempdir of the OS>/lmertest_kr_mm) for _check_lmertest_names.py
##
## Every coefficient-indexed quantity in the JSON (vectors, matrices, contrast
## matrices L) is written in PATSY column order with patsy column names, i.e.
## the order of statsmodels.formula.api.ols(python_formula, df).exog_names.
## Factors are created with alphabetical levels so that R's treatment coding
## uses the same reference level as patsy.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

data_dir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
out_json <- "lmertest_kr.json"
mm_dir <- Sys.getenv("LMERTEST_MM_DIR",
                     file.path(dirname(tempdir()), "lmertest_kr_mm"))
dir.create(mm_dir, showWarnings = FALSE, recursive = TRUE)

as_factor_alpha <- function(x) factor(x, levels = sort(unique(x)))

read_sleep <- function() {
  d <- read.csv(file.path(data_dir, "sleepstudy.csv"), stringsAsFactors = FALSE)
  d$Subject <- as_factor_alpha(d$Subject)
  d
}
read_oats <- function(file) {
  d <- read.csv(file.path(data_dir, file), stringsAsFactors = FALSE)
  for (v in c("Block", "Variety", "nitro_f")) d[[v]] <- as_factor_alpha(d[[v]])
  d
}

## ---------------------------------------------------------------------------
## R column name -> patsy column name (treatment coding, factors without C()).
r2patsy_one <- function(nm, data) {
  if (nm == "(Intercept)") return("Intercept")
  parts <- strsplit(nm, ":", fixed = TRUE)[[1]]
  out <- vapply(parts, function(p) {
    if (p %in% names(data) && !is.factor(data[[p]])) return(p)  # numeric
    for (v in names(data)) {
      if (is.factor(data[[v]]) && startsWith(p, v)) {
        lev <- substring(p, nchar(v) + 1)
        if (lev %in% levels(data[[v]])) return(sprintf("%s[T.%s]", v, lev))
      }
    }
    stop("cannot map R column name to patsy: ", nm)
  }, character(1))
  paste(out, collapse = ":")
}
r2patsy <- function(nms, data) vapply(nms, r2patsy_one, character(1), data = data,
                                      USE.NAMES = FALSE)

## permutation: R column perm[i] corresponds to patsy column i
make_perm <- function(fit, data, patsy_names) {
  rn <- names(fixef(fit))
  pn <- r2patsy(rn, data)
  perm <- match(patsy_names, pn)
  if (anyNA(perm) || length(perm) != length(rn))
    stop("R and patsy names do not match: ", paste(pn, collapse = ", "))
  perm
}

## L given in patsy order -> L in R order
L_to_R <- function(Lp, perm) {
  Lr <- matrix(0, nrow(Lp), ncol(Lp))
  Lr[, perm] <- Lp
  Lr
}

rows_list <- function(M) lapply(seq_len(nrow(M)), function(i) unname(as.numeric(M[i, ])))

named_vec <- function(x, nms) { x <- as.numeric(x); names(x) <- nms; as.list(x) }

df_to_list <- function(df) {
  ## data.frame with row names -> list of columns (unnamed vectors) + row names
  out <- list(rownames = rownames(df))
  for (cn in names(df)) out[[cn]] <- unname(as.numeric(df[[cn]]))
  out
}

## warnings collector
fit_with_warnings <- function(expr) {
  w <- character(0)
  val <- withCallingHandlers(expr, warning = function(c) {
    w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning")
  }, message = function(c) {
    w <<- c(w, paste("message:", conditionMessage(c))); invokeRestart("muffleMessage")
  })
  list(value = val, warnings = I(w))  # I(): always a JSON array
}

anova_table <- function(fit, ddf, term_map) {
  a <- as.data.frame(anova(fit, type = 3, ddf = ddf))
  list(
    ## I(): keep one-term tables as JSON arrays (no auto-unboxing)
    term = I(rownames(a)),
    term_patsy = I(unname(term_map[rownames(a)])),
    sum_sq = I(unname(a[["Sum Sq"]])),
    mean_sq = I(unname(a[["Mean Sq"]])),
    num_df = I(unname(a[["NumDF"]])),
    den_df = I(unname(a[["DenDF"]])),
    F_value = I(unname(a[["F value"]])),
    p_value = I(unname(a[["Pr(>F)"]])),
    heading = paste(attr(anova(fit, type = 3, ddf = ddf), "heading"), collapse = " ")
  )
}

contest_block <- function(fit, Lp, perm, name, description) {
  Lr <- L_to_R(Lp, perm)
  res <- list(name = name, description = description,
              L = rows_list(Lp), L_r_order = rows_list(Lr))
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    key <- if (ddf == "Satterthwaite") "satterthwaite" else "kenward_roger"
    ct <- as.data.frame(contest(fit, Lr, ddf = ddf, joint = TRUE))
    blk <- list(F_value = ct[["F value"]], num_df = ct[["NumDF"]],
                den_df = ct[["DenDF"]], p_value = ct[["Pr(>F)"]],
                sum_sq = ct[["Sum Sq"]], mean_sq = ct[["Mean Sq"]])
    if (nrow(Lp) == 1) {
      c1 <- as.data.frame(contest1D(fit, as.numeric(Lr[1, ]), ddf = ddf))
      blk$contest1D <- list(estimate = c1[["Estimate"]], se = c1[["Std. Error"]],
                            df = c1[["df"]], t_value = c1[["t value"]],
                            p_value = c1[["Pr(>|t|)"]])
    }
    res[[key]] <- blk
  }
  ## same hypothesis via pbkrtest::KRmodcomp(fit, L): separates the unscaled
  ## Wald-type F (FstatU, computed with vcovAdj) from the KR scaling factor
  k <- KRmodcomp(fit, Lr)$stats
  res$kenward_roger$krmodcomp_L <- list(FstatU = k$FstatU, Fstat = k$Fstat,
                                        F.scaling = k$F.scaling, ndf = k$ndf,
                                        ddf = k$ddf, p.value = k$p.value,
                                        p.valueU = k$p.valueU)
  res
}

krmodcomp_block <- function(large, small, small_python_formula, small_r_call,
                            data, patsy_names, perm) {
  k <- KRmodcomp(large, small)
  tst <- k$test
  test <- lapply(rownames(tst), function(r)
    list(stat = tst[r, "stat"], ndf = tst[r, "ndf"], ddf = tst[r, "ddf"],
         F.scaling = if (is.na(tst[r, "F.scaling"])) NULL else tst[r, "F.scaling"],
         p.value = tst[r, "p.value"]))
  names(test) <- rownames(tst)
  st <- k$stats
  stats <- list()
  for (nm in names(st)) {
    v <- st[[nm]]
    if (length(v) == 1 && is.null(names(v))) stats[[nm]] <- as.numeric(v)
    else stats[[nm]] <- as.list(setNames(as.numeric(v), names(v)))
  }
  Lk <- as.matrix(k$L)
  list(
    small_python_formula = small_python_formula,
    small_r_call = small_r_call,
    test = test,
    test_note = "F.scaling of row Ftest is NA in R (omitted); FtestU is the unscaled F",
    stats = stats,
    L_patsy = rows_list(Lk[, perm, drop = FALSE]),
    L_description = "restriction matrix used internally by KRmodcomp (rows span the difference of the column spaces), patsy order"
  )
}

## ---------------------------------------------------------------------------
run_case <- function(spec) {
  cat("=== case", spec$name, "===\n")
  data <- spec$data
  fw <- fit_with_warnings(
    lmer(spec$r_formula, data = data, REML = TRUE))
  fit <- fw$value
  perm <- make_perm(fit, data, spec$patsy_names)
  pn <- spec$patsy_names
  rn <- names(fixef(fit))

  ## model matrix for the Python checker (R order, R names)
  X <- getME(fit, "X")
  colnames(X) <- rn
  write.csv(as.data.frame(X), file.path(mm_dir, paste0(spec$name, "_X.csv")),
            row.names = FALSE)

  V <- as.matrix(vcov(fit))
  Vadj <- as.matrix(pbkrtest::vcovAdj(fit))

  vc <- as.data.frame(VarCorr(fit))
  re_var <- list()
  for (i in seq_len(nrow(vc))) {
    if (vc$grp[i] == "Residual") next
    if (is.na(vc$var2[i])) {
      key <- if (vc$var1[i] == "(Intercept)") vc$grp[i] else vc$var1[i]
    } else {
      key <- paste0(vc$grp[i], ":", vc$var2[i])
    }
    re_var[[key]] <- vc$vcov[i]
  }

  sc <- summary(fit)$coefficients  # lmerTest default: Satterthwaite
  skr <- summary(fit, ddf = "Kenward-Roger")$coefficients

  coef_block <- function(s) list(
    names = pn,
    estimate = unname(s[perm, "Estimate"]),
    se = unname(s[perm, "Std. Error"]),
    df = unname(s[perm, "df"]),
    t_value = unname(s[perm, "t value"]),
    p_value = unname(s[perm, "Pr(>|t|)"]))

  res <- list(
    description = spec$description,
    python = spec$python,
    r_call = spec$r_call,
    nobs = nobs(fit),
    n_groups = as.list(ngrps(fit)),
    fe_names = pn,
    fe_names_r = rn[perm],
    fe_names_r_native_order = rn,
    fe_names_r_note = "fe_names_r[i] is R's name of patsy column fe_names[i]; fe_names_r_native_order is R's own column order",
    warnings = fw$warnings,
    is_singular = isSingular(fit),
    optimizer_convergence_messages = fit@optinfo$conv$lme4$messages,
    fe_params = named_vec(fixef(fit)[perm], pn),
    bse_fe = named_vec(sqrt(diag(V))[perm], pn),
    loglik_reml = as.numeric(logLik(fit, REML = TRUE)),
    reml_criterion = as.numeric(REMLcrit(fit)),
    sigma2 = sigma(fit)^2,
    scale = sigma(fit)^2,
    re_var = re_var,
    re_var_description = spec$re_var_description,
    theta = as.list(getME(fit, "theta")),
    theta_description = "getME(fit, 'theta'): relative Cholesky factor entries (scaled by sigma), lme4 order",
    satterthwaite_coef = coef_block(sc),
    kenward_roger_coef = coef_block(skr),
    anova_satterthwaite = anova_table(fit, "Satterthwaite", spec$term_map),
    anova_kr = anova_table(fit, "Kenward-Roger", spec$term_map),
    vcov_unadjusted = rows_list(V[perm, perm]),
    vcovAdj = rows_list(Vadj[perm, perm]),
    vcov_names = pn
  )

  if (!is.null(spec$sum_contrasts)) {
    fs <- fit_with_warnings(lmer(spec$r_formula, data = data, REML = TRUE,
                                 contrasts = spec$sum_contrasts))
    res$anova_satterthwaite_sumcoding <- anova_table(fs$value, "Satterthwaite", spec$term_map)
    res$anova_satterthwaite_sumcoding$contrasts <- spec$sum_contrasts
    res$anova_satterthwaite_sumcoding$warnings <- fs$warnings
    res$anova_kr_sumcoding <- anova_table(fs$value, "Kenward-Roger", spec$term_map)
    res$anova_sumcoding_loglik_reml <- as.numeric(logLik(fs$value))
  }

  res$contests <- lapply(spec$contrasts, function(cc)
    contest_block(fit, cc$L, perm, cc$name, cc$description))
  names(res$contests) <- vapply(spec$contrasts, function(cc) cc$name, character(1))

  if (!is.null(spec$small_r_formula)) {
    fsm <- fit_with_warnings(lmer(spec$small_r_formula, data = data, REML = TRUE))
    res$krmodcomp <- krmodcomp_block(fit, fsm$value, spec$small_python_formula,
                                     spec$small_r_call, data, pn, perm)
    res$krmodcomp$small_warnings <- fsm$warnings
  }
  print(summary(fit))
  print(anova(fit, type = 3, ddf = "Satterthwaite"))
  print(anova(fit, type = 3, ddf = "Kenward-Roger"))
  res
}

## ---------------------------------------------------------------------------
sleep <- read_sleep()
oats <- read_oats("oats.csv")
oats_unbal <- read_oats("oats_unbalanced.csv")

sleep_names <- c("Intercept", "Days")
oats_names <- c("Intercept", "Variety[T.Marvellous]", "Variety[T.Victory]",
                "nitro_f[T.N0.2]", "nitro_f[T.N0.4]", "nitro_f[T.N0.6]",
                "Variety[T.Marvellous]:nitro_f[T.N0.2]",
                "Variety[T.Victory]:nitro_f[T.N0.2]",
                "Variety[T.Marvellous]:nitro_f[T.N0.4]",
                "Variety[T.Victory]:nitro_f[T.N0.4]",
                "Variety[T.Marvellous]:nitro_f[T.N0.6]",
                "Variety[T.Victory]:nitro_f[T.N0.6]")

sleep_contrasts <- list(
  list(name = "slope", description = "1-row L: Days slope",
       L = matrix(c(0, 1), 1)),
  list(name = "intercept_slope", description = "2-row L: identity (Intercept and Days jointly = 0)",
       L = diag(2)))

e <- function(i, p = 12) { v <- numeric(p); v[i] <- 1; v }
oats_contrasts <- list(
  list(name = "victory_vs_marvellous",
       description = "1-row L: Variety[T.Victory] - Variety[T.Marvellous] (Victory vs Marvellous at reference nitro_f N0.0)",
       L = matrix(e(3) - e(2), 1)),
  list(name = "variety_at_N0",
       description = "2-row L: Variety[T.Marvellous] and Variety[T.Victory] jointly = 0 (Variety differences at N0.0)",
       L = rbind(e(2), e(3))),
  list(name = "nitro_at_golden_rain",
       description = "3-row L: nitro_f[T.N0.2], nitro_f[T.N0.4], nitro_f[T.N0.6] jointly = 0 (nitrogen differences for Golden Rain)",
       L = rbind(e(4), e(5), e(6))))

sleep_re_ri <- "re_var: Subject = variance of the random intercept for Subject (residual variance is sigma2)"
sleep_re_ris <- paste("re_var: Subject = variance of random intercept, Days = variance of random Days slope,",
                      "Subject:Days = covariance (intercept, Days slope); all for grouping factor Subject",
                      "(residual variance is sigma2)")
oats_re <- paste("re_var: Block = variance of the random Block intercept;",
                 "Variety:Block = variance of the random intercept of Variety within Block",
                 "(the whole plot; statsmodels vc_formula component 'Variety'); residual variance is sigma2")

term_map_sleep <- c(Days = "Days")
term_map_oats <- c(Variety = "Variety", nitro_f = "nitro_f", "Variety:nitro_f" = "Variety:nitro_f")

oats_python <- function(ds) list(formula = "grain_yield ~ Variety * nitro_f", groups = "Block",
                                 re_formula = "1", vc_formula = list(Variety = "0 + C(Variety)"),
                                 dataset = ds)

cases <- list(
  list(name = "sleep_ri", data = sleep,
       description = "sleepstudy, random intercept per Subject",
       r_formula = Reaction ~ Days + (1 | Subject),
       r_call = "lmerTest::lmer(Reaction ~ Days + (1 | Subject), data = sleepstudy, REML = TRUE)",
       python = list(formula = "Reaction ~ Days", groups = "Subject", re_formula = "1",
                     vc_formula = NULL, dataset = "sleepstudy.csv"),
       patsy_names = sleep_names, term_map = term_map_sleep,
       re_var_description = sleep_re_ri, contrasts = sleep_contrasts,
       small_r_formula = Reaction ~ 1 + (1 | Subject), small_python_formula = "Reaction ~ 1",
       small_r_call = "lmer(Reaction ~ 1 + (1 | Subject), data = sleepstudy, REML = TRUE)"),
  list(name = "sleep_ris", data = sleep,
       description = "sleepstudy, correlated random intercept and Days slope per Subject",
       r_formula = Reaction ~ Days + (Days | Subject),
       r_call = "lmerTest::lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE)",
       python = list(formula = "Reaction ~ Days", groups = "Subject", re_formula = "1 + Days",
                     vc_formula = NULL, dataset = "sleepstudy.csv"),
       patsy_names = sleep_names, term_map = term_map_sleep,
       re_var_description = sleep_re_ris, contrasts = sleep_contrasts,
       small_r_formula = Reaction ~ 1 + (Days | Subject), small_python_formula = "Reaction ~ 1",
       small_r_call = "lmer(Reaction ~ 1 + (Days | Subject), data = sleepstudy, REML = TRUE)"),
  list(name = "oats_nested", data = oats,
       description = "Oats split-plot (balanced): Variety whole plots within Block, nitro_f subplots",
       r_formula = grain_yield ~ Variety * nitro_f + (1 | Block/Variety),
       r_call = "lmerTest::lmer(grain_yield ~ Variety * nitro_f + (1 | Block/Variety), data = oats, REML = TRUE)",
       python = oats_python("oats.csv"),
       patsy_names = oats_names, term_map = term_map_oats,
       re_var_description = oats_re, contrasts = oats_contrasts,
       sum_contrasts = list(Variety = "contr.sum", nitro_f = "contr.sum"),
       small_r_formula = grain_yield ~ Variety + nitro_f + (1 | Block/Variety),
       small_python_formula = "grain_yield ~ Variety + nitro_f",
       small_r_call = "lmer(grain_yield ~ Variety + nitro_f + (1 | Block/Variety), data = oats, REML = TRUE)"),
  list(name = "oats_unbal", data = oats_unbal,
       description = "Oats split-plot with 8 rows removed (unbalanced), same model as oats_nested",
       r_formula = grain_yield ~ Variety * nitro_f + (1 | Block/Variety),
       r_call = "lmerTest::lmer(grain_yield ~ Variety * nitro_f + (1 | Block/Variety), data = oats_unbalanced, REML = TRUE)",
       python = oats_python("oats_unbalanced.csv"),
       patsy_names = oats_names, term_map = term_map_oats,
       re_var_description = oats_re, contrasts = oats_contrasts,
       sum_contrasts = list(Variety = "contr.sum", nitro_f = "contr.sum"),
       small_r_formula = grain_yield ~ Variety + nitro_f + (1 | Block/Variety),
       small_python_formula = "grain_yield ~ Variety + nitro_f",
       small_r_call = "lmer(grain_yield ~ Variety + nitro_f + (1 | Block/Variety), data = oats_unbalanced, REML = TRUE)")
)

results <- list()
for (cs in cases) results[[cs$name]] <- run_case(cs)

out <- list(
  generated_by = "tests/results/lmertest_kr.R",
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  notes = c(
    "All models fitted by REML with lmerTest::lmer (lme4 default optimizer and settings).",
    "Factors were created with factor(x, levels = sort(unique(x))) so R treatment coding has the same reference level as patsy.",
    "All coefficient-indexed quantities (fe_params, bse_fe, coefficient tables, vcov matrices, contrast matrices L) are in PATSY column order with patsy names (fe_names); L_r_order gives L in R's native column order as passed to lmerTest::contest.",
    "pbkrtest (vcovAdj, KRmodcomp, and lmerTest's ddf = 'Kenward-Roger', which calls pbkrtest) uses the EXPECTED information of the REML variance parameters.",
    "lmerTest's Satterthwaite df use the OBSERVED information: a numerical Hessian (numDeriv) of the REML deviance w.r.t. the variance parameters (sigma, theta-based parameterisation), evaluated at the optimum.",
    "anova_* tables: lmerTest::anova(fit, type = 3, ddf = ...); 'term' is R's term label, 'term_patsy' the patsy Term.name().",
    "anova_satterthwaite_sumcoding: same model refitted with contrasts = list(Variety = 'contr.sum', nitro_f = 'contr.sum'); lmerTest's type III tests should be invariant to the coding.",
    "krmodcomp: pbkrtest::KRmodcomp(large, small), both fitted by REML; 'test' rows FtestU (unscaled) and Ftest (scaled); 'stats' is $stats unboxed.",
    "contests: lmerTest::contest(fit, L, ddf = ..., joint = TRUE) and, for 1-row L, contest1D. For q > 1 rows the Kenward-Roger F is the SCALED statistic F.scaling * FstatU (FstatU = Wald F with vcovAdj / q); kenward_roger$krmodcomp_L gives both from pbkrtest::KRmodcomp(fit, L). For balanced designs vcovAdj equals vcov (to ~1e-15) but F.scaling can still differ from 1 (e.g. sleep_ris intercept_slope: 16/17, ddf 16).",
    "kenward_roger_coef: summary(fit, ddf = 'Kenward-Roger')$coefficients (SE from vcovAdj), patsy order.",
    "re_var: variance components from VarCorr (variances, and covariances for correlated terms); see re_var_description per case."
  ),
  cases = results
)

write_json(out, out_json, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null")
cat("wrote", normalizePath(out_json), "\nmodel matrices in", mm_dir, "\n")
