"""Shared fixtures: a deterministic bag-of-words text encoder, compositional heads, and a benchmark layout on disk.

Test files import the helpers with `from conftest import ...` (pytest puts tests/ on sys.path for this file);
the folders below tests/ have no conftest.py of their own, since two would clash as one module "conftest".
"""

from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pytest

import catsplit

VERBS = ["Pushing", "Pulling", "Lifting", "Dropping", "Sliding"]
COARSE = "Pushing something"  # the class the shared heads collapse
MODIFIERS = ["from left to right", "from right to left", "up", "onto something", "next to something"]


def word_vector(word: str, dim: int) -> np.ndarray:
    seed = int(hashlib.sha256(word.casefold().encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(dim)


class HashEncoder:
    """Texts -> sum of per-word random vectors: offline, instant, and compositional like a real encoder."""

    def __init__(self, dim: int = 48):
        self.dim = dim
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([sum(word_vector(w, self.dim) for w in t.split()) for t in texts]).astype(np.float32)


def compositional_head(dim: int = 32, seed: int = 0, dtype=np.float32, bias: bool = True, coarse_verb: str = "Pushing"):
    """A head whose rows are verb + modifier vectors; `coarse_verb` is one collapsed coarse row.

    Returns (head, subs of the coarse class, verb vectors, modifier vectors).
    """
    rng = np.random.default_rng(seed)
    v = {x: rng.standard_normal(dim) for x in VERBS}
    m = {x: 0.7 * rng.standard_normal(dim) for x in MODIFIERS}
    labels, rows = [], []
    for verb in VERBS:
        if verb == coarse_verb:
            labels.append(f"{verb} something")
            rows.append(v[verb] + np.mean([m[x] for x in MODIFIERS], axis=0))  # a collapsed class sits at its subs' mean
        else:
            for mod in MODIFIERS:
                labels.append(f"{verb} something {mod}")
                rows.append(v[verb] + m[mod])
    w = np.asarray(rows).astype(dtype)
    b = (0.1 * rng.standard_normal(len(rows))).astype(dtype) if bias else None
    head = catsplit.Head(weight=w, bias=b, labels=labels)
    subs = [f"{coarse_verb} something {mod}" for mod in MODIFIERS]
    return head, subs, v, m


@pytest.fixture
def encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture
def head_and_subs():
    head, subs, _, _ = compositional_head()
    return head, subs


@pytest.fixture
def head16_and_subs():
    """The compositional head at dim 16 and the subs of its coarse class."""
    head, subs, _, _ = compositional_head(dim=16)
    return head, subs


@pytest.fixture(scope="module")
def retrieval_edits():
    """A dim-32 compositional head and its retrieval split of "Pushing something": (head, flat, hierarchical, subs)."""
    head, subs, _, _ = compositional_head(dim=32)
    enc = HashEncoder()
    flat = catsplit.split(head, enc, "Pushing something", subs, method="retrieval")
    hier = catsplit.split(head, enc, "Pushing something", subs, method="retrieval", mode="hierarchical")
    return head, flat, hier, subs


def class_clips(v, m, label, n, rng, dim):
    """`n` features of `label` for a compositional head's verb and modifier vectors: class centre + noise."""
    verb = label.split()[0]
    mod = label[len(verb) + len(" something "):]
    centre = v[verb] + (m[mod] if mod else np.mean(list(m.values()), axis=0))
    return (centre + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture
def layout(tmp_path):
    """A benchmark layout of the paper's form (catsplit.bench.layout) for a dim-32 compositional head, on disk.

    Partition A collapses 'Pushing something'; features: class centre + noise. Returns (folder, head, subs).
    """
    from catsplit.bench.layout import write_layout

    coarse = "Pushing something"
    dim = 32
    head, subs, v, m = compositional_head(dim=dim, seed=5)
    rng = np.random.default_rng(0)
    fine = {f"{verb} something": [f"{verb} something {mod}" for mod in MODIFIERS] for verb in VERBS}
    base = head.labels
    feats, sets = {}, {}
    n_base = len(base)
    for kind, n in (("ft_set", 6), ("equivalent_set", 8)):
        rows = []
        for j, s in enumerate(subs):
            for i in range(n):
                path = f"videos/{kind}/{j}_{i}.mp4"
                feats[path] = class_clips(v, m, s, 1, rng, dim)[0]
                rows.append((path, n_base + j))
        sets[("A", coarse, kind)] = rows
    rows = []
    for li, lab in enumerate(base):
        if lab == coarse:
            continue
        for i in range(4):
            path = f"videos/other/{li}_{i}.mp4"
            feats[path] = class_clips(v, m, lab, 1, rng, dim)[0]
            rows.append((path, li))
    sets[("A", coarse, "unrelated_set")] = rows
    write_layout(tmp_path / "ann", fine, {"A": [coarse], "B": []}, {"A": base}, sets)
    np.savez(tmp_path / "feats.npz", paths=np.array(list(feats)), features=np.stack(list(feats.values())))
    head.save(tmp_path / "head.safetensors")
    return tmp_path, head, subs


@pytest.fixture
def head_file(tmp_path, monkeypatch):
    """A compositional head saved to a file, with the CLI's encoder replaced by the hash encoder: (path, head, subs)."""
    # The CLI loads its encoder by name; point the default at the offline hash encoder.
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: HashEncoder())
    head, subs, _, _ = compositional_head()
    path = tmp_path / "head.safetensors"
    head.save(path)
    return path, head, subs



@pytest.fixture
def tuning_setup(tmp_path):
    """An edited head on disk and 6 labelled clips per sub (class centre + noise)."""
    head, subs, v, m = compositional_head(dim=16, seed=2)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    path = tmp_path / "edited.safetensors"
    edited.save(path)
    rng = np.random.default_rng(0)
    x = np.concatenate([v["Pushing"] + m[mod] + 0.3 * rng.standard_normal((6, 16)) for mod in MODIFIERS]).astype(np.float32)
    y = [s for s in subs for _ in range(6)]
    return tmp_path, path, edited, x, y



# A backbone module written to a file, for `--backbone file.py:Backbone` and load_backbone (uint8 clips -> 32 features)
BACKBONE = textwrap.dedent(
    """
    import torch

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(3, 32, 3, stride=2, padding=1)

        def forward(self, clips):
            x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
            return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
    """
)

