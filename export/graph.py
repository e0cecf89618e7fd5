"""A catsplit head as ONNX nodes, and back: the part of the graph after the backbone's features.

Flat linear head:   logits = Gemm(features, W, b)                                  # one node
Text head:          logits = Gemm(normalize(features), scale * normalize(W), b)
Hierarchical head:  z_0   = Gemm(features, W_0, b_0)               # float32: the flat head's own logits node
                    l_t   = LogSoftmax(Gemm(double(features), double(W_t), double(b_t)))    # float64, every table
                    l_t  += Gather(l_parent, [gate])                                     # each sub-table
                    logp  = Concat(l_t[:, non-gate columns] for every table)              # table order
                    logp  = Gather(logp, order)   # only where Head.labels leave table order (order="keep" splits)
                    out   = float(Exp(logp)) or float(logp)                # probabilities / log-probabilities
                    top1  = ArgMax(z_0) unless that row is a gate, else ArgMax(logp)      # int64, the exact rule

In float64 the table logits cannot overflow for finite float32 features and weights, so no finite input
gives NaN; `top1` decides from z_0, the bits the unedited model's logits have (spec/onnx-contract.md).
The tensors and the head's description are stored so that `head_from_model` rebuilds the Head
(tables, labels, groups, history; float32) without the backbone: that is how `edit_onnx` edits a
model catsplit exported (spec/onnx-contract.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

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
TOP1 = "top1"  # the exact rule's top-1 output of hierarchical heads (another name if the graph has this one)


@dataclass
class HeadGraph:
    """Nodes and initializers that compute a head's output from a features tensor."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    output_kind: str = "logits"
    top1: str | None = None  # the int64 [N] top-1 output of a hierarchical head
    description: dict = field(default_factory=dict)  # stored under KEY_HEAD


def head_graph(
    head: Any,
    features: str,
    output: str,
    *,
    opset: int,
    output_kind: str | None = None,
    base_logits: str | None = None,
    base_activation: tuple[str, int] | None = None,
    top1: str = TOP1,
    stored: dict[int, np.ndarray] | None = None,
) -> HeadGraph:
    """Build the nodes computing `output` [N, len(head.labels)] from `features` [N, D].

    Args:
        head: a catsplit.Head.
        features: name of the float32 features tensor.
        output: name of the tensor to produce.
        opset: the model's default-domain opset (ReduceL2 takes axes as an input from 18 on).
        output_kind: for hierarchical heads, "probabilities" (default) or "log_probabilities";
            flat heads always give "logits".
        base_logits: hierarchical heads: a float32 tensor [N, C_0] already in the graph that holds the
            base table's logits as the unedited model computes them (split_onnx keeps a foreign
            classifier for it); None adds the Gemm a flat export of the base table has.
        base_activation: ("Softmax" | "LogSoftmax", axis) when the unedited model's output is that op of
            its logits: the top-1 is the argmax of the same op's output, which ties where its rounding ties.
        top1: hierarchical heads: name of the int64 [N] output holding the exact rule's top-1.
        stored: table index -> float32 rows [C_t, D] to store as they are (the rows a model already
            holds: a text head's scaled rows are not rebuilt bit for bit from the Head).
    Returns:
        a HeadGraph (nothing is added to any model yet).
    """
    if head.is_hierarchical:
        output_kind = output_kind or "probabilities"
        if output_kind not in ("probabilities", "log_probabilities"):
            raise CatsplitError(f"a hierarchical head outputs probabilities or log_probabilities, not {output_kind!r}")
    else:
        output_kind = "logits"
    g = HeadGraph(output_kind=output_kind)
    b = _Nodes(g, opset)
    x = b.normalised(features, double=False) if head.kind == "text" else features
    tables, params = _tables(head, b, stored or {})
    g.description = {
        "features": features,
        "output": output,
        "kind": head.kind,
        "scale": head.scale,
        "templates": list(head.templates) if head.templates is not None else None,
        "groups": head.groups,
        "tables": tables,
    }
    if head.output_order is not None:  # absent where the labels follow the tables
        g.description["order"] = list(head.output_order)
    if not head.is_hierarchical:
        b.add("Gemm", [x] + params[0], output, transB=1)
        return g

    logits0 = base_logits or b.add("Gemm", [x] + params[0], b.name("t0/logits"), transB=1)  # [N, C_0] float32
    z0 = logits0  # what the unedited model's top-1 is the argmax of: its logits, or the Softmax it ends in
    if base_activation is not None:
        z0 = b.add(base_activation[0], [logits0], b.name("base_scores"), axis=int(base_activation[1]))
    logp = _log_probabilities(head, b, features, params)  # [N, C_out] float64
    TensorProto = require_onnx().TensorProto
    if output_kind == "probabilities":
        b.add("Cast", [b.add("Exp", [logp], b.name("probabilities64"))], output, to=TensorProto.FLOAT)
    else:
        b.add("Cast", [logp], output, to=TensorProto.FLOAT)

    # the exact rule: the base top-1 row r*, unless it is a gate; then the argmax of the log-probabilities
    base, gates = head.tables[0], set(head.gates)
    out_index = {lab: i for i, lab in enumerate(head.labels)}
    row = b.first_max(z0, "base", len(base.labels), nan_aware=True)  # [N] base row
    remap = b.const("base_to_output", np.array([out_index.get(lab, 0) for lab in base.labels], np.int64))  # [C_0]
    is_gate = b.const("base_is_gate", np.array([lab in gates for lab in base.labels], np.int64))  # [C_0] 0/1
    kept = b.add("Gather", [remap, row], b.name("base_top1_output"), axis=0)
    gated = b.add("Gather", [is_gate, row], b.name("base_top1_is_gate"), axis=0)
    fallback = b.first_max(logp, "log_probabilities", len(head.labels), nan_aware=False)  # float64: never NaN
    b.select(gated, fallback, kept, top1)
    g.top1 = top1
    g.description.update(base_logits=logits0, base_activation=list(base_activation) if base_activation else None, top1=top1)
    return g


def _tables(head: Any, b: _Nodes, stored: dict[int, np.ndarray]) -> tuple[list[dict], list[list[str]]]:
    """Every table's float32 weight (and bias) as initializers -> (their description, their Gemm inputs)."""
    import torch

    tables, params = [], []
    for ti, t in enumerate(head.tables):
        if ti in stored:
            w = np.ascontiguousarray(stored[ti], dtype=np.float32)
        else:
            wt = t.weight.detach().to(torch.float32)
            if head.kind == "text":  # rows are normalised again when the head is rebuilt: storing them scaled is exact
                wt = torch.nn.functional.normalize(wt, dim=-1) * (head.scale if head.scale is not None else 1.0)
            w = wt.numpy()
        entry = {"labels": list(t.labels), "parent": t.parent, "weight": b.const(f"t{ti}/weight", w)}
        inputs = [entry["weight"]]
        if t.bias is not None:
            entry["bias"] = b.const(f"t{ti}/bias", t.bias.detach().to(torch.float32).numpy())
            inputs.append(entry["bias"])
        elif b.opset < 11:  # Gemm's bias input is optional only from opset 11 on
            inputs.append(b.const(f"t{ti}/zero_bias", np.zeros(len(t.labels), np.float32)))
        tables.append(entry)
        params.append(inputs)
    return tables, params


def _log_probabilities(head: Any, b: _Nodes, features: str, params: list[list[str]]) -> str:
    """log p over head.labels -> float64 [N, C_out]: every table's Gemm in float64, LogSoftmax, plus its gate's."""
    double = require_onnx().TensorProto.DOUBLE
    x64 = b.add("Cast", [features], b.name("features64"), to=double)
    if head.kind == "text":
        x64 = b.normalised(x64, double=True)
    logp: dict[str, tuple[str, int]] = {}  # label -> (its table's log-probabilities, column)
    gates = set(head.gates)
    pieces = []
    for ti, (t, inputs) in enumerate(zip(head.tables, params)):
        cast = [b.add("Cast", [i], b.name(f"t{ti}/{kind}64"), to=double) for kind, i in zip(("weight", "bias"), inputs)]
        z = b.add("Gemm", [x64] + cast, b.name(f"t{ti}/logits64"), transB=1)
        lp = b.add("LogSoftmax", [z], b.name(f"t{ti}/log_softmax"), axis=1)
        if t.parent is not None:  # log p(sub) = log p(gate) + log softmax(sub logits)
            src, col = logp[t.parent]
            # Gather of one index keeps the axis: [N, 1]. Unlike a 4-input Slice (opset >= 10) it works at every opset.
            index = b.const(f"t{ti}/gate_index", np.array([col], np.int64))
            gate = b.add("Gather", [src, index], b.name(f"t{ti}/gate"), axis=1)
            lp = b.add("Add", [lp, gate], b.name(f"t{ti}/log_probabilities"))
        for j, lab in enumerate(t.labels):
            logp[lab] = (lp, j)
        keep = [j for j, lab in enumerate(t.labels) if lab not in gates]
        if len(keep) == len(t.labels):
            pieces.append(lp)
        elif keep:
            index = b.const(f"t{ti}/keep", np.array(keep, np.int64))
            pieces.append(b.add("Gather", [lp, index], b.name(f"t{ti}/kept"), axis=1))
    if head.output_order is None:
        return b.add("Concat", pieces, b.name("log_probabilities64"), axis=1)
    # the columns in table order, then in Head.labels order
    by_tables = [lab for t in head.tables for lab in t.labels if lab not in gates]
    column = {lab: j for j, lab in enumerate(by_tables)}
    order = b.const("order", np.array([column[lab] for lab in head.labels], np.int64))
    return b.add("Gather", [b.add("Concat", pieces, b.name("by_tables"), axis=1), order], b.name("log_probabilities64"), axis=1)


class _Nodes:
    """Adds nodes and initializers to a HeadGraph, every name under PREFIX, at one opset."""

    def __init__(self, g: HeadGraph, opset: int) -> None:
        self.g, self.opset = g, opset
        self.onnx = require_onnx()

    def name(self, s: str) -> str:
        return PREFIX + s

    def add(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        node = self.onnx.helper.make_node(op, inputs, [out], name=self.name(f"{op}_{len(self.g.nodes)}"), **attrs)
        self.g.nodes.append(node)
        return out

    def const(self, key: str, array: np.ndarray) -> str:
        self.g.initializers.append(self.onnx.numpy_helper.from_array(array, self.name(key)))
        return self.name(key)

    def reduce(self, op: str, x: str, out: str, *, keepdims: int, axes: str) -> str:
        """`op` over axis 1 (the axes are an input from opset 18 on, `axes` names that initializer)."""
        if self.opset >= 18:
            return self.add(op, [x, self.const(axes, np.array([1], np.int64))], self.name(out), keepdims=keepdims)
        return self.add(op, [x], self.name(out), axes=[1], keepdims=keepdims)

    def normalised(self, x: str, double: bool) -> str:
        """x / max(||x||, eps), as torch.nn.functional.normalize; `double`: on float64 x."""
        sfx = "64" if double else ""
        norm = self.reduce("ReduceL2", x, "norm" + sfx, keepdims=1, axes="axes" + sfx)
        if self.opset >= 8:
            eps = self.const("eps" + sfx, np.array(EPS, np.float64 if double else np.float32))
            norm = self.add("Max", [norm, eps], self.name("norm_eps" + sfx))
        elif double:  # Max broadcasts from opset 8 on, and onnxruntime has no float64 Clip before 12: eps + relu(n - eps)
            eps = self.const("eps64", np.array(EPS, np.float64))
            excess = self.add("Relu", [self.add("Sub", [norm, eps], self.name("norm_sub64"))], self.name("norm_relu64"))
            norm = self.add("Add", [excess, eps], self.name("norm_eps64"))
        else:  # Clip takes its minimum as an attribute before 11
            norm = self.add("Clip", [norm], self.name("norm_eps"), min=EPS)
        return self.add("Div", [x, norm], self.name("features_normalised" + sfx))

    def first_true(self, mask: str, key: str, width: int) -> str:
        """The first column where the bool [N, width] `mask` holds (0 where none does) -> int64 [N]: ArgMax of
        `mask * (width - j)`, whose largest value is unique, so no provider's tie rule is involved."""
        weights = self.const(f"{key}/first_weights", np.arange(width, 0, -1, dtype=np.float32))  # [width]: width .. 1
        as_float = self.add("Cast", [mask], self.name(f"{key}/mask_float"), to=self.onnx.TensorProto.FLOAT)
        scored = self.add("Mul", [as_float, weights], self.name(f"{key}/scored"))
        return self.add("ArgMax", [scored], self.name(f"{key}/first"), axis=1, keepdims=0)

    def first_max(self, z: str, key: str, width: int, nan_aware: bool) -> str:
        """The first argmax of each row of z [N, width] -> int64 [N], as numpy and torch take it: ties to the
        earlier column and, with `nan_aware`, NaN counting as the largest value (ArgMax itself skips NaN)."""
        top = self.reduce("ReduceMax", z, f"{key}/max", keepdims=1, axes=f"{key}/max_axes")  # [N, 1]
        is_max = self.add("Not", [self.add("Less", [z, top], self.name(f"{key}/below_max"))], self.name(f"{key}/is_max"))
        first = self.first_true(is_max, key, width)
        if not nan_aware:
            return first
        # NaN is neither below +inf nor above -inf (IsNaN needs opset 9)
        inf, minus_inf = (self.const(f"{key}/{k}", np.array(v, np.float32)) for k, v in (("inf", np.inf), ("minus_inf", -np.inf)))
        below = self.add("Less", [z, inf], self.name(f"{key}/below_inf"))
        above = self.add("Greater", [z, minus_inf], self.name(f"{key}/above_minus_inf"))
        ordered = self.add("Or", [below, above], self.name(f"{key}/ordered"))
        nan = self.add("Not", [ordered], self.name(f"{key}/nan"))  # [N, width] bool
        as_float = self.add("Cast", [nan], self.name(f"{key}/nan_float"), to=self.onnx.TensorProto.FLOAT)
        has_nan = self.reduce("ReduceMax", as_float, f"{key}/has_nan_float", keepdims=0, axes=f"{key}/has_nan_axes")
        has_nan = self.add("Cast", [has_nan], self.name(f"{key}/has_nan"), to=self.onnx.TensorProto.INT64)  # [N] 0/1
        return self.select(has_nan, self.first_true(nan, f"{key}/nan", width), first, self.name(f"{key}/top1"))

    def select(self, flag: str, if_set: str, otherwise: str, out: str) -> str:
        """`otherwise + flag * (if_set - otherwise)` on int64 [N], `flag` 0/1: a Where every opset has (Where needs
        opset 9, and Less takes integers only from 9 on)."""
        diff = self.add("Sub", [if_set, otherwise], self.name(f"{out}/diff"))
        return self.add("Add", [otherwise, self.add("Mul", [flag, diff], self.name(f"{out}/masked"))], out)


def unused_name(graph: Any, wanted: str, also: Iterable[str] = ()) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`, ... : the first that names no tensor of `graph` (nor one of `also`)."""
    taken = set(also) | {v.name for v in list(graph.input) + list(graph.output) + list(graph.initializer)}
    taken |= {o for n in graph.node for o in n.output}
    candidate, i = wanted, 1
    while candidate in taken:
        i += 1
        candidate = f"{wanted}_{i}"
    return candidate


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
            scale=desc.get("scale"), templates=desc.get("templates"), output_order=desc.get("order"),
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{where}: damaged {KEY_HEAD!r} metadata ({type(exc).__name__}: {exc})") from None


def table_rows(model: Any, where: str) -> dict[int, np.ndarray]:
    """Table index -> the float32 rows [C_t, D] a model written by `head_graph` stores (what its Gemms read)."""
    numpy_helper = require_onnx("reading the head of an ONNX model").numpy_helper
    desc = parse_json(read_metadata(model)[KEY_HEAD], f"{where}: metadata {KEY_HEAD!r}")
    inits = {t.name: t for t in model.graph.initializer}
    try:
        return {ti: numpy_helper.to_array(inits[t["weight"]]).astype(np.float32) for ti, t in enumerate(desc["tables"])}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # head_from_model has checked them already
        raise CatsplitError(f"{where}: damaged {KEY_HEAD!r} metadata ({type(exc).__name__}: {exc})") from None
