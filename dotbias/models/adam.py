"""fastai's Adam as `fit_one_cycle` uses it, defined once for every implementation of it
(`optimizers`, `whole_step`, `row_step`): beta1 (`mom`) starts at 0.95 and then follows the
one-cycle schedule, beta2 (`sqr_mom`) 0.99, eps 1e-5."""
from __future__ import annotations

BETAS, EPS = (0.95, 0.99), 1e-5
BETA2 = BETAS[1]
