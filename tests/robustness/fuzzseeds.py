"""Valid files of every input kind the fuzz tests mutate: head files, a checkpoint, ONNX models, label files,
clip features, the paper's layout, two text-encoder folders (a tiny BERT and an ONNX one, no downloads), a
backbone and its weights. Built once per process (`seeds()`), in a temporary folder, in a few seconds.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DIM = 6


COARSE = "Pushing something"


BACKBONE_SOURCE = textwrap.dedent(
    """
    import torch

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(3, 6, 3, stride=2, padding=1)
            self.norm = torch.nn.BatchNorm1d(6)

        def forward(self, clips):
            x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
            return self.norm(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))
    """
)


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "something", "pushing", "pulling", "lifting", "dropping",
         "sliding", "from", "left", "to", "right", "up", "onto", "next", "a", "the", "fast", "slowly", "##s", "##ing"]


def _tokenizer_json(path: Path) -> None:
    """A tiny BERT WordPiece tokenizer.json (no downloads)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                      special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.save(str(path))


BERT_CONFIG = {"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
               "intermediate_size": 16, "max_position_embeddings": 512, "vocab_size": len(VOCAB), "type_vocab_size": 2,
               "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


def _bert_folder(folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    cfg = BERT_CONFIG
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(0)
    w = {
        "embeddings.word_embeddings.weight": (V, H), "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], H),
        "embeddings.token_type_embeddings.weight": (2, H), "embeddings.LayerNorm.weight": (H,), "embeddings.LayerNorm.bias": (H,),
    }
    p = "encoder.layer.0."
    for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
        w[p + name + ".weight"], w[p + name + ".bias"] = (H, H), (H,)
    w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = (I, H), (I,)
    w[p + "output.dense.weight"], w[p + "output.dense.bias"] = (H, I), (H,)
    for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
        w[p + ln + ".weight"], w[p + ln + ".bias"] = (H,), (H,)
    save_file({k: torch.randn(s, generator=g) for k, s in w.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    _tokenizer_json(folder / "tokenizer.json")


CLIP_CONFIG = {"model_type": "clip_text_model", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
               "intermediate_size": 16, "max_position_embeddings": 16, "vocab_size": len(VOCAB), "projection_dim": 4,
               "layer_norm_eps": 1e-5, "hidden_act": "quick_gelu", "eos_token_id": 3}


def _clip_folder(folder: Path) -> None:
    """A tiny CLIP text tower with a projection (CLIPTextModelWithProjection's tensor names), random weights; the
    BERT seed's tokenizer ([SEP] = 3 as the end-of-text token CLIP pools at)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    cfg = CLIP_CONFIG
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(2)
    w = {"embeddings.token_embedding.weight": (V, H), "embeddings.position_embedding.weight": (cfg["max_position_embeddings"], H),
         "final_layer_norm.weight": (H,), "final_layer_norm.bias": (H,)}
    p = "encoder.layers.0."
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        w[f"{p}self_attn.{name}.weight"], w[f"{p}self_attn.{name}.bias"] = (H, H), (H,)
    for ln in ("layer_norm1", "layer_norm2"):
        w[f"{p}{ln}.weight"], w[f"{p}{ln}.bias"] = (H,), (H,)
    w[f"{p}mlp.fc1.weight"], w[f"{p}mlp.fc1.bias"] = (I, H), (I,)
    w[f"{p}mlp.fc2.weight"], w[f"{p}mlp.fc2.bias"] = (H, I), (H,)
    tensors = {f"text_model.{k}": torch.randn(s, generator=g) for k, s in w.items()}
    tensors["text_projection.weight"] = torch.randn((cfg["projection_dim"], H), generator=g)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    _tokenizer_json(folder / "tokenizer.json")


def _onnx_encoder_folder(folder: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir()
    table = np.random.default_rng(1).standard_normal((len(VOCAB), 8)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", 8])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    _tokenizer_json(folder / "tokenizer.json")


def _foreign_onnx(path: Path, head: Any, *, softmax: bool) -> None:
    """A classifier not written by catsplit: MatMul + Add (+ Softmax), labels in the `labels` metadata key."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = head.weight.numpy().T.copy()  # [D, C]
    b = head.bias.numpy().copy()
    nodes = [helper.make_node("MatMul", ["features", "W"], ["mm"], name="fc_matmul"),
             helper.make_node("Add", ["mm", "B"], ["logits"], name="fc_add")]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "foreign", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", DIM])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", len(head.labels)])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "labels", json.dumps(list(head.labels))
    onnx.save(model, str(path))


def write_layout_seed(root: Path, head: Any, subs: Sequence[str], v: dict, m: dict, *, npz: Path) -> None:
    """The paper's layout for `head` (partition A collapses COARSE) and its features file."""
    from catsplit.bench.layout import write_layout

    from conftest import MODIFIERS, VERBS, class_clips

    rng = np.random.default_rng(0)
    fine = {f"{verb} something": [f"{verb} something {mod}" for mod in MODIFIERS] for verb in VERBS}
    base = list(head.labels)
    feats: dict[str, np.ndarray] = {}
    sets = {}
    for kind, n in (("ft_set", 2), ("equivalent_set", 2)):
        rows = []
        for j, s in enumerate(subs):
            for i in range(n):
                path = f"videos/{kind}/{j}_{i}.mp4"
                feats[path] = class_clips(v, m, s, 1, rng, DIM)[0]
                rows.append((path, len(base) + j))
        sets[("A", COARSE, kind)] = rows
    rows = []
    for li, lab in enumerate(base):
        if lab != COARSE and li % 4 == 0:
            path = f"videos/other/{li}.mp4"
            feats[path] = class_clips(v, m, lab, 1, rng, DIM)[0]
            rows.append((path, li))
    sets[("A", COARSE, "unrelated_set")] = rows
    write_layout(root, fine, {"A": [COARSE], "B": []}, {"A": base}, sets)
    np.savez(npz, paths=np.array(list(feats)), features=np.stack(list(feats.values())))


@dataclass
class Seeds:
    """Valid files of every input kind (paths into one folder), built once per test session."""

    root: Path
    head: Path  # flat catsplit head, dim DIM, with bias
    edited: Path  # hierarchical + flat splits: tables, history, undo tensors, groups
    text_head: Path  # bfloat16 text head with templates
    tuned_source: Path  # a head whose latest edit is a flat split of COARSE (for finetune)
    refinable: Path  # a head whose latest edit is a flat retrieval split of COARSE (for refine, relabel)
    checkpoint: Path  # PyTorch checkpoint: state_dict.model.fc.{weight,bias} among other entries
    labels_json: Path
    labels_map: Path
    labels_txt: Path
    subs_txt: Path
    groups_json: Path
    modifiers_json: Path
    clip_labels_json: Path  # one label per feature row of `features_npz`
    features_npz: Path
    features_npy: Path
    features_st: Path
    batch_npy: Path  # a batch for `predict` [N, DIM]
    batch_npz: Path
    onnx_flat: Path
    onnx_hier: Path
    onnx_foreign: Path
    onnx_softmax: Path
    layout: Path  # folder with group_scheme.json
    layout_features: Path
    bert: Path
    onnx_encoder: Path
    clip: Path
    backbone_py: Path
    backbone_st: Path
    backbone_pt: Path
    subs: tuple[str, ...]


_SEEDS: list[Seeds] = []


def seeds() -> Seeds:
    """The seed files (built on first use in a temporary folder that lives as long as the process)."""
    if not _SEEDS:
        import atexit
        import shutil

        root = Path(tempfile.mkdtemp(prefix="catsplit-fuzz-seeds-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SEEDS.append(_build_seeds(root))
    return _SEEDS[0]


def _build_seeds(root: Path) -> Seeds:
    import torch
    from safetensors.numpy import save_file as save_np
    from safetensors.torch import save_file

    import catsplit
    from catsplit.export import to_onnx
    from conftest import HashEncoder, class_clips, compositional_head

    enc = HashEncoder(dim=8)
    head, subs, v, m = compositional_head(dim=DIM, seed=3)
    head.save(root / "head.safetensors")
    edited = catsplit.split(head, enc, COARSE, subs[:2], method="retrieval", mode="hierarchical")
    edited = catsplit.split(edited, enc, "Lifting something up", ["Lifting something up fast", "Lifting something up slowly"],
                            method="coarse")
    edited.save(root / "edited.safetensors")
    text = catsplit.Head(weight=torch.randn(3, DIM, dtype=torch.float32).to(torch.bfloat16), labels=["x a", "y a", "z b"],
                         groups={"a": ["x a", "y a"]}, kind="text", scale=14.0, templates=("a video of {}.",))
    text.save(root / "text.safetensors")
    tuned = catsplit.split(head, None, COARSE, subs[:3], method="coarse")
    tuned.save(root / "tuned.safetensors")
    catsplit.split(head, enc, COARSE, subs[:3], method="retrieval").save(root / "refinable.safetensors")

    torch.save({"state_dict": {"model.fc.weight": head.weight.clone(), "model.fc.bias": head.bias.clone(),
                               "model.backbone.conv.weight": torch.randn(2, 3)}, "epoch": 3, "note": "x"},
               root / "ckpt.pt")
    labels = list(head.labels)
    (root / "labels.json").write_text(json.dumps(labels, ensure_ascii=False))
    (root / "labels_map.json").write_text(json.dumps({lab: i for i, lab in enumerate(labels)}, ensure_ascii=False))
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    (root / "subs.txt").write_text("\n".join(subs[:3]) + "\n")
    others = [lab for lab in labels if lab != COARSE]
    (root / "groups.json").write_text(json.dumps({"Pulling something": [x for x in others if x.startswith("Pulling")],
                                                   "Lifting something": [x for x in others if x.startswith("Lifting")]}))
    (root / "modifiers.json").write_text(json.dumps({x: x.split("something ", 1)[1] for x in others if "something " in x}))

    rng = np.random.default_rng(0)
    fine = [s for s in subs[:3] for _ in range(2)]
    x = np.concatenate([class_clips(v, m, s, 2, rng, DIM) for s in subs[:3]])  # [6, DIM]
    np.savez(root / "feats.npz", features=x, labels=np.array(fine))
    np.save(root / "feats.npy", x)
    save_np({"features": x, "labels": np.array([tuned.labels.index(s) for s in fine], dtype=np.int64)},
            str(root / "feats.safetensors"))
    (root / "clip_labels.json").write_text(json.dumps(fine))
    batch = rng.standard_normal((3, DIM)).astype(np.float32)
    np.save(root / "batch.npy", batch)
    np.savez(root / "batch.npz", clips=batch)

    to_onnx(None, head, root / "flat.onnx", torch.randn(2, DIM))
    hier = catsplit.split(head, enc, COARSE, subs[:2], method="retrieval", mode="hierarchical")
    to_onnx(None, hier, root / "hier.onnx", torch.randn(2, DIM))
    _foreign_onnx(root / "foreign.onnx", head, softmax=False)
    _foreign_onnx(root / "softmax.onnx", head, softmax=True)

    write_layout_seed(root / "layout", head, subs, v, m, npz=root / "layout_feats.npz")

    _bert_folder(root / "bert")
    _onnx_encoder_folder(root / "onnx_encoder")
    _clip_folder(root / "clip")

    (root / "backbone.py").write_text(BACKBONE_SOURCE)
    import importlib.util

    spec = importlib.util.spec_from_file_location("fuzz_backbone", root / "backbone.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    state = module.Backbone().state_dict()
    save_file({k: t.contiguous() for k, t in state.items()}, str(root / "backbone.safetensors"))
    torch.save(state, root / "backbone.pt")
    return Seeds(
        root=root, head=root / "head.safetensors", edited=root / "edited.safetensors", text_head=root / "text.safetensors",
        tuned_source=root / "tuned.safetensors", refinable=root / "refinable.safetensors", checkpoint=root / "ckpt.pt", labels_json=root / "labels.json",
        labels_map=root / "labels_map.json", labels_txt=root / "labels.txt", subs_txt=root / "subs.txt",
        groups_json=root / "groups.json", modifiers_json=root / "modifiers.json", clip_labels_json=root / "clip_labels.json",
        features_npz=root / "feats.npz", features_npy=root / "feats.npy", features_st=root / "feats.safetensors",
        batch_npy=root / "batch.npy", batch_npz=root / "batch.npz", onnx_flat=root / "flat.onnx",
        onnx_hier=root / "hier.onnx", onnx_foreign=root / "foreign.onnx", onnx_softmax=root / "softmax.onnx",
        layout=root / "layout", layout_features=root / "layout_feats.npz", bert=root / "bert",
        onnx_encoder=root / "onnx_encoder", clip=root / "clip", backbone_py=root / "backbone.py", backbone_st=root / "backbone.safetensors",
        backbone_pt=root / "backbone.pt", subs=tuple(subs),
    )


def seeds_labels() -> list[str]:
    return json.loads(seeds().labels_json.read_text())
