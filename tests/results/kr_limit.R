# Reference fixtures for the Kenward-Roger "degenerate limit" cases.
#
# Writes /work/refs/kr_limit.json (jsonlite, digits = NA => full precision).
# Run:  Rscript /work/refs/kr_limit.R
#
# Data sets:
#  * irrigation  (faraway; split-plot, yield ~ irrigation * variety + (1 | field))
#    r-cran-faraway is not packaged in Debian bookworm, so the data frame is
#    loaded from data/irrigation.rda of the faraway 1.0.9 source
#    (github cran/faraway, commit 5c64099c3de32aedb00c27c9686ab6fda84805cf),
#    a copy of which sits next to this script.
#  * beets       (pbkrtest; README example)
#  * Machines    (nlme; score ~ Machine + (0 + Machine | Worker), REML)
#
# Every data set is stored as a list of columns (factor columns as character
# vectors, with the level order in "levels"), so that Python can rebuild it.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(nlme)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script_dir <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)][1])))
if (is.na(script_dir) || !nzchar(script_dir)) script_dir <- "/work/refs"
out_file <- file.path(script_dir, "kr_limit.json")

## ---------------------------------------------------------------- helpers
versions <- function() {
  pk <- c("lme4", "lmerTest", "pbkrtest", "nlme", "Matrix", "jsonlite", "emmeans")
  v <- lapply(pk, function(p) as.character(packageVersion(p)))
  names(v) <- pk
  c(list(R = R.version.string), v)
}

data_columns <- function(df) {
  cols <- lapply(df, function(x) if (is.factor(x)) as.character(x) else as.numeric(x))
  levs <- lapply(Filter(is.factor, df), levels)
  list(n = nrow(df), columns = cols, levels = levs)
}

anova_table <- function(a) {
  a <- as.data.frame(a)
  lapply(setNames(rownames(a), rownames(a)), function(term) list(
    SumSq  = unname(a[term, "Sum Sq"]),
    MeanSq = unname(a[term, "Mean Sq"]),
    NumDF  = unname(a[term, "NumDF"]),
    DenDF  = unname(a[term, "DenDF"]),
    F      = unname(a[term, "F value"]),
    p      = unname(a[term, "Pr(>F)"])
  ))
}

krmodcomp_out <- function(kr) {
  t <- kr$test
  list(
    Ftest = list(
      F         = unname(t["Ftest", "stat"]),
      ndf       = unname(t["Ftest", "ndf"]),
      ddf       = unname(t["Ftest", "ddf"]),
      F_scaling = unname(t["Ftest", "F.scaling"]),
      p         = unname(t["Ftest", "p.value"])
    ),
    FtestU = list(
      F   = unname(t["FtestU", "stat"]),
      ndf = unname(t["FtestU", "ndf"]),
      ddf = unname(t["FtestU", "ddf"]),
      p   = unname(t["FtestU", "p.value"])
    )
  )
}

mat_out <- function(m) {
  m <- as.matrix(m)
  list(rownames = rownames(m), colnames = colnames(m),
       values = unname(lapply(seq_len(nrow(m)), function(i) I(unname(m[i, ])))))
}

fit_summary <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  V <- as.matrix(vcov(m))
  list(
    REML = isREML(m),
    logLik = as.numeric(logLik(m)),
    REML_criterion = if (isREML(m)) unname(getME(m, "devcomp")$cmp["REML"]) else NA,
    singular = isSingular(m),
    fixef = as.list(fixef(m)),
    se = as.list(setNames(sqrt(diag(V)), names(fixef(m)))),
    vcov = mat_out(V),
    vcov_KR_adjusted = mat_out(pbkrtest::vcovAdj(m)),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2,
                   vcov = vc$vcov, sdcor = vc$sdcor),
    sigma2 = sigma(m)^2,
    theta = as.list(getME(m, "theta")),
    contrasts = "contr.treatment"
  )
}

out <- list(versions = versions(), generated = format(Sys.time(), tz = "UTC", usetz = TRUE))

## ---------------------------------------------------------------- irrigation
rda <- file.path(script_dir, "irrigation_faraway_1.0.9.rda")
if (requireNamespace("faraway", quietly = TRUE)) {
  data(irrigation, package = "faraway")
  irr_source <- sprintf("faraway package %s", packageVersion("faraway"))
} else {
  e <- new.env()
  load(rda, envir = e)
  irrigation <- e$irrigation
  irr_source <- paste("faraway 1.0.9 source, data/irrigation.rda",
                      "(github cran/faraway @ 5c64099c3de32aedb00c27c9686ab6fda84805cf)")
}
irrigation <- as.data.frame(irrigation)

m_irr  <- lmerTest::lmer(yield ~ irrigation * variety + (1 | field), data = irrigation, REML = TRUE)
m_irr0 <- lmerTest::lmer(yield ~ irrigation + variety + (1 | field), data = irrigation, REML = TRUE)

out$irrigation <- list(
  source = irr_source,
  data = data_columns(irrigation),
  formula = "yield ~ irrigation * variety + (1 | field)",
  formula_small = "yield ~ irrigation + variety + (1 | field)",
  fit = fit_summary(m_irr),
  anova_KR_typeIII = anova_table(anova(m_irr, ddf = "Kenward-Roger", type = "III")),
  anova_Satterthwaite_typeIII = anova_table(anova(m_irr, ddf = "Satterthwaite", type = "III")),
  KRmodcomp_interaction = krmodcomp_out(KRmodcomp(m_irr, m_irr0))
)

## ---------------------------------------------------------------- beets
data(beets, package = "pbkrtest")
beets <- as.data.frame(beets)
# README example fits with REML = FALSE (for the PB/LR comparisons);
# KRmodcomp refits with REML internally.  Both are recorded.
sug_ml   <- lme4::lmer(sugpct ~ block + sow + harvest + (1 | block:harvest), data = beets, REML = FALSE)
sug_ml_h <- update(sug_ml, . ~ . - harvest)
sug      <- lmerTest::lmer(sugpct ~ block + sow + harvest + (1 | block:harvest), data = beets, REML = TRUE)
sug_h    <- lmerTest::lmer(sugpct ~ block + sow + (1 | block:harvest), data = beets, REML = TRUE)

out$beets <- list(
  source = sprintf("pbkrtest %s, data(beets)", packageVersion("pbkrtest")),
  data = data_columns(beets[, c("harvest", "block", "sow", "yield", "sugpct")]),
  formula = "sugpct ~ block + sow + harvest + (1 | block:harvest)",
  formula_small = "sugpct ~ block + sow + (1 | block:harvest)",
  fit = fit_summary(sug),
  KRmodcomp_harvest = krmodcomp_out(KRmodcomp(sug_ml, sug_ml_h)),
  KRmodcomp_harvest_REMLfits = krmodcomp_out(KRmodcomp(sug, sug_h)),
  anova_KR_typeIII = anova_table(anova(sug, ddf = "Kenward-Roger", type = "III")),
  anova_Satterthwaite_typeIII = anova_table(anova(sug, ddf = "Satterthwaite", type = "III"))
)

## ---------------------------------------------------------------- Machines
data(Machines, package = "nlme")
mach <- as.data.frame(Machines)
attributes(mach)[c("formula", "labels", "inner", "units", "FUN", "order.groups")] <- NULL
# Worker is an ordered factor in nlme; it is only a grouping factor here.
mach$Worker <- factor(as.character(mach$Worker), levels = levels(Machines$Worker), ordered = FALSE)
mach$Machine <- factor(as.character(mach$Machine), levels = levels(Machines$Machine))
m_mach  <- lmerTest::lmer(score ~ Machine + (0 + Machine | Worker), data = mach, REML = TRUE)
m_mach0 <- lmerTest::lmer(score ~ 1 + (0 + Machine | Worker), data = mach, REML = TRUE)

out$Machines <- list(
  source = sprintf("nlme %s, data(Machines)", packageVersion("nlme")),
  data = data_columns(mach[, c("Worker", "Machine", "score")]),
  formula = "score ~ Machine + (0 + Machine | Worker)",
  fit = fit_summary(m_mach),
  anova_KR_typeIII = anova_table(anova(m_mach, ddf = "Kenward-Roger", type = "III")),
  anova_Satterthwaite_typeIII = anova_table(anova(m_mach, ddf = "Satterthwaite", type = "III")),
  KRmodcomp_Machine = krmodcomp_out(KRmodcomp(m_mach, m_mach0)),
  optimizer_messages = m_mach@optinfo$conv$lme4$messages
)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"),
           out_file)
cat("wrote", out_file, "\n")

## ---------------------------------------------------------------- console summary
show <- function(lbl, x) { cat("\n==", lbl, "\n"); print(x) }
show("irrigation KR", anova(m_irr, ddf = "Kenward-Roger"))
show("irrigation Satterthwaite", anova(m_irr, ddf = "Satterthwaite"))
show("irrigation KRmodcomp", KRmodcomp(m_irr, m_irr0))
show("beets KRmodcomp (README, ML fits)", KRmodcomp(sug_ml, sug_ml_h))
show("beets KR anova", anova(sug, ddf = "Kenward-Roger"))
show("Machines KR", anova(m_mach, ddf = "Kenward-Roger"))
show("Machines Satterthwaite", anova(m_mach, ddf = "Satterthwaite"))
show("Machines VarCorr", VarCorr(m_mach))
show("Machines fixef/SE", cbind(est = fixef(m_mach), se = sqrt(diag(as.matrix(vcov(m_mach))))))
