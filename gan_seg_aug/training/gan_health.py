"""Is a WGAN-GP run healthy?  A rule on the logged Wasserstein estimate and gradient penalty.

WGAN-GP's critic is kept (softly) 1-Lipschitz by the penalty, so its Wasserstein estimate
E[D(real)] − E[D(fake)] should settle once the generator learns; the thesis' Figs. 5.1 / 5.7 show it
falling and flattening.  Two failures are seen in practice (docs/decisions.md §3): the estimate
growing without bound (the BN critic with separate batch statistics reached ~4,000 on real JSRT) and
the penalty no longer holding the gradient norm near 1.  The rule, applied to what has been logged:

* ``diverging``: past half of the planned iterations, the median estimate over the last 20 % of
  the logged points exceeds ``GROWTH`` times the median over the 40-60 % window of the run so far,
  plus ``SLACK`` (so an estimate settling near 0 is not flagged for noise);
* ``penalty_not_holding``: the median penalty over the last 20 % of the logged points exceeds
  ``GP_LIMIT`` -- a mean (‖∇D‖ − 1)² above 1 means gradient norms typically 2 or more, not 1.
"""
from __future__ import annotations

import numpy as np

GROWTH, SLACK, GP_LIMIT = 1.5, 5.0, 1.0
MIN_POINTS = 10


def assess(iterations, wasserstein, gp, planned: int) -> dict:
    """``{"status": "ok" | "diverging" | "penalty_not_holding" | "diverging+penalty_not_holding" |
    "too_early", ...the numbers behind it}``.

    >>> its = np.arange(1, 101) * 20
    >>> assess(its, 50 + 0 * its, 0.1 + 0 * its, planned=2000)["status"]
    'ok'
    >>> assess(its, 2.0 * its, 0.1 + 0 * its, planned=2000)["status"]      # grows the whole run
    'diverging'
    >>> assess(its, 50 + 0 * its, 3.0 + 0 * its, planned=2000)["status"]
    'penalty_not_holding'
    >>> assess(its[:20], 2.0 * its[:20], 0.1 + 0 * its[:20], planned=2000)["status"]   # not yet half-way
    'too_early'
    """
    its, w, g = (np.asarray(a, float) for a in (iterations, wasserstein, gp))
    if not (len(its) == len(w) == len(g)):
        raise ValueError(f"iterations, wasserstein and gp must have one value each per logged point "
                         f"(got {len(its)}, {len(w)}, {len(g)})")
    if len(its) < MIN_POINTS or its[-1] < planned / 2:
        return {"status": "too_early", "rule": RULE}
    last = its >= its[0] + 0.8 * (its[-1] - its[0])
    mid = (its >= 0.4 * its[-1]) & (its <= 0.6 * its[-1])
    w_late, g_late = float(np.median(w[last])), float(np.median(g[last]))
    w_mid = float(np.median(w[mid])) if mid.any() else float(np.median(w))
    flags = []
    if w_late > GROWTH * abs(w_mid) + SLACK:
        flags.append("diverging")
    if g_late > GP_LIMIT:
        flags.append("penalty_not_holding")
    return {"status": "+".join(flags) or "ok", "wasserstein_late_median": w_late, "wasserstein_mid_median": w_mid,
            "gp_late_median": g_late, "rule": RULE}


RULE = (f"diverging: median W over the last 20% of logged points > {GROWTH} x |median W over 40-60% of the run| + "
        f"{SLACK}; penalty_not_holding: median gp over the last 20% > {GP_LIMIT}; judged past half the iterations")
