"""What the fuzz tests share: valid seed files of every input kind, mutations of them, and the CLI run in-process.

Each `tests/robustness/test_fuzz_*.py` file fuzzes one kind of input (head files, checkpoints, ONNX
models, label files, JSON, clip features, paper layouts, encoder folders, backbone weights): it mutates
the seeds built here (byte flips, truncation, structured corruptions) and checks that every command
and API reading that kind either works or raises `CatsplitError`, which the CLI prints as one
`catsplit: error:` line with exit status 2. `test_fuzz_cli.py` runs every subcommand on every kind.

CI runs `EXAMPLES` (1,000) cases per kind, derandomized (the same cases on every run). A longer run:

    CATSPLIT_FUZZ_EXAMPLES=30000 .venv/bin/python -m pytest -q tests/robustness -k fuzz -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("CATSPLIT_FUZZ_EXAMPLES", "1000"))
# A hang guard, not a timing assertion: every case takes milliseconds; only a hang comes near this.
CASE_SECONDS = int(os.environ.get("CATSPLIT_FUZZ_CASE_SECONDS", "120"))


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    """Hypothesis settings of the fuzz tests: `examples` cases, the same ones on every run, no example database."""
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
    )


# --- running a case ----------------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS: a hang (BaseException, so that no `except Exception` in the code swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: int = CASE_SECONDS):
    """Raise CaseTimeout in the main thread after `seconds` (SIGALRM); a no-op where there is no SIGALRM."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise CaseTimeout(f"the case ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    code: int | None  # exit status; None when an exception escaped `main`
    out: str
    err: str
    escaped: str | None = None  # the traceback of an exception that escaped `main`


_PARSER: list = []


def _cached_parser():
    """The CLI's parser, built once: building it costs ~10 ms, as much as many a case (argparse parsers are reusable)."""
    if not _PARSER:
        from catsplit.cli import build_parser  # the CLI's own (run_cli replaces it by this function only while it runs)

        _PARSER.append(build_parser())
    return _PARSER[0]


def run_cli(argv: Sequence[str]) -> Outcome:
    """`catsplit.cli.main(argv)` in this process, stdout and stderr captured, under the hang guard.

    `main` is the entry point's own code; only its parser is built once for all cases (`_cached_parser`).
    """
    import warnings
    from unittest import mock

    import catsplit.cli
    from catsplit.cli import main

    import torch

    _cached_parser()  # built before catsplit.cli.build_parser is replaced
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: with several threads on shared cores each op waits for the others
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    code: int | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), \
            mock.patch.object(catsplit.cli, "build_parser", _cached_parser):
        warnings.simplefilter("ignore")  # warnings are not the subject; the CLI prints each as one line anyway
        try:
            with time_limit():
                code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except CaseTimeout:
            raise
        except BaseException:  # noqa: BLE001 - what the fuzz tests look for
            escaped = traceback.format_exc()
        finally:
            torch.set_num_threads(threads)
    return Outcome(code, out.getvalue(), err.getvalue(), escaped)


def check_outcome(o: Outcome, argv: Sequence[str], *, must_fail: bool = False) -> str:
    """Exit 0, or exit 2 with exactly one `catsplit: error:` line and no traceback. Returns "ok" or "refused"."""
    shown = " ".join(map(str, argv))
    assert o.escaped is None, f"catsplit {shown}\nraised instead of printing one error line:\n{o.escaped}"
    assert "Traceback" not in o.err, f"catsplit {shown}\nprinted a traceback:\n{o.err}"
    if o.code == 0 and not must_fail:
        return "ok"
    assert o.code == 2, f"catsplit {shown}\nexit status {o.code}, expected 2; stderr:\n{o.err}"
    errors = [line for line in o.err.splitlines() if line.startswith("catsplit: error:")]
    others = [line for line in o.err.splitlines() if line.strip() and not line.startswith("catsplit: ")]
    assert len(errors) == 1 and not others, f"catsplit {shown}\nexpected one 'catsplit: error:' line, got:\n{o.err}"
    return "refused"


def cli_case(argv: Sequence[str], *, must_fail: bool = False) -> str:
    """Run one command line and check it (see `check_outcome`)."""
    return check_outcome(run_cli(argv), argv, must_fail=must_fail)


def api_case(fn: Callable[[], Any]) -> str:
    """Call `fn` under the hang guard: it returns ("ok") or raises CatsplitError ("refused"); anything else fails."""
    from catsplit.errors import CatsplitError

    try:
        with time_limit():
            fn()
    except CatsplitError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip().splitlines()[0]
        return "refused"
    return "ok"


class CaseDir:
    """A folder for the files of one case at a time, emptied before each case."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def fresh(self) -> Path:
        for p in self.root.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        return self.root

    def write(self, name: str, data: bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p


# --- mutations ---------------------------------------------------------------------------------------

PUNCTUATION = b'{}[]",:0123456789-+eE.\\/u \n\r\t\x00\xff\xfe\xef\xbb\xbf'


@st.composite
def mutated_bytes(draw, blob: bytes, *, hot: tuple[int, int] | None = None, rounds: int = 3) -> bytes:
    """1 to `rounds` byte-level mutations of `blob`: bit flips, set bytes, truncation, insertion, deletion,
    duplication. `hot` = (start, end): a span (a header, say) that gets half of the point mutations."""
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, rounds))):
        n = len(data)
        if n == 0:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        kind = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "delete", "duplicate", "splat"]))
        lo, hi = (0, n)
        if hot is not None and kind in ("flip", "set") and draw(st.booleans()):
            lo, hi = max(0, min(hot[0], n - 1)), max(1, min(hot[1], n))
        if kind == "flip":
            i = draw(st.integers(lo, hi - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            i = draw(st.integers(lo, hi - 1))
            data[i] = draw(st.sampled_from(PUNCTUATION))
        elif kind == "truncate":
            del data[draw(st.integers(0, n - 1)):]
        elif kind == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 32))]
        elif kind == "duplicate":
            i = draw(st.integers(0, n - 1))
            data[i:i] = data[i : i + draw(st.integers(1, 64))]
        else:  # a run of one byte over the data
            i = draw(st.integers(0, n - 1))
            data[i : i + draw(st.integers(1, 64))] = bytes([draw(st.sampled_from(PUNCTUATION))]) * 8
    return bytes(data)


WEIRD_STRINGS = [
    "", " ", "\t", "\x00", "a\x00b", "a\nb", "a\u2028b", "\ufeffa", "\u200b", "\ud800", "{}", "{:^{}}", "{0}{1}",
    "%s", "../../etc/passwd", "/dev/zero", "C:\\x", "é" * 3, "🙂", "a" * 300, "nan", "1e999", "-0", "0x10",
]


def weird_scalars() -> st.SearchStrategy:
    """Values of the wrong kind for any JSON field."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([-1, 0, 2**31, 2**63, 10**30, -(10**30)]),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WEIRD_STRINGS), st.text(max_size=8),
    )


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    """Arbitrary (mostly small) JSON-like values: the wrong shape for whatever field they replace."""
    return st.recursive(
        weird_scalars(),
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(WEIRD_STRINGS + ["a", "b"]), kids, max_size=4)),
        max_leaves=max_leaves,
    )


def _paths(value: Any, prefix: tuple = (), limit: int = 30) -> list[tuple]:
    """Every path into a JSON value (keys and indices), the root first; at most `limit` levels deep."""
    out = [prefix]
    if len(prefix) >= limit:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,), limit)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,), limit)
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = _replace(value[head], rest, new)
        return out
    out = list(value)
    out[head] = _replace(value[head], rest, new)
    return out


def _delete(value: Any, path: tuple) -> Any:
    if len(path) == 1:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != path[0]}
        return [v for i, v in enumerate(value) if i != path[0]]
    head = path[0]
    return _replace(value, (head,), _delete(value[head], path[1:]))


@st.composite
def mutated_json(draw, value: Any, *, rounds: int = 2) -> Any:
    """1 to `rounds` structural edits of a JSON value: a node replaced by a value of the wrong kind, deleted,
    duplicated, wrapped in a list, or nested deeply; big numbers; strings with control characters."""
    for _ in range(draw(st.integers(1, rounds))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "deep", "bignum", "string", "dup_key"]))
        node = value
        for p in path:
            node = node[p]
        if kind == "replace":
            value = _replace(value, path, draw(json_values()))
        elif kind == "delete" and path:
            value = _delete(value, path)
        elif kind == "wrap":
            value = _replace(value, path, draw(st.sampled_from([[node], {"x": node}, [node, node]])))
        elif kind == "deep":
            depth = draw(st.sampled_from([50, 101, 500, 2000]))
            nested: Any = node
            for _ in range(depth):
                nested = [nested]
            value = _replace(value, path, nested)
        elif kind == "bignum":
            value = _replace(value, path, draw(st.sampled_from([10**400, -(10**400), 2**64, 1e308, -1, 0, 10**9])))
        elif kind == "string":
            value = _replace(value, path, draw(st.sampled_from(WEIRD_STRINGS)))
        elif kind == "dup_key" and isinstance(node, dict) and node:
            k = draw(st.sampled_from(sorted(node, key=str)))
            value = _replace(value, path, {**node, k.upper() if isinstance(k, str) else k: node[k], " " + str(k): node[k]})
    return value


def dump_json(value: Any) -> bytes:
    """JSON text of a (mutated) value; deep nesting written iteratively, NaN and huge ints as Python writes them."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def json_file(draw, value: Any) -> bytes:
    """A JSON file derived from `value`: structurally edited, byte-mutated, or both."""
    kind = draw(st.sampled_from(["structure", "structure", "bytes", "both"]))
    text = dump_json(draw(mutated_json(value))) if kind != "bytes" else dump_json(value)
    if kind != "structure":
        text = draw(mutated_bytes(text))
    return text


# --- seeds -------------------------------------------------------------------------------------------

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
    backbone_py: Path
    backbone_st: Path
    backbone_pt: Path
    subs: tuple[str, ...]


_SEEDS: list[Seeds] = []


def seeds() -> Seeds:
    """The seed files (built on first use in a temporary folder that lives as long as the process)."""
    if not _SEEDS:
        _SEEDS.append(_build_seeds(Path(tempfile.mkdtemp(prefix="catsplit-fuzz-seeds-"))))
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
        tuned_source=root / "tuned.safetensors", checkpoint=root / "ckpt.pt", labels_json=root / "labels.json",
        labels_map=root / "labels_map.json", labels_txt=root / "labels.txt", subs_txt=root / "subs.txt",
        groups_json=root / "groups.json", modifiers_json=root / "modifiers.json", clip_labels_json=root / "clip_labels.json",
        features_npz=root / "feats.npz", features_npy=root / "feats.npy", features_st=root / "feats.safetensors",
        batch_npy=root / "batch.npy", batch_npz=root / "batch.npz", onnx_flat=root / "flat.onnx",
        onnx_hier=root / "hier.onnx", onnx_foreign=root / "foreign.onnx", onnx_softmax=root / "softmax.onnx",
        layout=root / "layout", layout_features=root / "layout_feats.npz", bert=root / "bert",
        onnx_encoder=root / "onnx_encoder", backbone_py=root / "backbone.py", backbone_st=root / "backbone.safetensors",
        backbone_pt=root / "backbone.pt", subs=tuple(subs),
    )


# --- cases, per kind of input ---------------------------------------------------------------------------
# Each strategy draws the files of one case: {path relative to the case folder: bytes}.


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by path relative to it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _split_safetensors(blob: bytes) -> tuple[dict, bytes] | None:
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + n])
    except Exception:  # noqa: BLE001 - a seed that is already damaged
        return None
    return (header, blob[8 + n :]) if isinstance(header, dict) else None


def _join_safetensors(header: dict, data: bytes) -> bytes:
    raw = dump_json(header)
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data


@st.composite
def safetensors_file(draw, blob: bytes) -> bytes:
    """A safetensors file derived from `blob`: byte mutations (half of them in the header), or structural edits of
    the header, where a metadata value that holds JSON (labels, tables, groups, history) is edited as JSON."""
    parts = _split_safetensors(blob)
    if parts is None or draw(st.integers(0, 2)) == 0:
        return draw(mutated_bytes(blob, hot=(0, 8 + int.from_bytes(blob[:8], "little"))))
    header, data = parts
    meta = header.get("__metadata__", {})
    tree: dict[str, Any] = {k: v for k, v in header.items() if k != "__metadata__"}
    parsed: dict[str, Any] = {}
    for k, v in meta.items():
        try:
            parsed[k] = ("json", json.loads(v))
        except ValueError:
            parsed[k] = ("text", v)
    tree["__metadata__"] = {k: v for k, (_, v) in parsed.items()}
    tree = draw(mutated_json(tree))
    if isinstance(tree, dict) and isinstance(tree.get("__metadata__"), dict) and draw(st.integers(0, 4)):
        tree["__metadata__"] = {
            k: dump_json(v).decode("utf-8", "surrogatepass") if (parsed.get(k, ("json",))[0] == "json" or not isinstance(v, str)) else v
            for k, v in tree["__metadata__"].items()
        }
    if not isinstance(tree, dict):
        return dump_json(tree)
    out = _join_safetensors(tree, data)
    if draw(st.integers(0, 3)) == 0:
        out = draw(mutated_bytes(out, rounds=1))
    return out


@st.composite
def head_files(draw) -> dict[str, bytes]:
    """A mutated catsplit head file: `head.safetensors`."""
    s = seeds()
    src = draw(st.sampled_from([s.head, s.edited, s.text_head, s.tuned_source]))
    return {"head.safetensors": draw(safetensors_file(src.read_bytes()))}


@st.composite
def history_files(draw) -> dict[str, bytes]:
    """An edited head whose `catsplit.history` records are edited (keys dropped, values of the wrong type)."""
    s = seeds()
    src = draw(st.sampled_from([s.edited, s.tuned_source]))
    header, data = _split_safetensors(src.read_bytes())
    meta = dict(header["__metadata__"])
    history = json.loads(meta["catsplit.history"])
    kind = draw(st.sampled_from(["drop", "drop", "value", "structure"]))
    i = draw(st.integers(0, len(history) - 1))
    rec = dict(history[i])
    if kind == "drop":
        for k in draw(st.lists(st.sampled_from(sorted(rec)), min_size=1, max_size=3, unique=True)):
            rec.pop(k, None)
        history[i] = rec
    elif kind == "value":
        rec[draw(st.sampled_from(sorted(rec) + ["op", "mode", "table", "row", "sub_table", "undo"]))] = draw(
            st.one_of(json_values(), st.sampled_from([-1, 99, 1.5, "flat", "hierarchical", "undo.9", "split", True])))
        history[i] = rec
    else:
        history = draw(mutated_json(history))
    meta["catsplit.history"] = dump_json(history).decode("utf-8", "surrogatepass")
    header["__metadata__"] = meta
    return {"head.safetensors": _join_safetensors(header, data)}


def _tensor_values() -> st.SearchStrategy:
    """Tensors of every kind a weights-only checkpoint can hold, most of them wrong for a head."""
    import warnings

    import torch

    def make(kind: str) -> Any:
        with warnings.catch_warnings():  # torch's notes on beta and deprecated tensor kinds
            warnings.simplefilter("ignore")
            return _make(kind)

    def _make(kind: str) -> Any:
        w = torch.randn(len(seeds_labels()), DIM)
        if kind == "ok":
            return w
        if kind == "sparse":
            return w.to_sparse()
        if kind == "sparse_csr":
            return w.to_sparse_csr()
        if kind == "meta":
            return torch.empty(len(seeds_labels()), DIM, device="meta")
        if kind == "quantized":
            return torch.quantize_per_tensor(w, 0.1, 0, torch.qint8)
        if kind == "complex":
            return w.to(torch.complex64)
        if kind == "int":
            return w.to(torch.int32)
        if kind == "bool":
            return w > 0
        if kind == "float8":
            return w.to(torch.float8_e4m3fn)
        if kind == "half":
            return w.half()
        if kind == "double":
            return w.double()
        if kind == "scalar":
            return torch.tensor(1.0)
        if kind == "3d":
            return w[None]
        if kind == "empty":
            return torch.empty(0, DIM)
        if kind == "nan":
            w[0, 0] = float("nan")
            return w
        if kind == "huge_view":  # one stored element seen as a huge tensor (stride 0)
            return torch.zeros(1, 1).expand(10**6, 10**6)
        if kind == "transposed":
            return torch.randn(DIM, len(seeds_labels())).t()
        if kind == "parameter":
            return torch.nn.Parameter(w)
        if kind == "wide":
            return torch.randn(len(seeds_labels()), DIM + 1)
        raise AssertionError(kind)

    kinds = ["ok", "sparse", "sparse_csr", "meta", "quantized", "complex", "int", "bool", "float8", "half", "double",
             "scalar", "3d", "empty", "nan", "huge_view", "transposed", "parameter", "wide"]
    return st.sampled_from(kinds).map(make)


def torch_bytes(obj: Any) -> bytes:
    """torch.save(obj) as bytes; deeply nested objects too (pickling them recurses)."""
    import sys

    import torch

    buf = io.BytesIO()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        torch.save(obj, buf)
    finally:
        sys.setrecursionlimit(limit)
    return buf.getvalue()


def seeds_labels() -> list[str]:
    return json.loads(seeds().labels_json.read_text())


@st.composite
def checkpoint_objects(draw, names: Sequence[str] = ("model.fc.weight", "model.fc.bias")) -> Any:
    """The object a checkpoint holds: the seed's state dict with one part replaced by something else."""
    import torch

    s = seeds()
    obj = torch.load(s.checkpoint, weights_only=True)
    sd = obj["state_dict"]
    kind = draw(st.sampled_from(["tensor", "tensor", "bias", "cycle", "deep", "keys", "container", "top"]))
    if kind == "tensor":
        sd[names[0]] = draw(_tensor_values())
    elif kind == "bias":
        sd[names[1]] = draw(st.one_of(_tensor_values(), st.just(torch.ones(3)), st.just(torch.ones(1, 99)), st.just(torch.tensor(2.0))))
    elif kind == "cycle":
        where = draw(st.sampled_from(["top", "state_dict", "list"]))
        if where == "top":
            obj["self"] = obj
        elif where == "state_dict":
            sd["model.loop"] = sd
        else:
            loop: list = []
            loop.append(loop)
            obj["history"] = {"runs": loop, "back": obj}
    elif kind == "deep":
        depth = draw(st.sampled_from([10, 200, 900, 990, 3000]))
        nested: Any = {"weight": sd["model.fc.weight"]}
        for _ in range(depth):
            nested = {"m": nested}
        obj["deep"] = nested
    elif kind == "keys":
        sd[draw(st.sampled_from([1, 2.5, (1, 2), None, True, "", "model.fc", "model.fc.weight.weight"]))] = sd[names[0]]
    elif kind == "container":
        obj = draw(st.sampled_from([[sd], (sd,), {"state_dict": [sd[names[0]], sd[names[1]]]}, {"state_dict": None}, {}, 3]))
    else:
        obj = {"model": obj, "module": {"state_dict": sd}}
    return obj


@st.composite
def checkpoint_files(draw) -> dict[str, bytes]:
    """A mutated PyTorch checkpoint `ckpt.pt`: structural (what it holds) or byte mutations of the zip."""
    import torch

    if draw(st.integers(0, 2)) == 0:
        return {"ckpt.pt": draw(mutated_bytes(seeds().checkpoint.read_bytes()))}
    return {"ckpt.pt": torch_bytes(draw(checkpoint_objects()))}


ONNX_TYPES = list(range(0, 24)) + [99]


def protobuf_text(raw: bytes) -> str:
    """Text a protobuf string field takes (valid UTF-8): lone surrogates written as JSON escapes."""
    return raw.decode("utf-8", "surrogatepass").encode("utf-8", "backslashreplace").decode("utf-8")


@st.composite
def onnx_files(draw, src: Path | None = None) -> dict[str, bytes]:
    """A mutated ONNX model `model.onnx` (and sometimes an external-data file beside it): bytes, initializers
    whose data disagree with their dims or dtype, external-data locations, metadata, renamed or dropped nodes."""
    import onnx

    s = seeds()
    src = src or draw(st.sampled_from([s.onnx_flat, s.onnx_hier, s.onnx_foreign, s.onnx_softmax]))
    if draw(st.integers(0, 3)) == 0:
        return {"model.onnx": draw(mutated_bytes(src.read_bytes()))}
    model = onnx.load(str(src))
    graph = model.graph
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["raw", "dtype", "dims", "typed", "external", "meta", "meta", "meta_drop",
                                     "rename", "drop_node", "outputs", "opset", "inputs", "attribute"]))
        inits = list(graph.initializer)
        t = draw(st.sampled_from(inits)) if inits else None
        if kind == "raw" and t is not None:
            raw = t.raw_data
            t.raw_data = draw(st.sampled_from([raw[: len(raw) // 2], raw[:-1], raw + b"\x00" * 4, b"", raw[:3]]))
        elif kind == "dtype" and t is not None:
            t.data_type = draw(st.sampled_from(ONNX_TYPES))
        elif kind == "dims" and t is not None:
            del t.dims[:]
            t.dims.extend(draw(st.lists(st.sampled_from([-1, 0, 1, 2, 6, 7, 21, 2**31, 2**40]), max_size=3)))
        elif kind == "typed" and t is not None:
            values = np.frombuffer(t.raw_data[: len(t.raw_data) // 4 * 4], dtype=np.float32)
            t.ClearField("raw_data")
            field = draw(st.sampled_from(["float_data", "int32_data", "double_data", "string_data", "int64_data"]))
            n = draw(st.sampled_from([len(values), len(values) - 1, 1, 0]))
            if field == "string_data":
                t.string_data.extend([b"x"] * n)
            elif field in ("int32_data", "int64_data"):
                getattr(t, field).extend([1] * n)
            else:
                getattr(t, field).extend(values[:n].tolist())
        elif kind == "external" and t is not None:
            location = draw(st.sampled_from(["w.bin", "missing.bin", "a\x00b.bin", "/etc/hostname", "../w.bin", "", ".",
                                             "sub/../w.bin", "w.bin\n", "%s"]))
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            del t.external_data[:]
            for key, value in [("location", location)] + draw(st.lists(st.tuples(
                    st.sampled_from(["offset", "length", "checksum", "other"]),
                    st.sampled_from(["0", "4", "-1", "x", "99999999999", ""])), max_size=2)):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            files["w.bin"] = draw(st.binary(max_size=64))
        elif kind in ("meta", "meta_drop") and model.metadata_props:
            entry = draw(st.sampled_from(list(model.metadata_props)))
            if kind == "meta_drop":
                model.metadata_props.remove(entry)
            else:
                try:
                    value = json.loads(entry.value)
                    entry.value = protobuf_text(dump_json(draw(mutated_json(value))))
                except ValueError:
                    entry.value = protobuf_text(draw(st.sampled_from(WEIRD_STRINGS)).encode("utf-8", "surrogatepass"))
        elif kind == "rename" and graph.node:
            n = draw(st.sampled_from(list(graph.node)))
            what = draw(st.sampled_from(["name", "input", "output", "init"]))
            if what == "name":
                n.name = draw(st.sampled_from(["", "x", n.name.split("/")[-1]]))
            elif what == "input" and n.input:
                n.input[draw(st.integers(0, len(n.input) - 1))] = draw(st.sampled_from(["", "nowhere", n.output[0]]))
            elif what == "output":
                n.output[0] = draw(st.sampled_from(["", "renamed", n.input[0]]))
            elif t is not None:
                t.name = draw(st.sampled_from(["", "renamed", t.name.split("/")[-1]]))
        elif kind == "drop_node" and graph.node:
            graph.node.remove(draw(st.sampled_from(list(graph.node))))
        elif kind == "outputs" and graph.output:
            o = graph.output[0]
            choice = draw(st.sampled_from(["drop", "dims", "elem", "extra"]))
            if choice == "drop":
                graph.output.remove(o)
            elif choice == "dims" and o.type.tensor_type.HasField("shape"):
                d = o.type.tensor_type.shape.dim
                d[len(d) - 1].dim_value = draw(st.sampled_from([0, 1, 3, 999]))
            elif choice == "elem":
                o.type.tensor_type.elem_type = draw(st.sampled_from(ONNX_TYPES))
            else:
                graph.output.append(graph.input[0])
        elif kind == "opset":
            model.opset_import[0].version = draw(st.sampled_from([0, 1, 6, 7, 13, 99]))
        elif kind == "inputs" and graph.input:
            i = graph.input[0]
            choice = draw(st.sampled_from(["elem", "rank", "drop"]))
            if choice == "elem":
                i.type.tensor_type.elem_type = draw(st.sampled_from(ONNX_TYPES))
            elif choice == "rank":
                i.type.tensor_type.shape.dim.add().dim_value = 2
            else:
                graph.input.remove(i)
        elif kind == "attribute" and graph.node:
            n = draw(st.sampled_from(list(graph.node)))
            a = n.attribute.add()
            a.name, a.type = draw(st.sampled_from(["axis", "transB", "alpha", "axes"])), onnx.AttributeProto.INT
            a.i = draw(st.sampled_from([-3, 0, 1, 5]))
    files["model.onnx"] = model.SerializeToString()
    return files


@st.composite
def text_lines_file(draw, blob: bytes) -> bytes:
    """A one-item-per-line text file: lines added, doubled or dropped, odd encodings, or byte mutations."""
    lines = blob.decode("utf-8").splitlines()
    kind = draw(st.sampled_from(["lines", "lines", "encoding", "bytes"]))
    if kind == "lines":
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["insert", "dup", "drop", "edit"]))
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            if op == "insert":
                lines.insert(i, draw(st.one_of(st.sampled_from(WEIRD_STRINGS), st.text(max_size=10))))
            elif op == "dup" and lines:
                lines.insert(i, lines[i].upper() if draw(st.booleans()) else lines[i])
            elif op == "drop" and lines:
                del lines[i]
            elif lines:
                lines[i] = lines[i] + draw(st.sampled_from(["\x00", "\x1b[31m", "\u2028", "\r", " ", "\ufeff", "\ud800"]))
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if kind == "encoding":
        text = "\n".join(lines)
        return draw(st.sampled_from([text.encode("utf-16"), text.encode("latin-1", "replace") + b"\xe9\xff",
                                     b"\xef\xbb\xbf" + text.encode(), text.replace("\n", "\r\n").encode(), b"",
                                     b"\n\n\n", text.encode() + b"\x00"]))
    return draw(mutated_bytes(blob))


LABEL_FILES = ("labels.json", "labels_map.json", "labels.txt", "subs.txt", "groups.json", "modifiers.json", "clip_labels.json")


@st.composite
def label_files(draw, name: str | None = None) -> dict[str, bytes]:
    """One of the label, subs, groups, modifiers or clip-label files, mutated."""
    name = name or draw(st.sampled_from(LABEL_FILES))
    blob = (seeds().root / name).read_bytes()
    if name.endswith(".json"):
        return {name: draw(json_file(json.loads(blob)))}
    return {name: draw(text_lines_file(blob))}


ARRAY_DTYPES = [">f4", ">f8", "<f2", "<f8", "g", "c8", "c16", "O", "U4", "S4", "?", "i1", "u8", ">i8", "M8[s]", "m8[s]",
                "V8", [("a", "<f4"), ("b", "<f4")], ("<f4", (2,))]


@st.composite
def mutated_array(draw, x: np.ndarray) -> np.ndarray:
    """`x` with the wrong dtype, shape or values: big-endian, float128, complex, objects, strings, NaN, ..."""
    kind = draw(st.sampled_from(["dtype", "dtype", "shape", "values"]))
    if kind == "dtype":
        dtype = np.dtype(draw(st.sampled_from(ARRAY_DTYPES)))
        if dtype.kind == "O":
            return x.astype(object)
        if dtype.kind in "US":
            return x.astype(dtype)
        if dtype.kind == "V" or dtype.fields or dtype.subdtype:
            return np.zeros(x.shape[:1], dtype=dtype) if dtype.fields or dtype.subdtype else np.zeros(x.shape, dtype)
        try:
            return x.astype(dtype)
        except (TypeError, ValueError):
            return np.zeros(x.shape, dtype=dtype)
    if kind == "shape":
        return draw(st.sampled_from([x[None], x[:, :, None], x[:0], x.reshape(-1), x[:, :-1], np.zeros((0, 0), x.dtype),
                                     np.concatenate([x, x[:, :1]], axis=1), x[:1], np.asarray(x[0, 0]), x.T]))
    x = x.astype(np.float64 if draw(st.booleans()) else x.dtype)
    i, j = draw(st.integers(0, x.shape[0] - 1)), draw(st.integers(0, x.shape[1] - 1))
    with np.errstate(over="ignore"):  # 1e300 into float32 is inf: one more value of the wrong kind
        x[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, 1e-320, -0.0]))
    return x


@st.composite
def mutated_clip_labels(draw, y: np.ndarray) -> np.ndarray | None:
    return draw(st.sampled_from([
        None, y[:-1], y[:, None], y.astype(object), np.array([1.5] * len(y)), np.array([-1] * len(y)),
        np.array([2**62] * len(y)), np.array([True] * len(y)), np.array([""] * len(y)), np.array(["no such label"] * len(y)),
        np.array([b"\xff\xfe"] * len(y)), np.arange(len(y)) + 100, np.array([0] * len(y), dtype=">i8"),
    ]))


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray], compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _safetensors_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    try:
        return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    except Exception:  # noqa: BLE001 - a dtype safetensors cannot store: written by hand, dtype code of our choosing
        header, data, pos = {}, b"", 0
        for k, v in arrays.items():
            raw = np.ascontiguousarray(v).tobytes() if v.dtype.kind != "O" else b""
            header[k] = {"dtype": {"c": "C64", "f": "F64", "M": "I64", "m": "I64", "U": "U8", "S": "U8"}.get(v.dtype.kind, "U8"),
                         "shape": list(v.shape), "data_offsets": [pos, pos + len(raw)]}
            data, pos = data + raw, pos + len(raw)
        return _join_safetensors(header, data)


@st.composite
def npy_header_edit(draw, blob: bytes) -> bytes:
    """An .npy file whose header declares another shape (huge, negative), dtype or order than its data."""
    text = blob[10 : 10 + int.from_bytes(blob[8:10], "little")].decode("latin-1")
    new = draw(st.sampled_from([
        text.replace("'shape': (", "'shape': (1000000000000, "), text.replace("'shape': (", "'shape': (-1, "),
        text.replace("'shape': (", "'shape': (10**6, "), text.replace("False", "True"),
        text.replace("'descr': '<f4'", "'descr': '<f16'"), text.replace("'descr': '<f4'", "'descr': '|O'"),
        text.replace("'descr': '<f4'", "'descr': '>c32'"), text.replace("'descr': '<f4'", "'descr': 'x'"),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': __import__('os')}",
        text[: len(text) // 2], text.replace("}", ", 'x': [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}"),
    ]))
    raw = new.encode("latin-1", "replace")
    raw += b" " * (-(10 + len(raw) + 1) % 64) + b"\n"
    return blob[:8] + len(raw).to_bytes(2, "little") + raw + blob[10 + int.from_bytes(blob[8:10], "little") :]


@st.composite
def zip_edit(draw, blob: bytes) -> bytes:
    """An .npz (zip) file with a bad CRC, a member size or count that lies, or a damaged directory."""
    data = bytearray(blob)
    kind = draw(st.sampled_from(["crc", "crc", "size", "count", "name"]))
    if kind == "crc":  # flip a byte inside a member's data: the stored CRC no longer matches
        first = data.find(b"\x93NUMPY")
        i = draw(st.integers(max(first, 0) + 80, len(data) - 1)) if first >= 0 and first + 80 < len(data) else len(data) // 2
        data[i] ^= 0x55
    elif kind == "size":  # the central directory's uncompressed size of the first member: huge or tiny
        at = data.find(b"PK\x01\x02")
        if at >= 0:
            data[at + 24 : at + 28] = draw(st.sampled_from([0xFFFFFFF0, 0, 1, 2**31])).to_bytes(4, "little")
    elif kind == "count":
        at = data.find(b"PK\x05\x06")
        if at >= 0:
            data[at + 10 : at + 12] = draw(st.sampled_from([0, 1, 99, 65535])).to_bytes(2, "little")
    else:
        at = data.find(b"PK\x01\x02")
        if at >= 0:
            n = int.from_bytes(data[at + 28 : at + 30], "little")
            data[at + 46 : at + 46 + n] = draw(st.sampled_from([b"../" , b"\x00", b"\xff"])).ljust(n, b"x")[:n]
    return bytes(data)


@st.composite
def feature_files(draw, kind: str) -> dict[str, bytes]:
    """A mutated clip-feature file: `feats.npz` / `feats.npy` / `feats.safetensors` (labelled clips for finetune)
    or `batch.npy` / `batch.npz` (a batch for predict)."""
    s = seeds()
    src = {"npz": s.features_npz, "npy": s.features_npy, "safetensors": s.features_st, "batch_npy": s.batch_npy,
           "batch_npz": s.batch_npz}[kind]
    name = src.name
    blob = src.read_bytes()
    how = draw(st.sampled_from(["arrays", "arrays", "arrays", "container", "bytes"]))
    if how == "bytes":
        return {name: draw(mutated_bytes(blob))}
    if kind in ("npz", "batch_npz"):
        with np.load(src) as f:
            arrays = {k: f[k] for k in f.files}
    elif kind == "safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(src))
    else:
        arrays = {"x": np.load(src)}
    main = "clips" if kind == "batch_npz" else "features" if "features" in arrays else "x"
    if how == "arrays":
        part = draw(st.sampled_from([main, main, "labels", "extra", "rename"]))
        if part == main:
            arrays[main] = draw(mutated_array(arrays[main]))
        elif part == "labels" and "labels" in arrays:
            y = draw(mutated_clip_labels(arrays["labels"]))
            if y is None:
                del arrays["labels"]
            else:
                arrays["labels"] = y
        elif part == "extra":
            arrays["other"] = arrays[main]
        elif len(arrays) > 0:
            arrays = {f"{k}_renamed": v for k, v in arrays.items()}
    if kind in ("npy", "batch_npy"):
        out = _npy_bytes(next(iter(arrays.values())) if arrays else np.zeros(0))
        if how == "container":
            out = draw(npy_header_edit(out))
        return {name: out}
    if kind == "safetensors":
        out = _safetensors_bytes(arrays)
        return {name: draw(safetensors_file(out)) if how == "container" else out}
    out = _npz_bytes(arrays, compressed=draw(st.booleans()))
    if how == "container":
        out = draw(zip_edit(out))
        if draw(st.booleans()):  # an npy member with a lying header
            member = draw(npy_header_edit(_npy_bytes(arrays[main])))
            import zipfile

            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for k, v in arrays.items():
                    z.writestr(f"{k}.npy", member if k == main else _npy_bytes(v))
            out = buf.getvalue()
    return {name: out}


@st.composite
def csv_file(draw, blob: bytes) -> bytes:
    """A `video_path,label_index` CSV: rows with odd fields (NUL, quotes, non-integers), odd encodings, bytes."""
    kind = draw(st.sampled_from(["rows", "rows", "bytes"]))
    if kind == "bytes":
        return draw(mutated_bytes(blob))
    lines = blob.decode("utf-8").splitlines()
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    bad = draw(st.sampled_from([
        "videos/x.mp4", "videos/x.mp4,", ",3", "videos/x.mp4,1.5", "videos/x.mp4,-1", "videos/x.mp4,999999999999999999999",
        'videos/"x.mp4,1', '"videos/x.mp4\n",1', "a\x00b,1", "videos/x.mp4,1,2,3", "\xff\xfe,1", "videos/nowhere.mp4,0",
        "videos/x.mp4,\u0661", "x" * 200000 + ",1", "videos/x.mp4, 1 ", "videos/x.mp4,1" * 3,
    ]))
    lines.insert(i, bad) if draw(st.booleans()) else lines.__setitem__(i, bad) if lines else lines.append(bad)
    return "\n".join(lines).encode("utf-8", "surrogateescape")


@st.composite
def layout_files(draw) -> dict[str, bytes | None]:
    """The paper's layout (`layout/...`) and its features (`layout_feats.npz`), one part of it damaged.
    A value None deletes that file."""
    s = seeds()
    files: dict[str, bytes | None] = {f"layout/{k}": v for k, v in read_tree(s.layout).items()}
    files["layout_feats.npz"] = s.layout_features.read_bytes()
    target = draw(st.sampled_from(["scheme", "scheme", "labels", "csv", "csv", "features", "features", "delete"]))
    if target == "scheme":
        files["layout/group_scheme.json"] = draw(json_file(json.loads(files["layout/group_scheme.json"])))
    elif target == "labels":
        files["layout/A/labels.json"] = draw(json_file(json.loads(files["layout/A/labels.json"])))
    elif target == "csv":
        name = draw(st.sampled_from(sorted(k for k in files if k.endswith(".csv"))))
        files[name] = draw(csv_file(files[name]))
    elif target == "features":
        with np.load(s.layout_features) as f:
            arrays = {k: f[k] for k in f.files}
        part = draw(st.sampled_from(["features", "features", "paths", "keyed", "container"]))
        if part == "features":
            arrays["features"] = draw(mutated_array(arrays["features"]))
        elif part == "paths":
            arrays["paths"] = draw(st.sampled_from([arrays["paths"][:-1], arrays["paths"].astype(object), arrays["paths"][:, None],
                                                    np.arange(len(arrays["paths"])), np.array([b"\xff"] * len(arrays["paths"]))]))
        elif part == "keyed":  # the other layout: one array per video path
            first = draw(mutated_array(arrays["features"]))
            arrays = {p: (first[0] if first.ndim and len(first) else first) if i == 0 else v
                      for i, (p, v) in enumerate(zip(arrays["paths"].tolist(), arrays["features"]))}
        files["layout_feats.npz"] = _npz_bytes(arrays) if part != "container" else draw(zip_edit(_npz_bytes(arrays)))
    else:
        files[draw(st.sampled_from(sorted(files)))] = None
    return files


@st.composite
def config_json(draw, cfg: dict) -> bytes:
    """A BERT config.json with fields of the wrong type or size (or a mutated JSON text)."""
    if draw(st.integers(0, 2)) == 0:
        return draw(json_file(cfg))
    cfg = dict(cfg)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(cfg)))
        cfg[key] = draw(st.one_of(
            st.sampled_from([0, -1, 1, 3, 7, 10**9, 10**18, 2**63, 1.5, "8", None, True, [], {}, "relu", "bert", "gelu_fast",
                             float("nan"), float("inf"), 1e-30, -1e-12, "absolute", "relative_key"]),
            weird_scalars()))
    return dump_json(cfg)


@st.composite
def encoder_files(draw, kind: str | None = None) -> dict[str, bytes | None]:
    """A text-encoder folder `encoder/` (tiny BERT, or ONNX + tokenizer) with one file damaged or missing."""
    s = seeds()
    kind = kind or draw(st.sampled_from(["bert", "bert", "onnx"]))
    folder = s.bert if kind == "bert" else s.onnx_encoder
    files: dict[str, bytes | None] = {f"encoder/{k}": v for k, v in read_tree(folder).items()}
    target = draw(st.sampled_from(["config.json", "config.json", "tokenizer.json", "weights", "weights", "delete"]
                                  if kind == "bert" else ["tokenizer.json", "weights", "weights", "delete"]))
    if target == "config.json":
        files["encoder/config.json"] = draw(config_json(json.loads(files["encoder/config.json"])))
    elif target == "tokenizer.json":
        files["encoder/tokenizer.json"] = draw(json_file(json.loads(files["encoder/tokenizer.json"])))
    elif target == "weights" and kind == "bert":
        files["encoder/model.safetensors"] = draw(safetensors_file(files["encoder/model.safetensors"]))
    elif target == "weights":
        files["encoder/model.onnx"] = draw(onnx_files(folder / "model.onnx"))["model.onnx"]
    else:
        files[draw(st.sampled_from(sorted(files)))] = None
    return files


@st.composite
def backbone_weight_files(draw) -> dict[str, bytes]:
    """Backbone weights `backbone.safetensors` or `backbone.pt`, damaged: bytes, header, or what the state dict holds."""
    import torch

    s = seeds()
    if draw(st.booleans()):
        return {"backbone.safetensors": draw(safetensors_file(s.backbone_st.read_bytes()))}
    if draw(st.integers(0, 2)) == 0:
        return {"backbone.pt": draw(mutated_bytes(s.backbone_pt.read_bytes()))}
    state: Any = dict(torch.load(s.backbone_pt, weights_only=True))
    key = draw(st.sampled_from(sorted(state)))
    kind = draw(st.sampled_from(["tensor", "tensor", "value", "drop", "extra", "container"]))
    if kind == "tensor":
        state[key] = draw(_tensor_values())
    elif kind == "value":
        state[key] = draw(st.sampled_from([None, 3, "x", [torch.ones(1)], {"a": torch.ones(1)}, 1.5]))
    elif kind == "drop":
        del state[key]
    elif kind == "extra":
        state[draw(st.sampled_from(["extra", "", "conv", "conv.weight.x", 1]))] = torch.ones(2)
    else:
        state = draw(st.sampled_from([[state], {"state_dict": state}, torch.ones(3), None, {"self": None}]))
        if isinstance(state, dict) and "self" in state:
            state["self"] = state
    return {"backbone.pt": torch_bytes(state)}


# commands that take seconds when their input is fine (demo trains a head): in the matrix only, not per kind
SLOW_COMMANDS = {"demo"}


def write_case(case: CaseDir, files: dict[str, bytes | None]) -> Path:
    """Write one case's files (None: leave that file out) into a fresh case folder; returns the folder."""
    root = case.fresh()
    for name, data in files.items():
        if data is not None:
            case.write(name, data)
    return root


# --- which commands read which kind ----------------------------------------------------------------------
# kind -> {command name: argv for a case folder d}. Each command line is valid with the seed files in place of
# the fuzzed ones (test_fuzz_cli.py checks that), so a failure can only come from the damage.


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
        "split": _split(c, *key, d=d),
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
            "split": _split(s.checkpoint, *key, d=d),
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
    return {"finetune": _finetune(s.tuned_source, f, d, *extra), "finetune-shots": _finetune(s.tuned_source, f, d, *extra, "--shots", "1")}


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


@st.composite
def json_text_files(draw) -> dict[str, bytes]:
    """One of the JSON files a command reads (labels, groups, modifiers, clip labels), holding any JSON text:
    the seed edited, an arbitrary value, or arbitrary bytes that look like JSON."""
    name = draw(st.sampled_from(["labels.json", "labels_map.json", "groups.json", "modifiers.json", "clip_labels.json"]))
    seed = json.loads((seeds().root / name).read_bytes())
    text = draw(st.one_of(
        json_file(seed),
        json_values(max_leaves=20).map(dump_json),
        st.lists(st.sampled_from(list('{}[]",:0123456789-+.eE \\u"tfnrl') + ["null", "true", "1e999", "NaN"]),
                 max_size=40).map(lambda t: "".join(t).encode()),
        st.binary(max_size=40),
    ))
    return {name: text}


def json_text_commands(d: Path, name: str) -> dict[str, list]:
    return label_commands(d, name)


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
    "json": (json_text_files, lambda d, f: json_text_commands(d, next(iter(f)))),
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
        "head": [{"head.safetensors": p.read_bytes()} for p in (s.head, s.edited, s.text_head, s.tuned_source)],
        "history": [{"head.safetensors": p.read_bytes()} for p in (s.edited, s.tuned_source)],
        "checkpoint": [{"ckpt.pt": s.checkpoint.read_bytes()}],
        "onnx": [{"model.onnx": p.read_bytes()} for p in (s.onnx_flat, s.onnx_hier, s.onnx_foreign, s.onnx_softmax)],
        "labels": [{n: (s.root / n).read_bytes()} for n in LABEL_FILES],
        "json": [{n: (s.root / n).read_bytes()} for n in LABEL_FILES if n.endswith(".json")],
        "features": [{p.name: p.read_bytes()} for p in (s.features_npz, s.features_npy, s.features_st, s.batch_npy, s.batch_npz)],
        "layout": [{**tree(s.layout, "layout"), "layout_feats.npz": s.layout_features.read_bytes()}],
        "encoder": [tree(s.bert, "encoder"), tree(s.onnx_encoder, "encoder")],
        "backbone": [{p.name: p.read_bytes()} for p in (s.backbone_st, s.backbone_pt)],
    }[kind]
