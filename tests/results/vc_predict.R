# Predictions with nested variance components, for the conditional prediction of
# tests/test_conditional_predict_vc.py.  With independent residuals, the conditional mean of a
# row with a missing response given the subject's observed rows is the BLUP prediction
# x'beta + z'u of lme4 and nlme (random effects predicted from the rows used in the fit).
# Data: nlme's Oats (6 blocks x 3 varieties x 4 nitrogen levels), yield set missing in two
# single rows and in the four rows of one whole plot (block VI, variety Victory: a plot level
# the fit never sees, predicted with u = 0 for it).  Model: yield ~ nitro + (1 | Block/Variety),
# REML.  The data (with the missing values) are stored in the JSON.
# Rerun: Rscript tests/results/vc_predict.R  (writes vc_predict.json next to it)
suppressPackageStartupMessages({library(lme4); library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
d <- as.data.frame(nlme::Oats)
d$Block <- factor(as.character(d$Block), levels = c("I", "II", "III", "IV", "V", "VI"))
d$Variety <- factor(as.character(d$Variety))
d$y <- d$yield
miss <- c(5, 30, which(d$Block == "VI" & d$Variety == "Victory"))
d$y[miss] <- NA
fit <- lmer(y ~ nitro + (1 | Block/Variety), data = d, REML = TRUE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
new <- d[miss, ]
p_lme4 <- predict(fit, newdata = new, allow.new.levels = TRUE)
lfit <- lme(y ~ nitro, random = ~ 1 | Block/Variety, data = d, na.action = na.omit,
            control = lmeControl(tolerance = 1e-12, msTol = 1e-12, niterEM = 500))
# nlme gives NA at level 2 for the unseen plot: there its block-level prediction (u = 0 for it)
p2 <- as.numeric(predict(lfit, newdata = new, level = 2))
p_nlme <- ifelse(is.na(p2), as.numeric(predict(lfit, newdata = new, level = 1)), p2)
vc <- as.data.frame(VarCorr(fit))
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            nlme = as.character(packageVersion("nlme"))),
  data = list(Block = as.character(d$Block), Variety = as.character(d$Variety),
              nitro = d$nitro, y = d$y),
  missing_rows = miss - 1,  # 0-based
  loglik = as.numeric(logLik(fit)), coef = as.list(fixef(fit)),
  vcomp = setNames(as.list(vc$vcov), vc$grp),
  lme_loglik = as.numeric(logLik(lfit)),
  pred_lme4 = unname(p_lme4), pred_nlme = unname(p_nlme))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(here, "vc_predict.json"))
