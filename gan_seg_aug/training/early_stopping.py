"""The thesis' early-stopping rule for the segmentation networks, as a small pure object.

Thesis §4.2: "for all segmentation networks, early stopping is used.  For every segmentation
network, we train for at least 3000 iterations.  During training, we keep track of the minimal
loss and its iteration number, as well as the network parameters at the loss minimum, measured
for the internal validation set.  We only stop the training when 3000 iterations have passed
since the last validation loss minimum was found."  Paper §III says the same: "Every time a new
validation loss minimum is found, we train for at least 3000 more iterations."

So training stops at iteration ``max(min_iterations, best_iteration + patience)``, never earlier.
This object only decides; it holds no weights (the trainer keeps the parameters of the minimum).

Choices the thesis leaves open (docs/decisions.md §7, "Early stopping"):

* a *new* minimum needs a strictly lower loss: a tie keeps the earlier minimum, so a flat
  validation curve cannot extend training forever;
* a NaN validation loss never counts as a minimum;
* ``iteration`` counts completed parameter updates (the first validation after K updates is at
  iteration K).

>>> es = EarlyStopping(min_iterations=6, patience=4)
>>> [es.update(i, loss) for i, loss in [(2, 0.9), (4, 0.5), (6, 0.7)]]
[True, True, False]
>>> es.best_iteration, es.earliest_stop(), es.should_stop(6), es.should_stop(8)
(4, 8, False, True)
"""
from __future__ import annotations

import math


class EarlyStopping:
    """Thesis §4.2 rule: train >= ``min_iterations``; stop once ``patience`` iterations have passed
    since the last validation-loss minimum."""

    def __init__(self, min_iterations: int, patience: int):
        if int(min_iterations) != min_iterations or min_iterations < 0:
            raise ValueError(f"min_iterations must be a whole number >= 0, got {min_iterations!r}")
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a whole number >= 1, got {patience!r}")
        self.min_iterations = int(min_iterations)
        self.patience = int(patience)
        self.best_loss = math.inf
        self.best_iteration = -1  # -1: no validation loss seen yet
        self.last_iteration = -1  # the last iteration a validation loss was reported for

    def update(self, iteration: int, val_loss: float) -> bool:
        """Report the validation loss measured after ``iteration`` updates; True if it is a new minimum."""
        if iteration < self.last_iteration:
            raise ValueError(f"validation iterations must not go backwards: got {iteration} after "
                             f"{self.last_iteration}")
        self.last_iteration = int(iteration)
        val_loss = float(val_loss)
        # Strict '<': ties keep the earlier minimum; NaN compares False and is never a minimum.
        if val_loss < self.best_loss:
            self.best_loss = val_loss
            self.best_iteration = int(iteration)
            return True
        return False

    def earliest_stop(self) -> int:
        """The first iteration at which training may stop, given what has been seen so far."""
        if self.best_iteration < 0:
            # No finite minimum yet: the patience window cannot have started.
            return max(self.min_iterations, self.last_iteration + self.patience)
        return max(self.min_iterations, self.best_iteration + self.patience)

    def should_stop(self, iteration: int) -> bool:
        """True once ``iteration >= min_iterations`` and ``patience`` iterations have passed since the
        last minimum.  Never before a first finite validation loss (no parameters to restore)."""
        if self.best_iteration < 0:
            return False
        return iteration >= self.min_iterations and iteration - self.best_iteration >= self.patience

    def validation_due(self, iteration: int, val_every: int) -> bool:
        """Validate every ``val_every`` iterations, and also at the iteration the rule would stop at,
        so a minimum found exactly there still extends training and the stop lands exactly on
        ``max(min_iterations, best_iteration + patience)`` whatever ``val_every`` is."""
        return iteration % val_every == 0 or self.should_stop(iteration)

    def state_dict(self) -> dict:
        """JSON-ready state, saved in every checkpoint so a resumed run continues the same rule."""
        return {"min_iterations": self.min_iterations, "patience": self.patience,
                "best_loss": None if math.isinf(self.best_loss) else self.best_loss,
                "best_iteration": self.best_iteration, "last_iteration": self.last_iteration}

    @classmethod
    def from_state(cls, state: dict) -> "EarlyStopping":
        try:
            es = cls(state["min_iterations"], state["patience"])
            best = state["best_loss"]
            es.best_loss = math.inf if best is None else float(best)
            es.best_iteration = int(state["best_iteration"])
            es.last_iteration = int(state["last_iteration"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"early-stopping state is incomplete or malformed ({e!r}): {state!r}") from None
        return es

    def __repr__(self) -> str:
        return (f"EarlyStopping(min_iterations={self.min_iterations}, patience={self.patience}, "
                f"best_loss={self.best_loss:.6g}, best_iteration={self.best_iteration})")


def cap_leaves_run_unchanged(old_cap: int, new_cap: int, *, iterations: int, stopped_by: str | None = None) -> bool:
    """Would this run have trained exactly the same under the safety cap ``new_cap`` as under ``old_cap``?

    The cap acts only at the iteration it is reached, so a run that the thesis rule stopped, or one still
    under way, before both caps is the same run under either (0 = no cap).  A run the old cap ended is not:
    under a higher cap it would have trained on (docs/decisions.md, "The cpu profile's safety cap").
    ``stopped_by`` is the finished run's reason ("early_stopping" / "max_iterations"), None while it runs;
    ``iterations`` is where it ended or where its last checkpoint is.

    >>> cap_leaves_run_unchanged(8000, 30000, iterations=4350, stopped_by="early_stopping")
    True
    >>> cap_leaves_run_unchanged(8000, 30000, iterations=8000, stopped_by="max_iterations")
    False
    >>> cap_leaves_run_unchanged(8000, 30000, iterations=1250), cap_leaves_run_unchanged(8000, 1000, iterations=1250)
    (True, False)
    """
    if old_cap == new_cap:
        return True
    if stopped_by == "max_iterations":
        return False
    if stopped_by is None:  # still training: it continues under the new cap if that is still ahead
        return not new_cap or iterations < new_cap
    return not new_cap or iterations <= new_cap
