"""float16 / bfloat16 heads: edited in float32, written back in their own dtype; no edit writes NaN or inf."""

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import compositional_head

COARSE = "Pushing something"
CODES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64"}


def _bits(t):
    return t.contiguous().view(torch.uint8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["coarse", "text", "retrieval", "alignment"])
def test_half_heads_are_edited_in_float32_and_kept_in_their_dtype(tmp_path, encoder, dtype, method):
    head32, subs, _, _ = compositional_head()
    half = Head(weight=head32.weight.to(dtype), bias=head32.bias.to(dtype), labels=head32.labels)
    # The same head with the same values in float32: the edit computed there, rounded once, is the half edit.
    up = Head(weight=half.weight.float(), bias=half.bias.float(), labels=half.labels)
    cfg = catsplit.SplitConfig(max_steps=30)
    new = catsplit.split(half, encoder, COARSE, subs, method=method, config=cfg)
    ref = catsplit.split(up, encoder, COARSE, subs, method=method, config=cfg)
    assert new.dtype == dtype and new.bias.dtype == dtype
    k = len(subs)
    assert torch.equal(_bits(new.weight[-k:]), _bits(ref.weight[-k:].to(dtype)))
    r = half.labels.index(COARSE)
    assert torch.equal(_bits(new.weight[:-k]), _bits(torch.cat([half.weight[:r], half.weight[r + 1 :]])))
    path = tmp_path / "half.safetensors"
    new.save(path)
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert {header[n]["dtype"] for n in header if n != "__metadata__"} == {CODES[dtype]}
    assert load_head(path).equals(new)


def test_float16_rows_that_overflow_are_refused_naming_the_row(tmp_path, encoder):
    labels = ["Pushing something", "Pulling something left", "Pulling something right", "Lifting something"]
    w = torch.tensor([[60000.0, 0, 1], [60000.0, 1, 0], [-60000.0, 1, 1], [1, 2, 3]], dtype=torch.float16)
    head = Head(weight=w, labels=labels)
    subs = ["Pushing something left", "Pushing something right"]
    for mode in ("flat", "hierarchical"):
        # w_c + (w_left - mean) = 60000 + 60000: fine in float32, inf in float16
        with pytest.raises(CatsplitError) as err:
            catsplit.split(head, encoder, COARSE, subs, method="retrieval", mode=mode)
        msg = str(err.value)
        assert "float16" in msg and "NaN or inf in row(s) 0 ('Pushing something left')" in msg
    path = tmp_path / "h.safetensors"
    head.save(path)
    assert load_head(path).equals(head)  # nothing else was touched


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rows_that_overflow_float32_are_refused(encoder, dtype):
    big = 3.0e38
    labels = ["Pushing something", "Pulling something left", "Pulling something right"]
    w = torch.tensor([[big, 0.0], [big, 1.0], [-big, 1.0]]).to(dtype)
    head = Head(weight=w, labels=labels)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(CatsplitError, match=r"NaN or inf in row\(s\) 0 \('Pushing something left'\)"):
            catsplit.split(head, encoder, COARSE, ["Pushing something left", "Pushing something right"], method="retrieval")


def test_non_finite_text_embeddings_never_reach_the_head(head_and_subs):
    head, subs = head_and_subs

    def nan_encoder(texts):
        out = np.ones((len(texts), 8), np.float32)
        out[-1, 0] = np.nan
        return out

    with pytest.raises(CatsplitError, match="NaN or inf"):
        catsplit.split(head, nan_encoder, COARSE, subs, method="alignment")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_finite_check_in_every_dtype(dtype):
    finfo = torch.finfo(dtype)
    ok = torch.tensor([[finfo.max, -finfo.max, finfo.tiny, 0.0]], dtype=dtype)
    Head(weight=ok, labels=["a"])  # the largest finite values pass
    for bad in (float("inf"), float("-inf"), float("nan")):
        w = torch.zeros(5000, 300, dtype=dtype)  # several blocks of the check
        w[4321, 299] = bad
        with pytest.raises(CatsplitError, match=r"row\(s\) 4321 \('c4321'\)"):
            Head(weight=w, labels=[f"c{i}" for i in range(5000)])
