"""catsplit.methods.alignment: the paper's modifier alignment — an MLP text -> weight space fitted on the
head's own pairs; deterministic for a seed; AlignmentConfig; what the record says about the training."""

import math

import numpy as np

from catsplit.modifiers import encoder_texts
import pytest
import torch

import catsplit
from catsplit import AlignmentConfig, CatsplitError, SplitConfig
from catsplit.methods.alignment import training_pairs
from catsplit.methods.context import SplitContext
from catsplit.structure import sub_modifiers

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


def test_the_training_pairs_are_read_off_the_head(head_and_subs):
    head, subs = head_and_subs
    ctx = SplitContext(head=head, encoder=None, coarse=COARSE, subs=subs, sub_modifiers=sub_modifiers(COARSE, subs),
                       groups=None, modifiers=None, config=AlignmentConfig(), seed=0)
    texts, targets = training_pairs(ctx)
    d = ctx.dictionary
    assert len(texts) == len(targets) == 20 + 20 + 4  # modifiers, fine labels, group texts (no single labels left)
    # the modifiers as the encoder gets them ("from left to right" -> "to the right", on by default); labels as written
    assert texts == encoder_texts(d.modifiers, True) + d.labels + d.group_names and targets.dtype == np.float32
    assert texts[:20] != d.modifiers and "to the right" in texts[:20]
    raw = SplitContext(head=head, encoder=None, coarse=COARSE, subs=subs, sub_modifiers=sub_modifiers(COARSE, subs),
                       groups=None, modifiers=None, config=AlignmentConfig(normalise_modifiers=False), seed=0)
    assert training_pairs(raw)[0] == d.modifiers + d.labels + d.group_names
    np.testing.assert_array_equal(targets[:20], d.vectors)
    np.testing.assert_array_equal(targets[20:40], ctx.rows_of(d.labels))
    np.testing.assert_array_equal(targets[40:], d.prototypes)


def test_the_record_says_how_the_training_went(head_and_subs, encoder):
    head, subs = head_and_subs
    info = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=AlignmentConfig(max_steps=40)
                          ).history[-1]["details"]["training"]
    assert set(info) == {"epochs", "steps", "best_epoch", "train_cos_ema", "pairs"}
    assert info["pairs"] == 44 and info["steps"] <= 40 and 1 <= info["best_epoch"] <= info["epochs"]
    assert info["steps"] <= info["epochs"] * math.ceil(44 / AlignmentConfig().batch_size)
    assert -1.0 <= info["train_cos_ema"] <= 1.0


def test_the_config_reaches_the_training(head_and_subs, encoder):
    head, subs = head_and_subs

    def training(**fields):
        return catsplit.split(head, encoder, COARSE, subs, method="alignment", config=AlignmentConfig(**fields)
                              ).history[-1]["details"]["training"]

    assert training(max_epochs=1)["epochs"] == 1
    assert training(max_steps=3)["steps"] == 3
    stopped = training(patience=1, min_delta=10.0)  # no epoch can gain 10 in cosine: stop after the second
    assert (stopped["epochs"], stopped["best_epoch"]) == (2, 1)
    a = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=AlignmentConfig(max_steps=9, hidden=16))
    b = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=SplitConfig(max_steps=9, hidden=16))
    assert a.equals(b)  # its own config, or a SplitConfig's fields: the same edit
    assert not torch.equal(a.weight, catsplit.split(head, encoder, COARSE, subs, method="alignment",
                                                    config=AlignmentConfig(max_steps=9, hidden=32)).weight)


@pytest.mark.parametrize("field, value", [
    ("hidden", 0), ("batch_size", 2.0), ("max_epochs", -1), ("max_steps", 0), ("patience", True), ("ema", 1.0),
    ("ema", -0.1), ("lr", 0), ("lr", math.inf), ("weight_decay", -1e-3), ("min_delta", math.nan),
])
def test_alignment_config_refuses_bad_values(field, value):
    with pytest.raises(CatsplitError, match=f"AlignmentConfig.{field}"):
        AlignmentConfig(**{field: value})
