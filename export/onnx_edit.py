"""Split a class inside an existing ONNX model: no torch model, no backbone source.

The final classifier is found in the graph (a Gemm, or MatMul [+ Add], whose weight is an
initializer with one row or column per label), read as a catsplit Head, split, and replaced by
the nodes of the edited head (export/graph.py). A model that catsplit wrote already describes its
head in its metadata, so it can be edited again, any number of times. A model without labels in
its metadata takes them from the transformers `config.json` beside it (an Optimum-style export
folder), and the edited labels are written into a `config.json` beside the output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from catsplit.checks import check_labels
from catsplit.errors import CatsplitError
from catsplit.export.exporter import MAX_BYTES
from catsplit.io.atomic import atomic_path, check_destination, resolved
from catsplit.export.graph import (
    PREFIX,
    TOP1,
    head_description,
    head_from_model,
    head_graph,
    head_metadata,
    read_metadata,
    set_metadata,
    table_rows,
    unused_name,
)
from catsplit.export.huggingface import CONFIG_NAME, config_labels, config_path, read_config, write_config
from catsplit.formats.huggingface import with_labels
from catsplit.io.keys import KEY_HEAD, KEY_OUTPUT, ONNX_LABEL_KEYS
from catsplit.io.onnx_model import initializer_array
from catsplit.io.onnx_model import load_model as read_model
from catsplit.io.readers import parse_json, read_labels
from catsplit.optional import require_onnx


@dataclass
class Classifier:
    """The final linear layer found in a graph."""

    nodes: list  # the Gemm, or the MatMul and its Add
    features: str  # input tensor [N, D]
    output: str  # tensor the layer produces (logits)
    weight: np.ndarray  # [C, D] float32
    bias: np.ndarray | None  # [C] float32
    initializers: list = field(default_factory=list)  # names of the layer's own tensors


def split_onnx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    text_encoder: Any,
    coarse: str,
    subs: Sequence[str],
    *,
    labels: Sequence[str] | str | os.PathLike | None = None,
    node: str | None = None,
    overwrite: bool = False,
    **split_options: Any,
) -> Path:
    """Split `coarse` into `subs` inside the ONNX model `src`, writing `dst`.

    Args:
        src: an .onnx file: exported by catsplit, or any model ending in a linear classifier; or the
            folder holding it as `model.onnx` (an Optimum-style export folder).
        dst: the .onnx file to write (atomically; an existing file only with overwrite=True), or a
            folder (existing, or given with a trailing "/") to write it into under src's file name.
            When a `config.json` lies beside `src`, the edited one is written beside `dst` (its
            id2label / label2id / num_labels follow the new labels).
        text_encoder: as for catsplit.split (None for method="coarse").
        coarse: the label to split.
        subs: the new labels.
        labels: the classifier's labels (a list or a labels file) when the model does not carry
            them in its metadata (`catsplit.labels` or `labels`, a JSON list) or in the `id2label`
            of a `config.json` beside it.
        node: the name of the classifier node, when more than one candidate matches.
        overwrite: replace an existing `dst` (and the config.json beside it).
        **split_options: method=, mode=, seed=, groups=, modifiers=, ... as for catsplit.split.
    Returns:
        the path written. Its metadata holds the new labels and the edit history.
    """
    from catsplit.edit import split  # imports torch: `import catsplit.export` stays light

    onnx = require_onnx("editing ONNX models")
    src = _model_file(Path(src))
    dst, new_folder = _destination(dst, src)
    if resolved(dst) == resolved(src) and not overwrite:
        raise CatsplitError(f"dst {dst} is the source model; write elsewhere or pass overwrite=True")
    if not new_folder:
        check_destination(dst, overwrite=overwrite, example="model.onnx")
    config = read_config(src)
    config_dst = _config_destination(src, dst, overwrite) if config is not None else None
    model = load_model(src)
    graph = model.graph
    meta = read_metadata(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    classifier: list = []  # a foreign classifier's nodes, kept when they compute the base table's logits
    if KEY_HEAD in meta:  # written by catsplit: the head's own nodes are replaced
        if labels is not None:
            raise CatsplitError(f"{src} carries its labels (catsplit metadata); drop labels=")
        head = head_from_model(model, str(src))  # the description checked against the graph (head_description)
        old = [n for n in graph.node if n.name.startswith(PREFIX)]
        desc = head_description(model, str(src))
        features, output = desc["features"], desc["output"]
        dropped_inits = {t.name for t in graph.initializer if t.name.startswith(PREFIX)}
        rows = table_rows(model, str(src))
        top1 = _json_field(meta, "top1", None) or unused_name(graph, TOP1)
        base = _json_field(meta, "base_logits", None)
        classifier = _producers(graph, base, features) if base and _foreign(graph, base) else []
        activation = _activation(meta)
    else:
        names = _labels(src, meta, labels, config)
        found = find_classifier(model, len(names), node=node, where=str(src))
        from catsplit.head import Head

        head = Head(weight=found.weight, bias=found.bias, labels=names)
        old, features, output, dropped_inits = found.nodes, found.features, found.output, set(found.initializers)
        rows, top1, base, activation = {}, unused_name(graph, TOP1), None, None
    post = _post_softmax(model, output, str(src))  # a Softmax / LogSoftmax after the head, or None
    post_kind = {None: None, "Softmax": "probabilities", "LogSoftmax": "log_probabilities"}[post and post.op_type]
    if post is not None:  # the model's top-1 is the argmax of that op's output: the edited one reads the same op
        activation = (post.op_type, next((a.i for a in post.attribute if a.name == "axis"), -1))

    edited = split(head, text_encoder, coarse, subs, **split_options)
    # the tables the edit kept keep the rows the model holds, bit for bit (a text head's scaled rows included)
    stored = {ti: rows[ti] for ti, t in enumerate(head.tables) if ti in rows and edited.tables[ti] is t}
    if not edited.is_hierarchical:  # logits, into whatever followed the classifier before
        new = head_graph(edited, features, output, opset=opset, stored=stored)
        model_kind = post_kind or "logits"
    else:
        if KEY_HEAD not in meta:  # the classifier stays: its output is the base table's logits, the bits it had
            classifier, old, dropped_inits = list(found.nodes), [], set()
            base = unused_name(graph, PREFIX + "base_logits")
            _rename_output(graph, output, base)
        elif not classifier or edited.tables[0] is not head.tables[0]:
            base = None  # the head's own base Gemm (a flat edit of a base label gives the base table new rows)
        if post is not None:  # the gated head computes (log-)probabilities itself: the Softmax goes, its name stays
            old, output = list(old) + [post], post.output[0]
            model_kind = post_kind
        else:  # keep probabilities where there were, else log-probabilities: softmax(output) stays right
            model_kind = "probabilities" if meta.get(KEY_OUTPUT) == "probabilities" else "log_probabilities"
        new = head_graph(
            edited, features, output, opset=opset, output_kind=model_kind, base_logits=base, base_activation=activation,
            top1=top1, stored=stored,
        )
    if classifier and base is None:  # a kept foreign classifier nobody reads any more
        inits = _names(graph.initializer)
        old, dropped_inits = list(old) + classifier, dropped_inits | {i for n in classifier for i in n.input if i in inits}
    _replace_nodes(model, old, new.nodes, dropped_inits, after=classifier[-1] if classifier and not old else None)
    graph.initializer.extend(new.initializers)
    if model.ir_version < 4:  # before IR 4 every initializer must also be listed as a graph input
        graph.input.extend(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in new.initializers
        )
    _fix_output_shapes(model, output, edited.num_classes)
    _set_top1_output(model, output, new.top1)
    props = head_metadata(edited, new)
    props[KEY_OUTPUT] = model_kind
    set_metadata(model, props)

    if model.ByteSize() > MAX_BYTES:
        raise CatsplitError(f"the edited model is {model.ByteSize() / 2**30:.1f} GiB; a single ONNX file must stay below 2 GiB")
    data = model.SerializeToString()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:  # ValueError: a bad type in the source
        raise CatsplitError(f"the edited model fails onnx.checker: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    if new_folder:
        dst.parent.mkdir(exist_ok=True)
    with atomic_path(dst, overwrite=overwrite, example="model.onnx") as tmp:
        tmp.write_bytes(data)
    if config_dst is not None:  # after the model: a config.json never describes a model that is not there
        write_config(config_dst, with_labels(config, edited.labels), overwrite=overwrite)
    return dst


def _model_file(src: Path) -> Path:
    """The model file: `src`, or `src/model.onnx` for a folder (an Optimum-style export)."""
    if not src.is_dir():
        return src
    if (src / "model.onnx").is_file():
        return src / "model.onnx"
    found = sorted(p.name for p in src.glob("*.onnx"))
    raise CatsplitError(f"folder {src} holds no model.onnx (ONNX files: {found or 'none'}); give the model file itself")


def _destination(dst: str | os.PathLike, src: Path) -> tuple[Path, bool]:
    """The output file, and whether its folder is still to be made (`dst` a missing folder written with a trailing "/")."""
    path = Path(dst)
    if path.is_dir():
        return path / src.name, False
    if str(dst).endswith(("/", os.sep)):
        if not path.parent.is_dir():
            raise CatsplitError(f"folder {path.parent} does not exist; create it first")
        return path / src.name, True
    return path, False


def _config_destination(src: Path, dst: Path, overwrite: bool) -> Path:
    """Where the edited config.json goes (beside `dst`), checked before any work."""
    target = config_path(dst)
    if target.resolve() == config_path(src).resolve() and dst.resolve() != src.resolve():
        raise CatsplitError(
            f"{dst} would share {target} with {src}, which it describes; write the edited model to another folder "
            f"(e.g. {dst.parent / 'edited' / dst.name}), where the edited {CONFIG_NAME} goes beside it"
        )
    if target.is_dir():
        raise CatsplitError(f"{target} is a folder; the edited model's {CONFIG_NAME} goes there")
    if target.exists() and not overwrite:
        raise CatsplitError(f"{target} exists; write the model to another folder or pass overwrite=True (CLI: --overwrite)")
    return target



def edit_onnx(
    src: str | os.PathLike, text_encoder: Any, coarse: str, subs: Sequence[str], dst: str | os.PathLike, **options: Any,
) -> Path:
    """`split_onnx` with its earlier argument order `(src, text_encoder, coarse, subs, dst)`, kept for existing callers."""
    return split_onnx(src, dst, text_encoder, coarse, subs, **options)


def load_model(path: str | os.PathLike) -> Any:
    """Read an ONNX model, checked (`catsplit.io.onnx_model.load_model`); external data only from files inside
    the model's own folder."""
    return read_model(path)


def find_classifier(model: Any, num_classes: int, *, node: str | None = None, where: str = "the model") -> Classifier:
    """The linear layer with `num_classes` outputs whose weight is an initializer.

    Gemm (either weight orientation, alpha/beta folded in) or MatMul followed by an Add of a
    bias initializer. With several candidates the one whose output is a graph output (or feeds
    one Softmax that is) wins; `node=` names it outright.
    """
    onnx = require_onnx("editing ONNX models")
    TensorProto = onnx.TensorProto
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def array(name: str) -> np.ndarray | None:
        return initializer_array(inits[name], where) if name in inits else None

    def dims(name: str) -> tuple[int, ...]:  # shape without reading the data (backbones hold many weights)
        return tuple(inits[name].dims)

    def attr(n: Any, key: str, default: Any) -> Any:
        for a in n.attribute:
            if a.name == key:
                return a.f if a.type == a.FLOAT else a.i
        return default

    found: list[Classifier] = []
    seen: list[str] = []
    for n in graph.node:
        if n.op_type == "Gemm" and len(n.input) >= 2 and n.input[1] in inits and not attr(n, "transA", 0):
            shape = dims(n.input[1])
            if len(shape) != 2:
                continue
            transposed = bool(attr(n, "transB", 0))
            seen.append(f"Gemm {n.name!r} ({shape[0] if transposed else shape[1]} outputs)")
            if (shape[0] if transposed else shape[1]) != num_classes:
                continue
            b = array(n.input[1])
            w = b if transposed else b.T  # [C, D]
            bias = array(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if len(n.input) > 2 and n.input[2] and bias is None:
                continue  # a bias computed at run time cannot be edited
            if bias is not None and bias.size not in (1, num_classes):
                raise CatsplitError(f"{where}: Gemm {n.name!r} has a bias of {bias.size} values for {num_classes} classes")
            w = w * attr(n, "alpha", 1.0)
            if bias is not None:
                bias = np.broadcast_to(bias.reshape(-1) * attr(n, "beta", 1.0), (num_classes,)).copy()  # [C], [1, C] or [1]
            owned = [i for i in n.input[1:] if i in inits]
            found.append(Classifier([n], n.input[0], n.output[0], np.ascontiguousarray(w), bias, owned))
        elif n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits:
            shape = dims(n.input[1])
            if len(shape) != 2:
                continue
            seen.append(f"MatMul {n.name!r} ({shape[1]} outputs)")
            if shape[1] != num_classes:
                continue
            b = array(n.input[1])
            nodes, out, bias, owned = [n], n.output[0], None, [n.input[1]]
            after = consumers.get(out, [])
            if len(after) == 1 and after[0].op_type == "Add":
                add = after[0]
                other = add.input[1] if add.input[0] == out else add.input[0]
                b_add = array(other)
                if b_add is not None and b_add.size in (1, num_classes):
                    nodes, out, owned = [n, add], add.output[0], owned + [other]
                    bias = np.broadcast_to(b_add.reshape(-1), (num_classes,)).copy()
            found.append(Classifier(nodes, n.input[0], out, np.ascontiguousarray(b.T), bias, owned))
    if node is not None:
        named = [c for c in found if any(x.name == node for x in c.nodes)]
        if not named:
            raise CatsplitError(f"{where}: no classifier node named {node!r} with {num_classes} outputs; candidates: {seen or 'none'}")
        found = named
    if len(found) > 1:
        outputs = {o.name for o in graph.output}

        def final(c: Classifier) -> bool:
            after = consumers.get(c.output, [])
            return c.output in outputs or (
                len(after) == 1 and after[0].op_type in ("Softmax", "LogSoftmax") and after[0].output[0] in outputs
            )

        found = [c for c in found if final(c)] or found
    if not found:
        raise CatsplitError(
            f"{where}: found no Gemm or MatMul with a weight initializer of {num_classes} classes (one per label); "
            f"linear layers seen: {seen or 'none'}. Check the labels, or the model computes its weights at run time"
        )
    if len(found) > 1:
        shown = [x.name for c in found for x in c.nodes[:1]]
        raise CatsplitError(f"{where}: several classifiers with {num_classes} outputs: {shown}; pass node=NAME (CLI: --node)")
    c = found[0]
    # shared tensors stay: only the layer's own ones are dropped
    c.initializers = [t for t in c.initializers if sum(t in n.input for n in graph.node) == 1]
    known = _tensor_type(model, c.features)
    rank = len(known.shape.dim) if known is not None and known.HasField("shape") else None
    if rank not in (None, 2):
        raise CatsplitError(
            f"{where}: the classifier's input {c.features!r} has rank {rank}; catsplit edits classifiers on features [N, D]"
        )
    # The head's nodes are float32 and ONNX does not mix types. Gemm and MatMul take one type for both
    # inputs, so the weight's type stands in when inference does not know the features'.
    elem = known.elem_type if known is not None and known.elem_type else inits[c.nodes[0].input[1]].data_type
    if elem != TensorProto.FLOAT:
        dtype = TensorProto.DataType.Name(elem).lower()
        raise CatsplitError(
            f"{where}: the classifier's input {c.features!r} is {dtype}; catsplit edits classifiers on float32 "
            "features: convert the model to float32 first (e.g. export it again in float32)"
        )
    return c


def _tensor_type(model: Any, name: str) -> Any:
    """The type of a tensor (TypeProto.Tensor: elem_type, shape) by onnx shape inference, or None when unknown."""
    onnx = require_onnx("editing ONNX models")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort here
        return None
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if v.name == name and v.type.HasField("tensor_type"):
            return v.type.tensor_type
    return None


def _post_softmax(model: Any, output: str, where: str) -> Any:
    """The Softmax / LogSoftmax that turns the classifier's output into a graph output, if any.

    The classifier's output must be a graph output itself or feed exactly one such node. When it is a
    graph output it is the model's output even if Softmax / LogSoftmax nodes read it too: those stay
    (None is returned), and still give (log-)probabilities after the edit, also from a hierarchical
    head's log-probabilities, since softmax(log p) = p.
    """
    graph = model.graph
    outputs = {o.name for o in graph.output}
    consumers = [n for n in graph.node if output in n.input]
    softmaxes = all(n.op_type in ("Softmax", "LogSoftmax") for n in consumers)
    for n in consumers if softmaxes else []:
        axis = next((a.i for a in n.attribute if a.name == "axis"), -1)
        if axis not in (1, -1):
            raise CatsplitError(f"{where}: the {n.op_type} after the classifier runs over axis {axis}, not the classes")
    if output in outputs and softmaxes:
        return None
    if len(consumers) == 1 and softmaxes and consumers[0].output[0] in outputs:
        return consumers[0]
    shown = ", ".join(f"{n.op_type!r} node {n.name!r}" for n in consumers) or "nothing"
    raise CatsplitError(
        f"{where}: the classifier's output {output!r} feeds {shown}; catsplit edits models whose classifier output "
        "is a graph output, directly or through one Softmax / LogSoftmax"
    )


def _labels(src: Path, meta: dict[str, str], labels: Any, config: dict[str, Any] | None) -> list[str]:
    """labels=, else the metadata's label list, else the id2label of the config.json beside `src`."""
    if labels is not None:
        return list(check_labels(read_labels(labels)))
    for key in ONNX_LABEL_KEYS:
        if key in meta:
            try:
                value = parse_json(meta[key], f"{src}: metadata {key!r}")
            except CatsplitError as exc:
                raise CatsplitError(f"{exc}; pass labels=") from None
            return list(check_labels(value, f"{src} metadata {key!r}"))
    found = config_labels(config, str(config_path(src))) if config is not None else None
    if found is not None:
        return found
    raise CatsplitError(
        f"{src} carries no labels in its metadata (looked for {list(ONNX_LABEL_KEYS)}) and has no {CONFIG_NAME} with "
        "id2label beside it; pass labels= (a list, or a file with one label per line; CLI: --labels FILE)"
    )


_REQUIRED = object()


def _json_field(meta: dict[str, str], key: str, default: Any = _REQUIRED) -> Any:
    """A field of the catsplit.head description; `default` for an optional one (fields added later)."""
    try:
        desc = parse_json(meta[KEY_HEAD], f"{KEY_HEAD!r} metadata")
        value = desc[key] if default is _REQUIRED else desc.get(key, default)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatsplitError(f"damaged {KEY_HEAD!r} metadata ({type(exc).__name__}: {exc})") from None
    if default is not _REQUIRED and value is not None and not isinstance(value, str):
        raise CatsplitError(f"damaged {KEY_HEAD!r} metadata: {key!r} must be a tensor name, got {value!r}")
    return value


def _activation(meta: dict[str, str]) -> tuple[str, int] | None:
    """`base_activation` of the catsplit.head description: the op the model's top-1 reads the logits through."""
    try:
        value = parse_json(meta[KEY_HEAD], f"{KEY_HEAD!r} metadata").get("base_activation")
    except AttributeError as exc:
        raise CatsplitError(f"damaged {KEY_HEAD!r} metadata ({type(exc).__name__}: {exc})") from None
    if value is None:
        return None
    ops, axes = ("Softmax", "LogSoftmax"), (1, -1)
    if not (isinstance(value, list) and len(value) == 2 and value[0] in ops and type(value[1]) is int and value[1] in axes):
        raise CatsplitError(
            f"damaged {KEY_HEAD!r} metadata: 'base_activation' must be null or [op, axis] with op one of {list(ops)} "
            f"and axis 1 or -1, got {value!r}"
        )
    return value[0], value[1]


def _names(values: Any) -> set[str]:
    return {v.name for v in values}


def _foreign(graph: Any, tensor: str) -> bool:
    """Whether `tensor` is made by a node catsplit did not add (a foreign classifier kept for its logits)."""
    return any(tensor in n.output and not n.name.startswith(PREFIX) for n in graph.node)


def _producers(graph: Any, tensor: str, features: str) -> list:
    """The nodes of a kept classifier, in graph order: those computing `tensor` from `features` and initializers."""
    inits = _names(graph.initializer)
    wanted, found = {tensor}, []
    for n in reversed(list(graph.node)):
        if wanted & set(n.output):
            found.append(n)
            wanted |= {i for i in n.input if i and i != features and i not in inits}
    made = {o for n in found for o in n.output}
    if not found or not wanted <= made:  # it would reach into the backbone: not the classifier catsplit kept
        raise CatsplitError(
            f"damaged {KEY_HEAD!r} metadata: 'base_logits' {tensor!r} is not computed from the features "
            f"{features!r} by a classifier; export or edit the model again from its head file"
        )
    return found[::-1]


def _rename_output(graph: Any, old: str, new: str) -> None:
    """The node making `old` makes `new` instead (its inputs, op and attributes unchanged, so the same bits)."""
    for n in graph.node:
        for i, o in enumerate(n.output):
            if o == old:
                n.output[i] = new


def _set_top1_output(model: Any, output: str, top1: str | None) -> None:
    """A hierarchical head's top-1 is a graph output, int64 [batch] (batch as the scores' output has it)."""
    onnx = require_onnx("editing ONNX models")
    graph = model.graph
    kept = [o for o in graph.output if o.name != top1]
    del graph.output[:]
    graph.output.extend(kept)
    if top1 is None:
        return
    value = onnx.helper.make_tensor_value_info(top1, onnx.TensorProto.INT64, [None])
    scores = next((o for o in kept if o.name == output), None)
    if scores is not None and scores.type.tensor_type.HasField("shape") and scores.type.tensor_type.shape.dim:
        value.type.tensor_type.shape.dim[0].CopyFrom(scores.type.tensor_type.shape.dim[0])
    graph.output.append(value)


def _replace_nodes(model: Any, old: list, new: list, dropped_inits: set[str], after: Any = None) -> None:
    """Put `new` where the first of `old` was (its inputs exist there), or right after the node `after`
    when nothing is removed; drop `old` and unused tensors."""
    graph = model.graph
    old_ids = {id(n) for n in old}
    nodes = list(graph.node)
    if old:
        at = min(i for i, n in enumerate(nodes) if id(n) in old_ids)
    else:
        at = next(i for i, n in enumerate(nodes) if n is after) + 1
    kept = [n for n in nodes[:at] if id(n) not in old_ids] + list(new) + [n for n in nodes[at:] if id(n) not in old_ids]
    removed_outputs = {o for n in old for o in n.output}
    del graph.node[:]
    graph.node.extend(kept)
    new_ids = {id(n) for n in new}
    used = {i for n in kept if id(n) not in new_ids for i in n.input}  # the new nodes bring their own tensors
    keep_inits = [t for t in graph.initializer if t.name not in dropped_inits or t.name in used]
    gone = {t.name for t in graph.initializer} - {t.name for t in keep_inits}
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)
    # Models that list their weights as graph inputs too (IR < 4, torch's keep_initializers_as_inputs):
    # a dropped weight left there would become an input that every run has to feed.
    kept_inputs = [v for v in graph.input if v.name not in gone]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    stale = [v for v in graph.value_info if v.name in removed_outputs]
    for v in stale:
        graph.value_info.remove(v)


def _fix_output_shapes(model: Any, output: str, num_classes: int) -> None:
    """The class axis of the edited output (and of anything computed from it) has a new size."""
    graph = model.graph
    downstream = {output}
    for n in graph.node:
        if downstream & set(n.input):
            downstream.update(n.output)
    for v in [v for v in graph.value_info if v.name in downstream]:
        graph.value_info.remove(v)
    for o in graph.output:
        if o.name in downstream and o.type.tensor_type.HasField("shape"):
            dims = o.type.tensor_type.shape.dim
            if len(dims) == 2:
                dims[1].Clear()
                dims[1].dim_value = num_classes
