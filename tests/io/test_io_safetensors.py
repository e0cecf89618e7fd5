"""catsplit.io.safetensors: the container, read and written by hand — the same bytes as the safetensors
library, and a CatsplitError naming the file for anything that is not a valid container."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import compositional_head


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_written_files_match_the_safetensors_library(tmp_path, encoder, dtype):
    """catsplit writes the container itself: same header (as JSON) and data as safetensors.torch.save_file."""
    from safetensors.torch import load_file

    from catsplit.io.headfile import head_tensors

    head, subs, _, _ = compositional_head()
    head = Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels, metadata={"origin": "ünï"})
    edited = catsplit.split(head, encoder, "Pushing something", subs[:2], method="coarse", mode="hierarchical")
    edited = catsplit.split(edited, encoder, "Lifting something up", ["Lifting something up a", "Lifting something up b"], method="coarse")
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    edited.save(ours)
    tensors, meta = head_tensors(edited)
    save_file(tensors, str(theirs), metadata=meta)

    def parts(p):
        blob = p.read_bytes()
        n = int.from_bytes(blob[:8], "little")
        return n, json.loads(blob[8 : 8 + n]), blob[8 + n :]

    assert parts(ours) == parts(theirs)
    again = load_file(str(ours))
    assert set(again) == set(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)
    edited.save(tmp_path / "twice.safetensors")
    assert (tmp_path / "twice.safetensors").read_bytes() == ours.read_bytes()  # deterministic


def test_corrupt_files_give_catsplit_errors(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    good = tmp_path / "good.safetensors"
    head.save(good)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) - 5],
        "empty": b"",
        "header": data[:10] + b"\xff" + data[11:],
        "huge length": (10**12).to_bytes(8, "little") + data[8:],
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(CatsplitError) as err:
            load_head(p)
        assert str(p) in str(err.value), name
    with pytest.raises(CatsplitError, match="no such file"):
        load_head(tmp_path / "missing.safetensors")
