"""A catsplit head as ONNX nodes, and back: the part of the graph after the backbone's features.

Flat linear head:   logits = Gemm(features, W, b)                                  # one node
Text head:          logits = Gemm(normalize(features), scale * normalize(W), b)
Hierarchical head:  p_0 = Softmax(Gemm_0(features))                               # base table
                    p_t = Softmax(Gemm_t(features)) * p_parent[:, [gate]]       # each sub-table (Gather)
                    out = Concat(p_t[:, non-gate columns] for every table)       # Head.labels order

The tensors and the head's description are stored so that `head_from_model` rebuilds the Head
(tables, labels, groups, history; float32) without the backbone: that is how `edit_onnx` edits a
model catsplit exported (spec/onnx-contract.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catsplit.checks import check_label_characters
from catsplit.errors import CatsplitError
from catsplit.io.keys import KEY_FORMAT, KEY_HEAD, KEY_HISTORY, KEY_LABELS, KEY_OUTPUT, ONNX_FORMAT_VERSION
from catsplit.io.onnx_model import initializer_array
from catsplit.io.readers import parse_json
from catsplit.optional import require_onnx

# The metadata keys (catsplit/io/keys.py): KEY_LABELS holds the output columns in order, KEY_OUTPUT
# what they hold (one of OUTPUT_KINDS), KEY_HISTORY the edit records, KEY_HEAD the head's description.
OUTPUT_KINDS = ("logits", "probabilities", "log_probabilities")
PREFIX = "catsplit_head/"  # names of every node and initializer this module adds
EPS = 1e-12  # torch.nn.functional.normalize's eps


@dataclass
class HeadGraph:
    """Nodes and initializers that compute a head's output from a features tensor."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    output_kind: str = "logits"
    description: dict = field(default_factory=dict)  # stored under KEY_HEAD


def head_graph(head: Any, features: str, output: str, *, opset: int, output_kind: str | None = None) -> HeadGraph:
    """Build the nodes computing `output` [N, len(head.labels)] from `features` [N, D].

    Args:
        head: a catsplit.Head.
        features: name of the float32 features tensor.
        output: name of the tensor to produce.
        opset: the model's default-domain opset (ReduceL2 takes axes as an input from 18 on).
        output_kind: for hierarchical heads, "probabilities" (default) or "log_probabilities";
            flat heads always give "logits".
    Returns:
        a HeadGraph (nothing is added to any model yet).
    """
    import torch

    onnx = require_onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    g = HeadGraph()
    if head.is_hierarchical:
        output_kind = output_kind or "probabilities"
        if output_kind not in ("probabilities", "log_probabilities"):
            raise CatsplitError(f"a hierarchical head outputs probabilities or log_probabilities, not {output_kind!r}")
    else:
        output_kind = "logits"
    g.output_kind = output_kind

    def name(s: str) -> str:
        return PREFIX + s

    def add(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        g.nodes.append(helper.make_node(op, inputs, [out], name=name(f"{op}_{len(g.nodes)}"), **attrs))
        return out

    def const(key: str, array: np.ndarray) -> str:
        g.initializers.append(numpy_helper.from_array(array, name(key)))
        return name(key)

    x = features
    if head.kind == "text":  # features / max(||features||, eps), as torch.nn.functional.normalize
        if opset >= 18:
            norm = add("ReduceL2", [x, const("axes", np.array([1], np.int64))], name("norm"), keepdims=1)
        else:
            norm = add("ReduceL2", [x], name("norm"), axes=[1], keepdims=1)
        if opset >= 8:
            norm = add("Max", [norm, const("eps", np.array(EPS, np.float32))], name("norm_eps"))
        else:  # Max broadcasts only from opset 8 on; Clip takes its minimum as an attribute before 11
            norm = add("Clip", [norm], name("norm_eps"), min=EPS)
        x = add("Div", [features, norm], name("features_normalised"))

    tables = []
    probs: dict[str, tuple[str, int]] = {}  # label -> (tensor of its table's probabilities, column)
    gates = set(head.gates)
    pieces = []
    for ti, t in enumerate(head.tables):
        w = t.weight.detach().to(torch.float32)
        if head.kind == "text":  # rows are normalised again when the head is rebuilt: storing them scaled is exact
            w = torch.nn.functional.normalize(w, dim=-1) * (head.scale if head.scale is not None else 1.0)
        stored = {"labels": list(t.labels), "parent": t.parent, "weight": const(f"t{ti}/weight", w.numpy())}
        inputs = [x, stored["weight"]]
        if t.bias is not None:
            stored["bias"] = const(f"t{ti}/bias", t.bias.detach().to(torch.float32).numpy())
            inputs.append(stored["bias"])
        elif opset < 11:  # Gemm's bias input is optional only from opset 11 on
            inputs.append(const(f"t{ti}/zero_bias", np.zeros(len(t.labels), np.float32)))
        tables.append(stored)
        if not head.is_hierarchical:
            add("Gemm", inputs, output, transB=1)
            break
        z = add("Gemm", inputs, name(f"t{ti}/logits"), transB=1)  # [N, C_t]
        p = add("Softmax", [z], name(f"t{ti}/softmax"), axis=1)
        if t.parent is not None:  # p(sub) = p(gate) * softmax(sub logits)
            src, col = probs[t.parent]
            # Gather of one index keeps the axis: [N, 1]. Unlike a 4-input Slice (opset >= 10) it works at every opset.
            gate = add("Gather", [src, const(f"t{ti}/gate_index", np.array([col], np.int64))], name(f"t{ti}/gate"), axis=1)
            p = add("Mul", [p, gate], name(f"t{ti}/probabilities"))
        for j, lab in enumerate(t.labels):
            probs[lab] = (p, j)
        keep = [j for j, lab in enumerate(t.labels) if lab not in gates]
        if len(keep) == len(t.labels):
            pieces.append(p)
        elif keep:
            pieces.append(add("Gather", [p, const(f"t{ti}/keep", np.array(keep, np.int64))], name(f"t{ti}/kept"), axis=1))
    if head.is_hierarchical:
        if output_kind == "probabilities":
            add("Concat", pieces, output, axis=1)
        else:
            add("Log", [add("Concat", pieces, name("probabilities"), axis=1)], output)
    g.description = {
        "features": features,
        "output": output,
        "kind": head.kind,
        "scale": head.scale,
        "templates": list(head.templates) if head.templates is not None else None,
        "groups": head.groups,
        "tables": tables,
    }
    return g


def head_metadata(head: Any, graph: HeadGraph) -> dict[str, str]:
    """The metadata_props that describe the head inside a model."""
    return {
        KEY_FORMAT: ONNX_FORMAT_VERSION,
        KEY_LABELS: json.dumps(list(head.labels), ensure_ascii=False),
        KEY_OUTPUT: graph.output_kind,
        KEY_HISTORY: json.dumps(list(head.history), ensure_ascii=False),
        KEY_HEAD: json.dumps(graph.description, ensure_ascii=False),
    }


def set_metadata(model: Any, props: dict[str, str]) -> None:
    """Replace the given keys of `model.metadata_props`, keeping every other entry."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for key, value in kept + sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def output_labels(meta: dict[str, str], where: str) -> list[str]:
    """The labels of the output columns, from a model's metadata."""
    if KEY_LABELS not in meta:
        raise CatsplitError(f"{where} has no {KEY_LABELS!r} metadata; export it with catsplit.export.to_onnx or edit_onnx")
    labels = parse_json(meta[KEY_LABELS], f"{where}: metadata {KEY_LABELS!r}")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise CatsplitError(f"{where}: metadata {KEY_LABELS!r} must be a JSON list of strings")
    check_label_characters(labels, f"{where}: metadata {KEY_LABELS!r}")  # one label per line in Triton's labels.txt
    return labels


def head_description(model: Any, where: str) -> dict:
    """The head's description (KEY_HEAD, as `head_graph` writes it), checked against the graph it describes.

    Every field read is of the right type, the features tensor is a graph input or a node's output, the head's
    nodes (named with PREFIX) are there and produce the described output, and every table's tensors are
    initializers of the graph. A model whose nodes or tensors were renamed after export is refused here,
    naming what is missing, instead of failing half-way through an edit.
    """
    meta = read_metadata(model)
    if KEY_HEAD not in meta:
        raise CatsplitError(f"{where} has no {KEY_HEAD!r} metadata; export it with catsplit.export.to_onnx")
    desc = parse_json(meta[KEY_HEAD], f"{where}: metadata {KEY_HEAD!r}")

    def bad(problem: str) -> CatsplitError:
        return CatsplitError(f"{where}: damaged {KEY_HEAD!r} metadata: {problem}; export the model again")

    if not isinstance(desc, dict):
        raise bad(f"a JSON {type(desc).__name__}, not an object")
    for key in ("features", "output"):
        if not isinstance(desc.get(key), str) or not desc[key]:
            raise bad(f"{key!r} must name a tensor, got {desc.get(key)!r}")
    tables = desc.get("tables")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise bad("'tables' must be a non-empty list of objects")
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    for i, t in enumerate(tables):
        for key in ("weight", "bias"):
            if key == "bias" and t.get("bias") is None:
                continue
            if not isinstance(t.get(key), str) or t[key] not in inits:
                raise bad(f"table {i}'s {key} {t.get(key)!r} is not a tensor of the graph (renamed or removed?)")
        if not isinstance(t.get("labels"), list) or not (t.get("parent") is None or isinstance(t["parent"], str)):
            raise bad(f"table {i} needs 'labels' (a list) and 'parent' (a label or null)")
    produced = {o for n in graph.node for o in n.output} | {v.name for v in graph.input}
    if desc["features"] not in produced:
        raise bad(f"its features tensor {desc['features']!r} is neither a graph input nor a node's output")
    own = [n for n in graph.node if n.name.startswith(PREFIX)]
    if not any(desc["output"] in n.output for n in own):
        raise bad(f"no node named {PREFIX}... computes its output {desc['output']!r} (were the head's nodes renamed?)")
    return desc


def head_from_model(model: Any, where: str) -> Any:
    """Rebuild the catsplit Head stored in a model by `head_graph` (float32; edits cannot be undone from it)."""
    from catsplit.head import Head, make_table

    desc = head_description(model, where)
    meta = read_metadata(model)
    try:
        history = parse_json(meta.get(KEY_HISTORY, "[]"), f"{where}: metadata {KEY_HISTORY!r}")
        inits = {t.name: t for t in model.graph.initializer}

        def tensor(key: str | None) -> np.ndarray | None:
            return None if key is None else initializer_array(inits[key], where)

        tables = tuple(
            make_table(tensor(t["weight"]), tensor(t.get("bias")), t["labels"], t["parent"]) for t in desc["tables"]
        )
        return Head(
            weight=None, tables=tables, groups=desc.get("groups"), history=history, kind=desc["kind"],
            scale=desc.get("scale"), templates=desc.get("templates"),
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{where}: damaged {KEY_HEAD!r} metadata ({type(exc).__name__}: {exc})") from None
