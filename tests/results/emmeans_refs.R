# Reference results from R's emmeans for statsmodels_lmm_ext (emmeans/lsmeans
# reproduction).  Run as:
#   cd tests/results && Rscript emmeans_refs.R
# Reads CSVs from ../../statsmodels_lmm_ext/datasets/, writes
#   emmeans_refs.json (this directory) and
#   ../../statsmodels_lmm_ext/datasets/twofactor_unbalanced.csv/.txt
#
# Every table is summary(<emmGrid>, infer = c(TRUE, TRUE)) (CIs and tests with
# the same adjustment); the exact R expression is stored in "call".

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)   # needed by emmeans for lmer.df = "satterthwaite"
  library(pbkrtest)
  library(nlme)
  library(emmeans)
  library(jsonlite)
})

datadir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
emm_options(msg.interaction = TRUE)

as_fac <- function(d, cols) {
  for (v in cols) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]])))
  d
}

MVT_SEED <- 1L

# Evaluate an R expression given as a string (the string is stored verbatim as
# "call"), capturing any messages/warnings emmeans emits (e.g. the note that
# adjust = "tukey" was changed to "sidak").
run_tab <- function(call_str, seed = NULL) {
  msgs <- character(0)
  if (!is.null(seed)) set.seed(seed)
  s <- withCallingHandlers(
    eval(parse(text = call_str), envir = parent.frame()),
    message = function(m) {
      msgs <<- c(msgs, trimws(gsub("\\s+", " ", conditionMessage(m))))
      invokeRestart("muffleMessage")
    },
    warning = function(w) {
      msgs <<- c(msgs, paste("WARNING:", trimws(gsub("\\s+", " ", conditionMessage(w)))))
      invokeRestart("muffleWarning")
    })
  df <- as.data.frame(s)
  for (v in names(df)) if (is.factor(df[[v]])) df[[v]] <- as.character(df[[v]])
  out <- list(
    call = call_str,
    adjust = attr(s, "adjust"),
    note = as.list(unname(attr(s, "mesg"))),
    messages = as.list(unique(msgs)),
    estName = attr(s, "estName"),
    pri_vars = as.list(attr(s, "pri.vars")),
    by_vars = as.list(attr(s, "by.vars")),
    rows = df
  )
  if (!is.null(seed)) out$seed <- seed
  out
}

python_fe <- function(m) {
  b <- if (inherits(m, "merMod")) fixef(m) else coef(m)
  list(names = names(b), values = unname(b))
}

###########################################################################
# Case 1: oats split plot
###########################################################################
oats <- read.csv(file.path(datadir, "oats.csv"), stringsAsFactors = FALSE)
oats <- as_fac(oats, c("Block", "Variety", "nitro_f"))

m_oats <- lmerTest::lmer(grain_yield ~ Variety * nitro_f + (1 | Block/Variety),
                         data = oats, REML = TRUE)

R1 <- list()
for (dfm in c("kenward-roger", "satterthwaite")) {
  sfx <- if (dfm == "kenward-roger") "kr" else "satt"
  R1[[paste0("emm_Variety_", sfx)]] <- run_tab(sprintf(
    'summary(emmeans(m_oats, ~ Variety, lmer.df = "%s"), infer = c(TRUE, TRUE))', dfm))
  R1[[paste0("emm_nitro_", sfx)]] <- run_tab(sprintf(
    'summary(emmeans(m_oats, ~ nitro_f, lmer.df = "%s"), infer = c(TRUE, TRUE))', dfm))
  R1[[paste0("emm_nitro_by_Variety_", sfx)]] <- run_tab(sprintf(
    'summary(emmeans(m_oats, ~ nitro_f | Variety, lmer.df = "%s"), infer = c(TRUE, TRUE))', dfm))
  R1[[paste0("emm_Variety_x_nitro_", sfx)]] <- run_tab(sprintf(
    'summary(emmeans(m_oats, ~ Variety * nitro_f, lmer.df = "%s"), infer = c(TRUE, TRUE))', dfm))
}


for (adj in c("tukey", "bonferroni", "holm", "sidak", "scheffe", "none", "mvt")) {
  R1[[paste0("pairs_nitro_", adj, "_kr")]] <- run_tab(sprintf(
    'summary(pairs(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger")), infer = c(TRUE, TRUE), adjust = "%s")', adj),
    seed = if (adj == "mvt") MVT_SEED else NULL)
}
R1[["pairs_nitro_by_Variety_tukey_kr"]] <- run_tab(
  'summary(pairs(emmeans(m_oats, ~ nitro_f | Variety, lmer.df = "kenward-roger")), infer = c(TRUE, TRUE), adjust = "tukey")')
R1[["pairs_nitro_by_Variety_tukey_satt"]] <- run_tab(
  'summary(pairs(emmeans(m_oats, ~ nitro_f | Variety, lmer.df = "satterthwaite")), infer = c(TRUE, TRUE), adjust = "tukey")')

R1[["trtvsctrl_nitro_dunnettx_kr"]] <- run_tab(
  'summary(contrast(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), method = "trt.vs.ctrl"), infer = c(TRUE, TRUE), adjust = "dunnettx")')
R1[["trtvsctrl_nitro_mvt_kr"]] <- run_tab(
  'summary(contrast(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), method = "trt.vs.ctrl"), infer = c(TRUE, TRUE), adjust = "mvt")',
  seed = MVT_SEED)
# default adjust of "consec" (emmeans uses "mvt" -> Monte Carlo, so seed it)
R1[["consec_nitro_default_kr"]] <- run_tab(
  'summary(contrast(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), method = "consec"), infer = c(TRUE, TRUE))',
  seed = MVT_SEED)
R1[["poly_nitro_none_kr"]] <- run_tab(
  'summary(contrast(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), method = "poly"), infer = c(TRUE, TRUE), adjust = "none")')
R1[["custom_lin_nitro_kr"]] <- run_tab(
  'summary(contrast(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), method = list(lin = c(-3, -1, 1, 3))), infer = c(TRUE, TRUE))')

# compact letter display (needs multcomp + multcompView)
cld_avail <- requireNamespace("multcomp", quietly = TRUE) &&
             requireNamespace("multcompView", quietly = TRUE)
if (cld_avail) {
  call_str <- 'multcomp::cld(emmeans(m_oats, ~ nitro_f, lmer.df = "kenward-roger"), adjust = "tukey", Letters = letters, sort = FALSE)'
  msgs <- character(0)
  cl <- withCallingHandlers(eval(parse(text = call_str)),
    message = function(m) { msgs <<- c(msgs, trimws(gsub("\\s+", " ", conditionMessage(m)))); invokeRestart("muffleMessage") })
  dcl <- as.data.frame(cl)
  for (v in names(dcl)) if (is.factor(dcl[[v]])) dcl[[v]] <- as.character(dcl[[v]])
  dcl$.group <- trimws(dcl$.group)
  R1[["cld_nitro_tukey_kr"]] <- list(
    call = call_str, adjust = attr(cl, "adjust"),
    ci_adjust = "sidak (emmeans switches tukey -> sidak for the CIs of the means; letters use tukey p-values)",
    note = as.list(unname(attr(cl, "mesg"))), messages = as.list(unique(msgs)),
    rows = dcl)
}

case_oats <- list(
  data = "oats.csv",
  python = list(
    call = 'smf.mixedlm("grain_yield ~ Variety * nitro_f", oats, groups="Block", re_formula="1", vc_formula={"Variety": "0 + C(Variety)"}).fit(reml=True)',
    formula = "grain_yield ~ Variety * nitro_f", groups = "Block", re_formula = "1",
    vc_formula = list(Variety = "0 + C(Variety)"), reml = TRUE),
  r_call = 'lmerTest::lmer(grain_yield ~ Variety * nitro_f + (1 | Block/Variety), data = oats, REML = TRUE)',
  fe_names_r = python_fe(m_oats)$names,
  fe_params_r = python_fe(m_oats)$values,
  loglik = as.numeric(logLik(m_oats)),
  varcomp = as.data.frame(VarCorr(m_oats))[, c("grp", "vcov", "sdcor")],
  cld_available = cld_avail,
  results = R1)

###########################################################################
# Case 2: simulated unbalanced two-factor design with random block
###########################################################################
set.seed(4)
tf <- expand.grid(B = paste0("b", 1:4), A = paste0("a", 1:3),
                  block = paste0("blk", 1:6), stringsAsFactors = FALSE)
tf <- tf[, c("block", "A", "B")]
effA <- c(a1 = 0, a2 = 2.0, a3 = -1.5)
effB <- c(b1 = 0, b2 = 1.0, b3 = 2.5, b4 = -0.5)
effAB <- matrix(0, 3, 4, dimnames = list(names(effA), names(effB)))
effAB["a2", "b3"] <- 1.5; effAB["a3", "b2"] <- -1.2; effAB["a3", "b4"] <- 1.0
effBlk <- setNames(rnorm(6, 0, 2), paste0("blk", 1:6))
tf$x <- round(runif(nrow(tf), 0, 3), 3)
tf$y <- 10 + effA[tf$A] + effB[tf$B] + effAB[cbind(tf$A, tf$B)] + 0.5 * tf$x +
        effBlk[tf$block] + rnorm(nrow(tf), 0, 1.5)
tf$y <- round(unname(tf$y), 4)
drop <- sample(nrow(tf), round(0.15 * nrow(tf)))
tf <- tf[-drop, ]
rownames(tf) <- NULL
stopifnot(all(table(tf$A, tf$B) > 0))
write.csv(tf, file.path(datadir, "twofactor_unbalanced.csv"), row.names = FALSE)
cell_tab <- table(tf$A, tf$B)
writeLines(c(
  "twofactor_unbalanced: simulated unbalanced two-factor design with a random block.",
  "Generated by tests/results/emmeans_refs.R (R, set.seed(4)); see that script for the exact code.",
  "Design: full crossing A (3 levels a1-a3) x B (4 levels b1-b4) within each of 6 blocks (blk1-blk6),",
  sprintf("i.e. 72 rows, of which %d (about 15%%) were removed at random -> unbalanced cells, none empty.", length(drop)),
  "Model: y = 10 + A effect (a1 0, a2 2.0, a3 -1.5) + B effect (b1 0, b2 1.0, b3 2.5, b4 -0.5)",
  "        + interaction (a2:b3 +1.5, a3:b2 -1.2, a3:b4 +1.0) + 0.5*x + block effect (N(0, sd 2))",
  "        + noise (N(0, sd 1.5)); x ~ Uniform(0, 3) rounded to 3 decimals; y rounded to 4 decimals.",
  sprintf("Rows: %d. Columns: block (string blk1-blk6), A (string a1-a3), B (string b1-b4), x (numeric covariate), y (numeric response).", nrow(tf)),
  paste("Cell counts (A x B):", paste(sprintf("%s:%s=%d", rep(rownames(cell_tab), 4),
        rep(colnames(cell_tab), each = 3), as.vector(cell_tab)), collapse = ", "))
), file.path(datadir, "twofactor_unbalanced.txt"))

# refit from the CSV so R and Python see identical data
tfd <- read.csv(file.path(datadir, "twofactor_unbalanced.csv"), stringsAsFactors = FALSE)
tfd <- as_fac(tfd, c("block", "A", "B"))
m_tf <- lmerTest::lmer(y ~ A * B + x + (1 | block), data = tfd, REML = TRUE)
m_tf_ols <- lm(y ~ A * B + x + block, data = tfd)

R2 <- list()
R2[["emm_A_equal_kr"]] <- run_tab(
  'summary(emmeans(m_tf, ~ A, lmer.df = "kenward-roger"), infer = c(TRUE, TRUE))')
R2[["emm_A_proportional_kr"]] <- run_tab(
  'summary(emmeans(m_tf, ~ A, weights = "proportional", lmer.df = "kenward-roger"), infer = c(TRUE, TRUE))')
R2[["emm_A_at_x1.5_kr"]] <- run_tab(
  'summary(emmeans(m_tf, ~ A, at = list(x = 1.5), lmer.df = "kenward-roger"), infer = c(TRUE, TRUE))')
R2[["emm_B_by_A_kr"]] <- run_tab(
  'summary(emmeans(m_tf, ~ B | A, lmer.df = "kenward-roger"), infer = c(TRUE, TRUE))')
for (adj in c("tukey", "holm", "none")) {
  R2[[paste0("pairs_A_", adj, "_kr")]] <- run_tab(sprintf(
    'summary(pairs(emmeans(m_tf, ~ A, lmer.df = "kenward-roger")), infer = c(TRUE, TRUE), adjust = "%s")', adj))
}
R2[["pairs_B_by_A_tukey_kr"]] <- run_tab(
  'summary(pairs(emmeans(m_tf, ~ B | A, lmer.df = "kenward-roger")), infer = c(TRUE, TRUE), adjust = "tukey")')

case_tf <- list(
  data = "twofactor_unbalanced.csv",
  python = list(
    call = 'smf.mixedlm("y ~ A * B + x", d, groups="block").fit(reml=True)',
    formula = "y ~ A * B + x", groups = "block", re_formula = NULL, vc_formula = NULL,
    reml = TRUE),
  r_call = 'lmerTest::lmer(y ~ A * B + x + (1 | block), data = tfd, REML = TRUE)',
  fe_names_r = python_fe(m_tf)$names,
  fe_params_r = python_fe(m_tf)$values,
  loglik = as.numeric(logLik(m_tf)),
  varcomp = as.data.frame(VarCorr(m_tf))[, c("grp", "vcov", "sdcor")],
  x_mean = mean(tfd$x),
  results = R2)

R2o <- list()
R2o[["emm_A"]] <- run_tab('summary(emmeans(m_tf_ols, ~ A), infer = c(TRUE, TRUE))')
R2o[["pairs_A_tukey"]] <- run_tab(
  'summary(pairs(emmeans(m_tf_ols, ~ A)), infer = c(TRUE, TRUE), adjust = "tukey")')
case_tf_ols <- list(
  data = "twofactor_unbalanced.csv",
  python = list(call = 'smf.ols("y ~ A * B + x + block", d).fit()',
                formula = "y ~ A * B + x + block"),
  r_call = 'lm(y ~ A * B + x + block, data = tfd)',
  fe_names_r = python_fe(m_tf_ols)$names,
  fe_params_r = python_fe(m_tf_ols)$values,
  loglik = as.numeric(logLik(m_tf_ols)),
  df_resid = df.residual(m_tf_ols),
  sigma = sigma(m_tf_ols),
  results = R2o)

###########################################################################
# Case 3: FEV gls with AR(1) within subject
###########################################################################
fev <- read.csv(file.path(datadir, "fev_data.csv"), stringsAsFactors = FALSE)
fev <- fev[!is.na(fev$FEV1), ]
fev <- as_fac(fev, c("USUBJID", "AVISIT", "ARMCD", "RACE", "SEX"))
m_fev <- gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL,
             correlation = corAR1(form = ~ VISITN | USUBJID),
             data = fev, method = "REML")

R3 <- list()
R3[["emm_ARMCD_by_AVISIT_default"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD | AVISIT), infer = c(TRUE, TRUE))')
R3[["emm_ARMCD_by_AVISIT_dferror"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD | AVISIT, mode = "df.error"), infer = c(TRUE, TRUE))')
R3[["emm_ARMCD_by_AVISIT_satt"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD | AVISIT, mode = "satterthwaite"), infer = c(TRUE, TRUE))')
R3[["emm_ARMCD_default"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD), infer = c(TRUE, TRUE))')
R3[["emm_ARMCD_dferror"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD, mode = "df.error"), infer = c(TRUE, TRUE))')
R3[["emm_ARMCD_satt"]] <- run_tab(
  'summary(emmeans(m_fev, ~ ARMCD, mode = "satterthwaite"), infer = c(TRUE, TRUE))')
R3[["pairs_ARMCD_by_AVISIT_dferror"]] <- run_tab(
  'summary(pairs(emmeans(m_fev, ~ ARMCD | AVISIT, mode = "df.error")), infer = c(TRUE, TRUE))')

case_fev <- list(
  data = "fev_data.csv (rows with non-missing FEV1)",
  python = list(
    note = "nlme::gls with AR(1) residual correlation within USUBJID ordered by VISITN; no direct statsmodels MixedLM equivalent (compare estimates/SEs only)",
    formula = "FEV1 ~ ARMCD * AVISIT + FEV1_BL", groups = "USUBJID",
    correlation = "AR1 over VISITN within USUBJID", reml = TRUE),
  r_call = 'gls(FEV1 ~ ARMCD * AVISIT + FEV1_BL, correlation = corAR1(form = ~ VISITN | USUBJID), data = fev, method = "REML")',
  n_obs = nrow(fev),
  fe_names_r = python_fe(m_fev)$names,
  fe_params_r = python_fe(m_fev)$values,
  loglik = as.numeric(logLik(m_fev)),
  sigma = m_fev$sigma,
  phi = unname(coef(m_fev$modelStruct$corStruct, unconstrained = FALSE)),
  df_residual = nrow(fev) - length(coef(m_fev)),
  FEV1_BL_mean = mean(fev$FEV1_BL),
  results = R3)

###########################################################################
out <- list(
  versions = list(
    R = R.version.string,
    emmeans = as.character(packageVersion("emmeans")),
    lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest")),
    nlme = as.character(packageVersion("nlme")),
    pbkrtest = as.character(packageVersion("pbkrtest")),
    mvtnorm = as.character(packageVersion("mvtnorm")),
    multcomp = if (requireNamespace("multcomp", quietly = TRUE)) as.character(packageVersion("multcomp")) else NULL,
    multcompView = if (requireNamespace("multcompView", quietly = TRUE)) as.character(packageVersion("multcompView")) else NULL),
  notes = list(
    tables = "each table = as.data.frame(summary(obj, infer = c(TRUE, TRUE), adjust = ...)); 'adjust' is attr(summary, 'adjust') i.e. the method emmeans actually used; 'note' are the annotation lines printed below the table; 'messages' are messages/warnings emitted while computing (e.g. adjustment switches).",
    mvt_seed = "tables with adjust 'mvt' (incl. default of method='consec') were computed right after set.seed(1); mvtnorm is Monte-Carlo based, so p-values/CIs are only reproducible to ~3 decimals",
    factor_levels = "factor levels sorted alphabetically (as patsy does)"),
  cases = list(
    oats_splitplot = case_oats,
    twofactor_block = case_tf,
    twofactor_ols = case_tf_ols,
    fev_gls_ar1 = case_fev))

write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null",
             dataframe = "rows", null = "null"),
      "emmeans_refs.json")
cat("written emmeans_refs.json\n")
