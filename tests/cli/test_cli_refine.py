"""catsplit.cli.refine: `catsplit refine` and `catsplit relabel` — the files they read, what they write, their errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import catsplit
from catsplit.cli import main
from conftest import COARSE, HashEncoder, class_clips, compositional_head


@pytest.fixture
def setup(tmp_path):
    head, subs, v, m = compositional_head(dim=16, seed=1)
    edited = catsplit.split(head, HashEncoder(), COARSE, subs, method="retrieval")
    edited.save(tmp_path / "edited.safetensors")
    rng = np.random.default_rng(0)
    x = np.concatenate([class_clips(v, m, s, 8, rng, 16) for s in subs])
    others = np.concatenate([class_clips(v, m, lab, 4, rng, 16) for lab in head.labels if lab != COARSE])
    np.save(tmp_path / "clips.npy", x)
    np.savez(tmp_path / "clips.npz", features=x, labels=np.array(["ignored"] * len(x)),
             ids=np.array([f"video_{i}.mp4" for i in range(len(x))]))
    np.savez(tmp_path / "others.npz", features=others)
    return tmp_path, head, edited, x, others


def test_refine_writes_what_the_python_api_gives(setup, capsys):
    tmp, head, edited, x, others = setup
    out = tmp / "refined.safetensors"
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "clips.npy"), "--others", str(tmp / "others.npz"),
                 "--seed", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"sub rows of {COARSE!r} on {len(x)} unlabelled clips" in printed and "calibrated on" in printed
    refined = catsplit.load_head(out)
    assert refined.equals(catsplit.refine(edited, x, others=others, seed=2))
    assert catsplit.unsplit(refined, COARSE).equals(head)
    # the .npz form (labels ignored) gives the same head; the output is never overwritten silently
    out2 = tmp / "refined2.safetensors"
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "clips.npz"), "--others", str(tmp / "others.npz"),
                 "--seed", "2", "-o", str(out2)]) == 0
    assert catsplit.load_head(out2).equals(refined)
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "clips.npz"), "-o", str(out2)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "clips.npz"), "--iterations", "2", "--bias", "lda",
                 "--overwrite", "-o", str(out2)]) == 0
    info = catsplit.load_head(out2).latest_record()["refine"]
    assert info["max_iterations"] == 2 and info["bias"] == "lda"


def test_refine_errors_are_one_line(setup, capsys):
    tmp, head, edited, x, _ = setup
    head.save(tmp / "plain.safetensors")
    assert main(["refine", str(tmp / "plain.safetensors"), str(tmp / "clips.npy"), "-o", str(tmp / "o.safetensors")]) == 2
    assert "latest split" in capsys.readouterr().err
    np.save(tmp / "narrow.npy", x[:, :3])
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "narrow.npy"), "-o", str(tmp / "o.safetensors")]) == 2
    assert "[N, 16]" in capsys.readouterr().err
    assert main(["refine", str(tmp / "edited.safetensors"), str(tmp / "clips.npy"), "--shrinkage", "2", "-o", str(tmp / "o.safetensors")]) == 2
    assert "shrinkage" in capsys.readouterr().err
    assert not (tmp / "o.safetensors").exists()


def test_relabel_writes_a_csv_with_ids_or_row_numbers(setup, capsys):
    tmp, head, edited, x, _ = setup
    refined = catsplit.refine(edited, x)
    refined.save(tmp / "refined.safetensors")
    labels, p = catsplit.relabel(refined, x)
    out = tmp / "labels.csv"
    assert main(["relabel", str(tmp / "refined.safetensors"), str(tmp / "clips.npz"), "-o", str(out)]) == 0
    assert f"relabelled {len(x)} clips" in capsys.readouterr().out
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["clip", "label", "probability"] and len(rows) == len(x) + 1
    assert [r[0] for r in rows[1:]] == [f"video_{i}.mp4" for i in range(len(x))]
    assert [r[1] for r in rows[1:]] == labels
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], p, atol=1e-6)
    assert main(["relabel", str(tmp / "refined.safetensors"), str(tmp / "clips.npy"), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["relabel", str(tmp / "refined.safetensors"), str(tmp / "clips.npy"), "--overwrite", "-o", str(out)]) == 0
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(len(x))]  # no ids in a .npy: row numbers


def test_relabel_leaves_no_file_on_error(setup, capsys):
    tmp, head, edited, x, _ = setup
    bad = x.copy()
    bad[-1, 0] = np.inf  # found only in the last chunk, after rows were written to the temp file
    np.save(tmp / "bad.npy", bad)
    assert main(["relabel", str(tmp / "edited.safetensors"), str(tmp / "bad.npy"), "-o", str(tmp / "l.csv")]) == 2
    assert "NaN or inf" in capsys.readouterr().err
    assert sorted(p.name for p in tmp.iterdir() if "l.csv" in p.name) == []
