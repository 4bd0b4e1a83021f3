# Conditional predictions of the missing FEV1 visits under an unstructured covariance (R mmrm).
suppressMessages({library(mmrm); library(jsonlite)})
d <- mmrm::fev_data
fit <- mmrm(FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID), data = d, reml = TRUE,
            control = mmrm_control(optimizer_control = list(rel.tol = 1e-15)))
miss <- d[is.na(d$FEV1), ][1:6, ]
p <- predict(fit, newdata = miss, se.fit = TRUE, interval = "confidence")
out <- list(mmrm = as.character(packageVersion("mmrm")), loglik = as.numeric(logLik(fit)),
            rows = list(USUBJID = as.character(miss$USUBJID), AVISIT = as.character(miss$AVISIT),
                        ARMCD = as.character(miss$ARMCD)),
            fit = unname(p[, "fit"]), se = unname(p[, "se"]))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/results/mmrm_un_predict.json")
