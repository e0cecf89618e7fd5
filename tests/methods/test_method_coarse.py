"""catsplit.methods.coarse: the baseline whose sub rows are copies of the coarse row, so the subs tie."""

import torch

import catsplit

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
