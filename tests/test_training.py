"""catsplit.training: the step budget and the early stopping (EMA of a per-step metric) of the small training loops."""

import math

from catsplit.training import EmaEarlyStop, step_budget


def test_step_budget_counts_steps_per_epoch_and_caps_the_total():
    assert step_budget(100, 10, 5, 1000) == (10, 50, 5)  # (steps per epoch, total steps, epochs)
    assert step_budget(101, 10, 5, 1000) == (11, 55, 5)  # a last, short batch is a step too
    assert step_budget(100, 10, 5, 23) == (10, 23, 3)  # max_steps cuts the third epoch short
    assert step_budget(5, 10, 3, 1000) == (1, 3, 3)  # fewer examples than a batch: one step an epoch
    assert step_budget(100, 10, 0, 1000) == (10, 1, 1)  # never fewer than one step


def _run(stopper, values_per_epoch):
    """Feed one value per step; -> [(epoch, was it the best so far, stop)] until stop is set."""
    out = []
    for epoch, values in enumerate(values_per_epoch, start=1):
        for v in values:
            stopper.update(v)
        out.append((epoch, stopper.end_epoch(epoch), stopper.stop))
        if stopper.stop:
            break
    return out


def test_it_stops_after_patience_epochs_without_a_gain_of_min_delta():
    stop = EmaEarlyStop(0.0, 2, 0.1, maximize=True)  # beta 0: the EMA is the last value
    trace = _run(stop, [[1.0], [1.05], [1.09], [5.0]])  # +0.05 and +0.09 are no gain of 0.1
    assert trace == [(1, True, False), (2, False, False), (3, False, True)]
    assert (stop.best, stop.best_epoch) == (1.0, 1)


def test_a_gain_resets_the_patience_and_the_best_epoch_is_remembered():
    stop = EmaEarlyStop(0.0, 2, 0.1, maximize=True)
    trace = _run(stop, [[1.0], [1.05], [1.2], [1.25], [1.29], [9.0]])
    assert trace == [(1, True, False), (2, False, False), (3, True, False), (4, False, False), (5, False, True)]
    assert (stop.best, stop.best_epoch) == (1.2, 3)


def test_minimising_a_loss():
    stop = EmaEarlyStop(0.0, 2, 0.1, maximize=False)
    trace = _run(stop, [[1.0], [0.5], [0.45], [0.41]])  # 0.45 and 0.41 are not 0.1 below 0.5
    assert trace == [(1, True, False), (2, True, False), (3, False, False), (4, False, True)]
    assert (stop.best, stop.best_epoch) == (0.5, 2)


def test_the_ema_is_bias_corrected():
    stop = EmaEarlyStop(0.9, 5, 0.0, maximize=True)
    assert stop.best == -math.inf and stop.best_epoch == 0 and not stop.stop
    for _ in range(3):
        stop.update(2.0)
    stop.end_epoch(1)
    assert math.isclose(stop.smoothed, 2.0)  # a constant metric reads as itself from the first steps
    stop.update(0.0)
    stop.end_epoch(2)
    assert math.isclose(stop.smoothed, 2.0 * (1 - 0.9**3) * 0.9 / (1 - 0.9**4))


def test_the_training_loops_run_on_one_thread_and_restore_the_callers_setting(monkeypatch):
    """Alignment's MLP and finetune train tiny matrices: on a loaded 2-core machine torch's second thread only
    spin-waited (140 s against 8.7 s for one split). Every training step runs on one thread, and the caller's
    setting is given back."""
    import numpy as np
    import torch

    import catsplit
    from conftest import COARSE, HashEncoder, compositional_head

    steps = []  # the thread count at each backward pass: one per training step
    real_backward = torch.Tensor.backward
    monkeypatch.setattr(torch.Tensor, "backward", lambda t, *a, **k: steps.append(torch.get_num_threads()) or real_backward(t, *a, **k))
    head, subs, _, _ = compositional_head()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        edited = catsplit.split(head, HashEncoder(), COARSE, subs, method="alignment")
        assert len(steps) == edited.latest_record()["details"]["training"]["steps"] and set(steps) == {1}
        assert torch.get_num_threads() == 2
        steps.clear()
        x = np.random.default_rng(0).standard_normal((24, head.dim)).astype(np.float32)
        tuned = catsplit.finetune(edited, x, [subs[i % len(subs)] for i in range(24)], seed=0, progress=False)
        assert len(steps) == tuned.latest_record()["finetune"]["steps"] and set(steps) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
