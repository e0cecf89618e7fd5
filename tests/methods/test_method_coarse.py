"""catsplit.methods.coarse: the baseline whose sub rows are copies of the coarse row, so the subs tie."""

import numpy as np
import pytest
import torch

import catsplit
from catsplit import Head

COARSE = "Pushing something"


def _bits(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def test_flat_rows_are_coarse_plus_something(encoder, head_and_subs):
    head, subs = head_and_subs
    c = head.row(COARSE)
    b_c = head.bias[head.labels.index(COARSE)]
    new = catsplit.split(head, encoder, COARSE, subs, method="coarse")
    for s in subs:
        assert torch.equal(new.row(s), c)
    assert torch.equal(new.bias[-len(subs):], b_c.repeat(len(subs)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_every_sub_row_is_a_bit_copy_of_the_coarse_row(head_and_subs, encoder, mode, dtype):
    head, subs = head_and_subs
    head = Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels)
    new = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode=mode)
    assert encoder.calls == 0  # no text is embedded
    assert all(_bits(new.row(s)) == _bits(head.row(COARSE)) for s in subs)
    assert "details" not in new.history[-1] and new.history[-1]["method"] == "coarse"  # nothing to report


def test_the_subs_tie_and_the_first_one_wins(head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, None, COARSE, subs, method="coarse")  # no encoder needed
    x = np.random.default_rng(0).standard_normal((200, head.dim)).astype(np.float32)
    before, after = head.predict(x), new.predict(x)
    assert (before == COARSE).any()
    assert list(after[before == COARSE]) == [subs[0]] * int((before == COARSE).sum())
    assert (after[before != COARSE] == before[before != COARSE]).all()
