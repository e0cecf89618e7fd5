"""Which commands read which kind of input: kind -> (its cases, the command lines that read the case's files).

Each command line works with the seed files in place of the fuzzed ones (test_fuzz_cli.py checks that), so
a refusal in the fuzz tests comes from the damage, not from the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hypothesis import strategies as st

from fuzzcases import (
    LABEL_FILES, backbone_weight_files, checkpoint_files, encoder_files, feature_files, head_files, history_files,
    json_text_files, label_files, layout_files, onnx_files,
)
from fuzzkit import read_tree
from fuzzseeds import COARSE, seeds

# commands that take seconds when their input is fine (demo trains a head): in the matrix only, not per kind
SLOW_COMMANDS = {"demo"}


def _split(head: Any, *extra: Any, d: Path) -> list:
    s = seeds()
    return ["split", head, *extra, "--coarse", COARSE, "--sub", s.subs[0], "--sub", s.subs[1], "--method", "coarse",
            "-o", d / "out.safetensors"]


def _bench(d: Path, *, layout: Any = None, features: Any = None, head: Any = None, encoder: Any = None, key: Any = None) -> list:
    s = seeds()
    argv = ["bench", "--annotations", layout or s.layout, "--features", features or s.layout_features, "--head", head or s.head,
            "--methods", "coarse", "--seeds", "1", "--encoder", encoder or s.bert, "--no-progress", "--out", d / "results.json"]
    return argv + (["--key", key] if key else [])


def _finetune(head: Any, features: Any, d: Path, *extra: Any) -> list:
    return ["finetune", head, features, *extra, "--max-epochs", "2", "--batch-size", "4", "--no-progress", "-o", d / "out.safetensors"]


def _edit_onnx(model: Any, d: Path, *extra: Any, method: str = "coarse") -> list:
    s = seeds()
    subs = [] if "--subs-file" in extra else ["--sub", s.subs[0], "--sub", s.subs[1]]
    return ["edit-onnx", model, "--coarse", COARSE, *subs, *extra, "--method", method, "-o", d / "out.onnx"]


def _retrieval(head: Any, d: Path, *extra: Any, encoder: Any = None) -> list:
    s = seeds()
    return ["split", head, "--coarse", COARSE, "--subs-file", s.subs_txt, "--method", "retrieval", "--encoder",
            encoder or s.bert, *extra, "-o", d / "out.safetensors"]


def head_commands(d: Path, coarse: str = COARSE) -> dict[str, list]:
    """`coarse`: the label `split` splits (the edited seeds have split COARSE already)."""
    s = seeds()
    h = d / "head.safetensors"

    def split(*extra: Any) -> list:
        argv = _split(h, *extra, d=d)
        argv[argv.index("--coarse") + 1] = coarse
        argv[argv.index("--sub") + 1], argv[argv.index("--sub", argv.index("--sub") + 1) + 1] = coarse + " a", coarse + " b"
        return argv

    return {
        "split": split(),
        "split-hierarchical": split("--mode", "hierarchical"),
        "unsplit": ["unsplit", h, "--coarse", "Lifting something up", "-o", d / "out.safetensors"],
        "finetune": _finetune(h, s.features_npz, d),
        "refine": ["refine", h, s.features_npz, "-o", d / "out.safetensors"],
        "relabel": ["relabel", h, s.features_npz, "-o", d / "labels.csv"],
        "inspect": ["inspect", h],
        "inspect-json": ["inspect", h, "--json", "--coarse", COARSE, "--sub", s.subs[0], "--sub", s.subs[1]],
        "export": ["export", h, "-o", d / "out.onnx"],
        "bench": _bench(d, head=h),
    }


def checkpoint_commands(d: Path) -> dict[str, list]:
    s = seeds()
    c = d / "ckpt.pt"
    key = ["--key", "model.fc", "--labels", s.labels_json]
    return {
        "split": _split(c, *key, "--head-only", d=d),
        "inspect": ["inspect", c, *key],
        "export": ["export", c, *key, "-o", d / "out.onnx"],
        "bench": _bench(d, head=c, key="model.fc"),
    }


def onnx_commands(d: Path) -> dict[str, list]:
    s = seeds()
    m = d / "model.onnx"
    return {
        "predict": ["predict", m, s.batch_npy, "--top", "2"],
        "predict-json": ["predict", m, s.batch_npz, "--json", "--batch-size", "2"],
        "edit-onnx": _edit_onnx(m, d),
        "edit-onnx-hierarchical": _edit_onnx(m, d, "--mode", "hierarchical"),
        "edit-onnx-labels": _edit_onnx(m, d, "--labels", s.labels_json),
        "triton": ["triton", m, "--repo", d / "repo", "--name", "model", "--max-batch-size", "4"],
    }


def label_commands(d: Path, name: str) -> dict[str, list]:
    s = seeds()
    f = d / name
    if name in ("labels.json", "labels_map.json", "labels.txt"):
        key = ["--key", "model.fc", "--labels", f]
        return {
            "inspect": ["inspect", s.head, "--labels", f],
            "split": _split(s.checkpoint, *key, "--head-only", d=d),
            "export": ["export", s.checkpoint, *key, "-o", d / "out.onnx"],
            "edit-onnx": _edit_onnx(s.onnx_foreign, d, "--labels", f),
        }
    if name == "subs.txt":
        return {
            "split": _retrieval(s.head, d, "--subs-file", f),
            "inspect": ["inspect", s.head, "--coarse", COARSE, "--subs-file", f],
            "edit-onnx": _edit_onnx(s.onnx_flat, d, "--subs-file", f),
        }
    if name in ("groups.json", "modifiers.json"):
        option = "--groups" if name == "groups.json" else "--modifiers"
        return {
            "split": _retrieval(s.head, d, option, f),
            "split-hierarchical": _retrieval(s.head, d, option, f, "--mode", "hierarchical"),
            "edit-onnx": _edit_onnx(s.onnx_flat, d, "--subs-file", s.subs_txt, option, f, "--encoder", s.bert, method="retrieval"),
        }
    assert name == "clip_labels.json", name
    return {"finetune": _finetune(s.tuned_source, s.features_npy, d, "--labels", f)}


def feature_commands(d: Path, kind: str) -> dict[str, list]:
    s = seeds()
    if kind.startswith("batch"):
        f = d / ("batch.npy" if kind == "batch_npy" else "batch.npz")
        return {"predict": ["predict", s.onnx_hier, f, "--top", "3"], "predict-flat": ["predict", s.onnx_flat, f, "--json"]}
    f = d / {"npz": "feats.npz", "npy": "feats.npy", "safetensors": "feats.safetensors"}[kind]
    extra = ["--labels", s.clip_labels_json] if kind == "npy" else []
    return {"finetune": _finetune(s.tuned_source, f, d, *extra), "finetune-shots": _finetune(s.tuned_source, f, d, *extra, "--shots", "1"),
            "refine": ["refine", s.refinable, f, "-o", d / "out.safetensors"],
            "refine-others": ["refine", s.refinable, f, "--others", f, "-o", d / "out.safetensors"],
            "relabel": ["relabel", s.refinable, f, "-o", d / "labels.csv"]}


def layout_commands(d: Path) -> dict[str, list]:
    return {"bench": _bench(d, layout=d / "layout", features=d / "layout_feats.npz")}


def encoder_commands(d: Path) -> dict[str, list]:
    s = seeds()
    e = d / "encoder"
    return {
        "split": _retrieval(s.head, d, encoder=e),
        "split-text": ["split", s.head, "--coarse", COARSE, "--sub", s.subs[0], "--sub", s.subs[1], "--method", "text",
                            "--encoder", e, "-o", d / "out.safetensors"],
        "edit-onnx": _edit_onnx(s.onnx_flat, d, "--encoder", e, method="retrieval"),
        "bench": _bench(d, encoder=e),
        "demo": ["demo", "--encoder", e, "--method", "coarse"],
    }


def backbone_commands(d: Path, name: str) -> dict[str, list]:
    s = seeds()
    # --example-shape the backbone cannot take: valid weights fail there, quickly, instead of exporting for seconds
    return {"export": ["export", s.head, "--backbone", f"{s.backbone_py}:Backbone", "--backbone-weights", d / name,
                       "--example-shape", "1,1,1,1,1", "-o", d / "out.onnx"]}


FEATURE_KINDS = {"npz": "feats.npz", "npy": "feats.npy", "safetensors": "feats.safetensors", "batch_npy": "batch.npy",
                 "batch_npz": "batch.npz"}


FEATURE_FILES = {v: k for k, v in FEATURE_KINDS.items()}


# kind -> (strategy of the case's files, the commands that read them for those files)
KINDS: dict[str, tuple[Callable[[], st.SearchStrategy], Callable[[Path, dict], dict[str, list]]]] = {
    "head": (head_files, lambda d, f: head_commands(d)),
    "history": (history_files, lambda d, f: {k: v for k, v in head_commands(d, coarse="Dropping something up").items()
                                             if k != "bench"}),  # an edited head is not the layout's base head
    "checkpoint": (checkpoint_files, lambda d, f: checkpoint_commands(d)),
    "onnx": (onnx_files, lambda d, f: onnx_commands(d)),
    "labels": (label_files, lambda d, f: label_commands(d, next(iter(f)))),
    "json": (json_text_files, lambda d, f: label_commands(d, next(iter(f)))),
    "features": (lambda: st.sampled_from(sorted(FEATURE_KINDS)).flatmap(feature_files),
                 lambda d, f: feature_commands(d, FEATURE_FILES[next(iter(f))])),
    "layout": (layout_files, lambda d, f: layout_commands(d)),
    "encoder": (encoder_files, lambda d, f: encoder_commands(d)),
    "backbone": (backbone_weight_files, lambda d, f: backbone_commands(d, next(iter(f)))),
}


def seed_files(kind: str) -> list[dict[str, bytes]]:
    """The unmutated files of a kind, in the form its strategy draws them (for checking that the commands work)."""
    s = seeds()
    tree = lambda folder, into: {f"{into}/{k}": v for k, v in read_tree(folder).items()}  # noqa: E731
    return {
        "head": [{"head.safetensors": p.read_bytes()} for p in (s.head, s.edited, s.text_head, s.tuned_source, s.refinable)],
        "history": [{"head.safetensors": p.read_bytes()} for p in (s.edited, s.tuned_source, s.refinable)],
        "checkpoint": [{"ckpt.pt": s.checkpoint.read_bytes()}],
        "onnx": [{"model.onnx": p.read_bytes()} for p in (s.onnx_flat, s.onnx_hier, s.onnx_foreign, s.onnx_softmax)],
        "labels": [{n: (s.root / n).read_bytes()} for n in LABEL_FILES],
        "json": [{n: (s.root / n).read_bytes()} for n in LABEL_FILES if n.endswith(".json")],
        "features": [{p.name: p.read_bytes()} for p in (s.features_npz, s.features_npy, s.features_st, s.batch_npy, s.batch_npz)],
        "layout": [{**tree(s.layout, "layout"), "layout_feats.npz": s.layout_features.read_bytes()}],
        "encoder": [tree(s.bert, "encoder"), tree(s.onnx_encoder, "encoder")],
        "backbone": [{p.name: p.read_bytes()} for p in (s.backbone_st, s.backbone_pt)],
    }[kind]
