"""Head files written from fixed inputs by every edit path, for the byte-identity test.

`tests/data/make_golden_hashes.py` records the sha256 of each file (it was first run on the commit
before the package was reorganised); `test_golden_files.py` writes them again and compares. Only
public API is used, so the same code runs on any layout.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import torch

import catsplit
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"
METHODS = ("coarse", "text", "retrieval", "alignment")
MODES = ("flat", "hierarchical")
DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": "bfloat16"}


def _head(dtype: str) -> tuple[catsplit.Head, list[str]]:
    head, subs, _, _ = compositional_head(dim=24, seed=3)
    if dtype == "bfloat16":
        head = catsplit.Head(weight=torch.as_tensor(np.asarray(head.weight)).to(torch.bfloat16),
                             bias=torch.as_tensor(np.asarray(head.bias)).to(torch.bfloat16), labels=list(head.labels))
    elif dtype != "float32":
        head = catsplit.Head(weight=np.asarray(head.weight).astype(DTYPES[dtype]),
                             bias=np.asarray(head.bias).astype(DTYPES[dtype]), labels=list(head.labels))
    return head, subs[:3]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def golden_hashes() -> dict[str, str]:
    """name -> sha256 of the head file that edit path writes."""
    out: dict[str, str] = {}
    enc = HashEncoder(dim=16)
    config = catsplit.SplitConfig(max_steps=60)  # alignment: a short, deterministic run
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def save(name: str, head: catsplit.Head) -> None:
            path = folder / f"{name}.safetensors"
            head.save(path)
            out[name] = _sha(path)

        rng = np.random.default_rng(7)
        for dtype in DTYPES:
            head, subs = _head(dtype)
            save(f"base-{dtype}", head)
            for method in METHODS:
                for mode in MODES:
                    name = f"split-{method}-{mode}-{dtype}"
                    edited = catsplit.split(head, enc, COARSE, subs, method=method, mode=mode, seed=1, config=config)
                    save(name, edited)
                    save(f"unsplit-{method}-{mode}-{dtype}", catsplit.unsplit(edited, COARSE))
            for mode in MODES:
                edited = catsplit.split(head, enc, COARSE, subs, method="retrieval", mode=mode, gate=0.5)
                save(f"split-retrieval-gate-{mode}-{dtype}", edited)
                x = rng.standard_normal((40, head.dim)).astype(np.float32)
                labels = [subs[i % len(subs)] for i in range(30)] + [edited.labels[i] for i in range(10)]
                tuned = catsplit.finetune(edited, x, labels, seed=2, config=catsplit.FinetuneConfig(max_steps=30))
                save(f"finetune-{mode}-{dtype}", tuned)
                other = catsplit.split(head, enc, COARSE, subs, method="alignment", mode=mode, seed=4, config=config)
                save(f"merge-{mode}-{dtype}", catsplit.merge([edited, other, tuned], logits=[0.0, 1.0, 0.5]))
            src = folder / f"base-{dtype}.safetensors"
            for method in ("retrieval", "alignment"):
                for mode in MODES:
                    dst = folder / f"split_file-{method}-{mode}-{dtype}.safetensors"
                    catsplit.split_file(src, dst, enc, COARSE, subs, method=method, mode=mode, seed=1, config=config)
                    out[dst.stem] = _sha(dst)
        # groups given by the user, the split class among the members (flat: recorded in groups_before)
        head, subs = _head("float32")
        members = [lab for lab in head.labels if lab.startswith("Pulling")]
        grouped = catsplit.Head(weight=head.weight, bias=head.bias, labels=list(head.labels),
                                groups={"Pulling something": members, "Moving": [COARSE, members[0]]})
        save("groups-base", grouped)
        for mode in MODES:
            edited = catsplit.split(grouped, enc, COARSE, subs, method="retrieval", mode=mode)
            save(f"groups-split-{mode}", edited)
            save(f"groups-unsplit-{mode}", catsplit.unsplit(edited, COARSE))
        # a text head (Text4Vis) split with its own templates
        th = catsplit.text_head([f"{v} something {m}" for v in ("Lifting", "Dropping") for m in ("up", "down")] + [COARSE],
                                enc)
        save("texthead", th)
        for mode in MODES:
            save(f"texthead-split-{mode}", catsplit.split(th, enc, COARSE, ["Pushing something left", "Pushing something right"],
                                                          method="text", mode=mode))
    return out
