"""The thesis §4.2 early-stopping rule on scripted validation-loss sequences."""
import json
import math

import pytest

from gan_seg_aug.training.early_stopping import EarlyStopping


def simulate(loss_at, *, min_iterations, patience, val_every, limit=100_000):
    """Drive the rule the way train_unet does: validate when due, stop when the rule says so.

    Returns (stop_iteration, best_iteration, validated_iterations)."""
    es = EarlyStopping(min_iterations, patience)
    validated = []
    for it in range(1, limit + 1):
        if es.validation_due(it, val_every):
            es.update(it, loss_at(it))
            validated.append(it)
            if es.should_stop(it):
                return it, es.best_iteration, validated
    raise AssertionError("the rule never stopped")


def test_minimum_at_first_validation_stops_after_min_and_patience():
    # Paper numbers: the loss only rises after the first validation (iteration 100).
    stop, best, _ = simulate(lambda it: it, min_iterations=3000, patience=3000, val_every=100)
    assert best == 100
    assert stop == 3100  # 3000 iterations after the minimum (>= the 3000-iteration minimum)


def test_min_iterations_dominates_when_patience_is_short():
    stop, best, _ = simulate(lambda it: it, min_iterations=3000, patience=500, val_every=100)
    assert (best, stop) == (100, 3000)


def test_late_minimum_extends_training():
    # Decreasing until 5000, rising afterwards: stop 3000 iterations after 5000.
    stop, best, _ = simulate(lambda it: abs(it - 5000), min_iterations=3000, patience=3000, val_every=100)
    assert (best, stop) == (5000, 8000)


def test_ties_keep_the_earliest_minimum():
    # Flat after iteration 400: equal losses are not new minima, so patience counts from 400.
    stop, best, _ = simulate(lambda it: max(1000 - it, 600), min_iterations=0, patience=1000, val_every=100)
    assert (best, stop) == (400, 1400)


def test_stop_lands_exactly_on_last_minimum_plus_patience_even_off_the_validation_grid():
    # val_every does not divide patience: the rule still stops at 300 + 1000, validating there.
    stop, best, validated = simulate(lambda it: 1.0 if it == 300 else 2.0, min_iterations=0, patience=1000,
                                     val_every=300)
    assert (best, stop) == (300, 1300)
    assert validated == [300, 600, 900, 1200, 1300]


def test_minimum_found_at_the_forced_final_validation_extends_training():
    losses = {300: 1.0, 1300: 0.5}
    stop, best, _ = simulate(lambda it: losses.get(it, 2.0), min_iterations=0, patience=1000, val_every=300)
    assert (best, stop) == (1300, 2300)


def test_should_stop_respects_min_iterations_and_needs_a_minimum():
    es = EarlyStopping(min_iterations=3000, patience=3000)
    assert not es.should_stop(10_000)  # nothing measured yet: no parameters to restore
    es.update(100, 0.4)
    assert not es.should_stop(2999)
    assert not es.should_stop(3099)
    assert es.should_stop(3100)
    assert es.earliest_stop() == 3100


def test_nan_is_never_a_minimum():
    es = EarlyStopping(0, 10)
    assert not es.update(1, float("nan"))
    assert es.best_iteration == -1 and not es.should_stop(100)
    assert es.update(2, 3.0)
    assert not es.update(3, float("nan"))
    assert es.best_iteration == 2 and es.best_loss == 3.0


def test_state_round_trip_continues_the_same_decisions():
    losses = [0.9, 0.8, 0.85, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0, 1.1]
    whole = EarlyStopping(4, 4)
    decisions_whole = []
    for k, loss in enumerate(losses, start=1):
        decisions_whole.append((whole.update(2 * k, loss), whole.should_stop(2 * k)))

    first = EarlyStopping(4, 4)
    decisions = [(first.update(2 * k, loss), first.should_stop(2 * k)) for k, loss in enumerate(losses[:4], 1)]
    resumed = EarlyStopping.from_state(json.loads(json.dumps(first.state_dict())))
    decisions += [(resumed.update(2 * k, loss), resumed.should_stop(2 * k)) for k, loss in enumerate(losses, 1)
                  if k > 4]
    assert decisions == decisions_whole
    assert resumed.state_dict() == whole.state_dict()
    assert (resumed.best_iteration, resumed.best_loss) == (8, 0.7)


def test_fresh_state_serialises_without_infinity():
    state = EarlyStopping(5, 5).state_dict()
    assert state["best_loss"] is None
    assert math.isinf(EarlyStopping.from_state(state).best_loss)


@pytest.mark.parametrize("args", [(-1, 10), (10, 0), (1.5, 10)])
def test_bad_settings_are_rejected(args):
    with pytest.raises(ValueError, match="min_iterations|patience"):
        EarlyStopping(*args)


def test_iterations_must_not_go_backwards_and_bad_state_is_reported():
    es = EarlyStopping(0, 5)
    es.update(10, 1.0)
    with pytest.raises(ValueError, match="backwards"):
        es.update(5, 0.5)
    with pytest.raises(ValueError, match="malformed"):
        EarlyStopping.from_state({"min_iterations": 1})
