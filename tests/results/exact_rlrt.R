## Reference for lmm.exact_rlrt / lmm.exact_lrt: RLRsim's exactRLRT and exactLRT
## (Crainiceanu and Ruppert 2004 null distributions, simulated by RLRsim's C++ code).
##
## Run from this directory:
##     cd tests/results && Rscript exact_rlrt.R
## Writes exact_rlrt.json next to this script (R, RLRsim, lme4 and nlme versions inside).
##
## Data:
##   pulp: faraway's pulp (faraway 1.0.9; faraway is not packaged for this Debian, so the
##         script reads pulp_faraway_1.0.9.rda, the data/pulp.rda of the faraway 1.0.9 sources
##         at github cran/faraway commit 5c64099c, kept next to it); stored in the JSON.
##   orthodont: statsmodels_lmm_ext/datasets/orthodont.csv (nlme's Orthodont); the
##         "unbalanced" cases drop rows 1, 8, 15, ... (every 7th row, 1-based).
##   sleepstudy: statsmodels_lmm_ext/datasets/sleepstudy.csv (lme4's sleepstudy).
## For each case: the observed statistic (RLRsim), the p-value from nsim = 1e6 simulated
## values (seed 1), the mean / median / 0.9 quantile / mass at 0 of the simulated null sample
## and its tail probabilities P(sample > c) at c = 0.1, 1, 2.71, 5.
## Timing: RLRsim's seconds for 1,000 simulated values on pulp (median of 20 runs).

suppressPackageStartupMessages({
  library(RLRsim)
  library(lme4)
  library(nlme)
  library(jsonlite)
})
load("pulp_faraway_1.0.9.rda")
as_fac <- function(x) {
  x <- as.character(x)
  factor(x, levels = sort(unique(x), method = "radix"))
}
ddir <- file.path("..", "..", "statsmodels_lmm_ext", "datasets")
ortho <- read.csv(file.path(ddir, "orthodont.csv"), stringsAsFactors = FALSE)
ortho$Subject <- as_fac(ortho$Subject)
ortho$Sex <- as_fac(ortho$Sex)
ortho_u <- ortho[-seq(1, nrow(ortho), by = 7), ]
sleep <- read.csv(file.path(ddir, "sleepstudy.csv"), stringsAsFactors = FALSE)
sleep$Subject <- as_fac(sleep$Subject)

NSIM <- 1e6
TAIL_AT <- c(0.1, 1, 2.71, 5)
summ <- function(t) {
  s <- t$sample
  list(statistic = unname(t$statistic), pvalue = t$p.value, nsim = NSIM,
       sample_mean = mean(s), sample_median = median(s),
       sample_q90 = unname(quantile(s, 0.9)), sample_p0 = mean(s == 0),
       tail_at = TAIL_AT, tail_p = vapply(TAIL_AT, function(c) mean(s > c), 1))
}
cases <- list()
## exactRLRT: REML fits with one variance component
rl <- function(name, m, note) {
  t <- exactRLRT(m, nsim = NSIM, seed = 1)
  cases[[name]] <<- c(list(test = "exactRLRT", call = note,
                           loglik_reml = as.numeric(logLik(m))), summ(t))
}
rl("pulp_rlrt", lmer(bright ~ 1 + (1 | operator), pulp, REML = TRUE),
   "exactRLRT(lmer(bright ~ 1 + (1 | operator), pulp))")
rl("ortho_rlrt", lmer(distance ~ age * Sex + (1 | Subject), ortho, REML = TRUE),
   "exactRLRT(lmer(distance ~ age * Sex + (1 | Subject), orthodont))")
rl("ortho_u_rlrt", lmer(distance ~ age + Sex + (1 | Subject), ortho_u, REML = TRUE),
   "exactRLRT(lmer(distance ~ age + Sex + (1 | Subject), orthodont[-every 7th row]))")
rl("sleep_slope_rlrt", lmer(Reaction ~ Days + (0 + Days | Subject), sleep, REML = TRUE),
   "exactRLRT(lmer(Reaction ~ Days + (0 + Days | Subject), sleepstudy))")
## the same pulp statistic from nlme (RLRsim accepts lme fits too)
lme_pulp <- exactRLRT(lme(bright ~ 1, pulp, random = ~ 1 | operator, method = "REML"),
                      nsim = 1e4, seed = 1)
cases$pulp_rlrt$statistic_from_lme <- unname(lme_pulp$statistic)
## exactLRT: ML fit with one variance component against an lm
lr <- function(name, m, m0, note) {
  t <- exactLRT(m, m0, nsim = NSIM, seed = 1)
  cases[[name]] <<- c(list(test = "exactLRT", call = note, q = length(fixef(m)) - length(coef(m0)),
                           loglik_ml = as.numeric(logLik(m)),
                           loglik_ml_small = as.numeric(logLik(m0))), summ(t))
}
lr("pulp_lrt", lmer(bright ~ 1 + (1 | operator), pulp, REML = FALSE), lm(bright ~ 1, pulp),
   "exactLRT(lmer(bright ~ 1 + (1 | operator), pulp, REML = FALSE), lm(bright ~ 1, pulp))")
lr("ortho_u_lrt_q1", lmer(distance ~ age + Sex + (1 | Subject), ortho_u, REML = FALSE),
   lm(distance ~ age, ortho_u),
   "exactLRT(lmer(distance ~ age + Sex + (1 | Subject), ortho_u, REML = FALSE), lm(distance ~ age, ortho_u))")
## timing: 1,000 simulated values on pulp
m_pulp <- lmer(bright ~ 1 + (1 | operator), pulp, REML = TRUE)
times <- replicate(20, system.time(exactRLRT(m_pulp, nsim = 1000))[["elapsed"]])
out <- list(
  versions = list(R = R.version.string, RLRsim = as.character(packageVersion("RLRsim")),
                  lme4 = as.character(packageVersion("lme4")),
                  nlme = as.character(packageVersion("nlme"))),
  grid = list(log_grid_lo = -10, log_grid_hi = 8, gridlength = 200),
  data = list(pulp = list(bright = pulp$bright, operator = as.character(pulp$operator))),
  cases = cases,
  timing = list(rlrsim_exactRLRT_pulp_1000_seconds_median = median(times),
                load_average = as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1]))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "exact_rlrt.json")
