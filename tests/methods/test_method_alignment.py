"""catsplit.methods.alignment: the paper's modifier alignment — an MLP text -> weight space fitted on the
head's own pairs; deterministic for a seed; AlignmentConfig; what the record says about the training."""


import torch

import catsplit
from catsplit import SplitConfig

COARSE = "Pushing something"


def test_alignment_is_deterministic_per_seed(encoder, head_and_subs):
    head, subs = head_and_subs
    rng_state = torch.random.get_rng_state()
    a = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=7)
    b = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=7)
    c = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=8)
    assert a.equals(b)
    assert not torch.equal(a.weight, c.weight)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the global RNG is left alone
    info = a.history[-1]["details"]["training"]
    assert info["best_epoch"] <= info["epochs"] <= SplitConfig().max_epochs


def test_alignment_respects_max_steps(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=SplitConfig(max_steps=7))
    info = new.history[-1]["details"]["training"]
    assert info["steps"] == 7 or info["epochs"] * 5 <= 7  # stopped early or exactly at the cap
