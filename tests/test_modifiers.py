"""catsplit.modifiers: modifier phrases rewritten before encoding ("from X to Y" -> "to the Y"), switched by
SplitConfig.normalise_modifiers, recorded in the edit."""

import warnings

import numpy as np
import pytest
import torch

import catsplit
from catsplit import AlignmentConfig, CatsplitError, RetrievalConfig, SplitConfig
from catsplit.modifiers import RULE, encoder_texts, normalise_modifier
from catsplit.text import NearDuplicateWarning

COARSE = "Pushing something"


@pytest.mark.parametrize("text, want", [
    ("from left to right", "to the right"),
    ("from right to left", "to the left"),
    ("From the top to the bottom of the box", "to the bottom of the box"),
    ("slowly from left to right, then back", "slowly to the right, then back"),
    ("from a box to a shelf", "from a box to a shelf"),  # not directions: kept
    ("from left to left", "from left to left"),  # nothing to drop
    ("up", "up"), ("away from the camera", "away from the camera"), ("towards the camera", "towards the camera"),
    ("fromleft to right", "fromleft to right"),  # whole words only
])
def test_from_x_to_y_becomes_to_the_y(text, want):
    assert normalise_modifier(text) == want


def test_encoder_texts_only_when_switched_on():
    texts = ["from left to right", "up"]
    assert encoder_texts(texts, False) == texts and encoder_texts(texts, True) == ["to the right", "up"]


class Spy:
    """The bag-of-words test encoder, remembering every text it was asked for."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def __call__(self, texts):
        self.seen += list(texts)
        return self.inner(texts)


@pytest.mark.parametrize("method", ["alignment", "retrieval"])
def test_normalised_modifiers_separate_opposite_directions(head_and_subs, encoder, method):
    """A bag-of-words encoder cannot tell "from left to right" from "from right to left" (same words): the
    alignment rows tie. Rewritten, they differ; labels and the record's modifiers stay as written."""
    head, subs = head_and_subs
    lr, rl = subs[0], subs[1]
    assert "from left to right" in lr and "from right to left" in rl
    off = SplitConfig(max_steps=50, normalise_modifiers=False)
    on = SplitConfig(max_steps=50, normalise_modifiers=True)
    spy = Spy(encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NearDuplicateWarning)
        before = catsplit.split(head, spy, COARSE, subs, method=method, config=off)
    assert "to the right" not in spy.seen
    spy.seen.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NearDuplicateWarning)  # no tie left to warn about
        after = catsplit.split(head, spy, COARSE, subs, method=method, config=on)
    assert "to the right" in spy.seen and "to the left" in spy.seen
    assert "from left to right" not in spy.seen  # neither the subs' nor the dictionary's modifiers, in their raw form
    if method == "alignment":
        assert torch.allclose(before.row(lr), before.row(rl))  # tied
        assert not torch.allclose(after.row(lr), after.row(rl), atol=1e-3)
    record = after.history[-1]
    assert record["modifiers"][lr] == "from left to right"  # as written
    assert record["details"]["modifier_text"] == {"rule": RULE, "encoded": {
        s: normalise_modifier(record["modifiers"][s]) for s in subs}}
    assert "modifier_text" not in before.history[-1].get("details", {})
    assert catsplit.unsplit(after, COARSE).equals(head)


def test_the_switch_is_checked_and_reaches_every_method_config():
    assert SplitConfig(normalise_modifiers=False).for_method("alignment").normalise_modifiers is False
    assert SplitConfig(normalise_modifiers=False).for_method("retrieval").normalise_modifiers is False
    for config in (SplitConfig, AlignmentConfig, RetrievalConfig):
        with pytest.raises(CatsplitError, match=rf"{config.__name__}.normalise_modifiers must be True or False, got 1"):
            config(normalise_modifiers=1)
    assert AlignmentConfig(normalise_modifiers=np.bool_(True)).normalise_modifiers


def test_the_gate_compares_normalised_texts(head_and_subs, encoder):
    head, subs = head_and_subs
    spy = Spy(encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NearDuplicateWarning)
        catsplit.split(head, spy, COARSE, subs, method="retrieval", gate=0.3, config=SplitConfig(normalise_modifiers=True))
    assert "from right to left" not in spy.seen


def test_normalisation_is_on_by_default(head_and_subs, encoder):
    """Chosen on the benchmark's val clips (docs/benchmark.md section 8)."""
    assert SplitConfig().normalise_modifiers and AlignmentConfig().normalise_modifiers and RetrievalConfig().normalise_modifiers
    head, subs = head_and_subs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NearDuplicateWarning)
        record = catsplit.split(head, encoder, COARSE, subs, method="retrieval").history[-1]
    assert record["details"]["modifier_text"]["encoded"][subs[0]] == "to the right"
