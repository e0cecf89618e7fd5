"""catsplit.io.streaming: split_file writes exactly the bytes of load_head + split + save, without copying the
weight in memory."""

import errno
import json
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, Head, SplitConfig, load_head, split_file
from catsplit.io.streaming import open_head_file
from conftest import MODIFIERS, HashEncoder, compositional_head

FAST = SplitConfig(max_epochs=2)  # alignment's training length does not matter to the identity
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
METHODS = ("coarse", "text", "retrieval", "alignment")
PUSH = [f"Pushing something {m}" for m in MODIFIERS]


def reference(src, dst, encoder, coarse, subs, **options):
    """The ordinary path split_file must match."""
    catsplit.split(load_head(src), encoder, coarse, subs, **options).save(dst)
    return dst.read_bytes()


def edited_head(dtype: str, bias: bool, prior: str) -> tuple[Head, str, list[str]]:
    """A head after `prior` edits, and the (coarse, subs) of the split under test."""
    head, subs, _, _ = compositional_head(bias=bias)
    lifting = [lab for lab in head.labels if lab.startswith("Lifting")]
    head = Head(weight=head.weight.to(DTYPES[dtype]), bias=None if head.bias is None else head.bias.to(DTYPES[dtype]),
                labels=head.labels, groups={"Lifting moves": lifting, "Misc": ["Pushing something", "Dropping something up"]},
                metadata={"origin": "test", "note": "ünïcode ✓"})
    fast = dict(method="coarse", config=FAST)
    if prior == "none":
        return head, "Pushing something", subs
    if prior == "flat":  # undo.0 tensors, groups_before
        head = catsplit.split(head, None, "Pushing something", subs, mode="flat", **fast)
        return head, "Lifting something up", ["Lifting something up slowly", "Lifting something up fast"]
    if prior == "hierarchical":  # the split under test edits the sub-table
        head = catsplit.split(head, None, "Pushing something", subs, mode="hierarchical", **fast)
        return head, PUSH[2], [PUSH[2] + " slowly", PUSH[2] + " fast"]
    assert prior == "both"  # sub-tables renumbered on save, undo.1, a flat edit of table 0 after a hierarchical one
    head = catsplit.split(head, None, "Pushing something", subs, mode="hierarchical", **fast)
    head = catsplit.split(head, None, "Dropping something up", ["Dropping something up a", "Dropping something up b"], **fast)
    head = catsplit.split(head, None, PUSH[0], [PUSH[0] + " x", PUSH[0] + " y"], mode="hierarchical", **fast)
    return head, PUSH[1], [PUSH[1] + " slowly", PUSH[1] + " fast"]


@pytest.mark.parametrize("prior", ["none", "flat", "hierarchical", "both"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("bias", [True, False])
def test_split_file_writes_the_bytes_of_load_split_save(tmp_path, prior, dtype, bias):
    head, coarse, subs = edited_head(dtype, bias, prior)
    src = tmp_path / "head.safetensors"
    head.save(src)
    for method in METHODS:
        for mode in ("flat", "hierarchical"):
            options = dict(method=method, mode=mode, config=FAST, seed=3)
            want = reference(src, tmp_path / f"ref-{method}-{mode}.safetensors", HashEncoder(), coarse, subs, **options)
            out = split_file(src, tmp_path / f"out-{method}-{mode}.safetensors", HashEncoder(), coarse, subs, **options)
            assert out == tmp_path / f"out-{method}-{mode}.safetensors"
            assert out.read_bytes() == want, (method, mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_text_head_gate_and_user_groups(tmp_path):
    enc = HashEncoder()
    labels = [f"{v} something {m}" for v in ("Pulling", "Lifting") for m in MODIFIERS] + ["Pushing something"]
    text = catsplit.text_head(labels, enc).evolve(metadata={"catsplit.custom": "kept"})
    src = tmp_path / "text.safetensors"
    text.save(src)
    want = reference(src, tmp_path / "ref.safetensors", enc, "Pushing something", PUSH[:3], method="text")
    assert split_file(src, tmp_path / "out.safetensors", enc, "Pushing something", PUSH[:3], method="text").read_bytes() == want
    head, subs, _, _ = compositional_head()
    head.save(src2 := tmp_path / "plain.safetensors")
    groups = {"Pulling": [lab for lab in head.labels if lab.startswith("Pulling")]}
    opts = dict(method="retrieval", gate=0.3, groups=groups, modifiers={subs[0]: "leftwards"})
    want = reference(src2, tmp_path / "ref2.safetensors", enc, "Pushing something", subs, **opts)
    assert split_file(src2, tmp_path / "out2.safetensors", enc, "Pushing something", subs, **opts).read_bytes() == want


def _raw_safetensors(path, tensors: dict, meta: dict, pad: bool = False) -> None:
    """A safetensors file with the tensors in the given order (catsplit's writer would sort them)."""
    codes = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.bfloat16: "BF16"}
    header, data, offset = {"__metadata__": meta}, b"", 0
    for name, t in tensors.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


@pytest.mark.parametrize("pad", [False, True])
def test_misaligned_tensors_and_a_bias_of_another_dtype(tmp_path, pad):
    """Tensors the map cannot view (odd offsets) are read; a float16 bias of a float32 head is converted."""
    head, subs, _, _ = compositional_head(dim=7)
    src = tmp_path / "odd.safetensors"
    labels = json.dumps(head.labels)
    _raw_safetensors(src, {"bias": head.bias.to(torch.float16), "weight": head.weight,
                           "undo.9.weight": head.weight[:1]}, {"catsplit.format": "1", "catsplit.labels": labels}, pad)
    weight_start = 8 + int.from_bytes(src.read_bytes()[:8], "little") + 2 * len(head.labels)  # after the F16 bias
    assert not pad or weight_start % 4  # padded header: the F32 weight is misaligned for sure
    with open_head_file(src) as source:
        assert source.reader is not None and source.head.bias.dtype == torch.float32
        assert source.reader.file_offset(source.head.bias) is None  # converted: in memory
        assert (source.reader.file_offset(source.head.weight) is None) == bool(weight_start % 4)  # misaligned: read
    for mode in ("flat", "hierarchical"):
        want = reference(src, tmp_path / f"ref-{mode}.safetensors", None, "Pushing something", subs, method="coarse", mode=mode)
        got = split_file(src, tmp_path / f"out-{mode}.safetensors", None, "Pushing something", subs, method="coarse", mode=mode)
        assert got.read_bytes() == want


def test_the_weight_is_copied_file_to_file_not_in_memory(tmp_path, monkeypatch):
    rows, dim = 3000, 64
    head = Head(weight=torch.randn(rows, dim), bias=torch.randn(rows), labels=[f"class {i}" for i in range(rows)])
    src = tmp_path / "h.safetensors"
    head.save(src)
    want = reference(src, tmp_path / "ref.safetensors", None, "class 1500", ["class 1500 a", "class 1500 b"], method="coarse")

    def no_concat(parts):
        raise AssertionError("concat_rows copied the weight")

    monkeypatch.setattr("catsplit.edit.concat_rows", no_concat)
    copied = []
    real = os.copy_file_range

    def spy(src_fd, dst_fd, count, offset_src=None, offset_dst=None):
        n = real(src_fd, dst_fd, count, offset_src, offset_dst)
        copied.append(n)
        return n

    monkeypatch.setattr(os, "copy_file_range", spy)
    with open_head_file(src) as source:
        w = source.head.weight
        assert source.reader.file_offset(w) is not None  # a view of the map, not a copy
        assert w.untyped_storage().nbytes() == src.stat().st_size  # the whole file's map, nothing else
    out = split_file(src, tmp_path / "out.safetensors", None, "class 1500", ["class 1500 a", "class 1500 b"], method="coarse")
    assert out.read_bytes() == want
    assert sum(copied) == (rows - 1) * (dim + 1) * 4  # every unchanged row and bias, from the file


@pytest.mark.parametrize("failure", ["exdev", "missing"])
def test_without_copy_file_range_the_copy_is_read_and_written(tmp_path, monkeypatch, failure):
    head, subs, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    want = reference(src, tmp_path / "ref.safetensors", HashEncoder(), "Pushing something", subs, method="retrieval")
    if failure == "missing":
        monkeypatch.delattr(os, "copy_file_range")
    else:
        def refuse(*args, **kwargs):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse)
    monkeypatch.setattr("catsplit.io.copying.COPY_CHUNK", 1000)  # several chunks
    got = split_file(src, tmp_path / "out.safetensors", HashEncoder(), "Pushing something", subs, method="retrieval")
    assert got.read_bytes() == want


def test_a_file_that_cannot_be_mapped_is_read(tmp_path, monkeypatch):
    import mmap

    head, subs, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    want = reference(src, tmp_path / "ref.safetensors", None, "Pushing something", subs, method="coarse")

    def refuse(*args, **kwargs):
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(mmap, "mmap", refuse)
    with open_head_file(src) as source:
        assert source.reader is not None and source.reader.file_offset(source.head.weight) is None
    assert split_file(src, tmp_path / "out.safetensors", None, "Pushing something", subs, method="coarse").read_bytes() == want


@pytest.mark.parametrize("copy_range", [True, False])
def test_a_source_truncated_while_copied_is_an_error(tmp_path, monkeypatch, copy_range):
    head, _, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    size = src.stat().st_size
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"")
    source = open_head_file(src)
    offset = source.reader.file_offset(source.head.weight)
    source.head = None  # the views must not be read once the file is truncated (SIGBUS)
    os.truncate(src, size - 100)
    source.copier.copy_range = copy_range and hasattr(os, "copy_file_range")
    fd = os.open(dst, os.O_WRONLY)
    try:
        with pytest.raises(CatsplitError, match="truncated, or it changed while being read"):
            source.copier.copy(offset, size - offset, fd, 0)
    finally:
        os.close(fd)
        source.close()


def _error(fn):
    with pytest.raises(CatsplitError) as info:
        fn()
    return str(info.value)


def test_errors_are_those_of_load_split_save(tmp_path):
    head, subs, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    out = tmp_path / "out.safetensors"
    cases = [
        (src, "Pushing somethin", subs, {}),  # not a label: suggestions
        (src, "Pushing something", subs[:1], {}),  # one sub
        (src, "Pushing something", subs, {"method": "nope"}),
        (tmp_path / "missing.safetensors", "Pushing something", subs, {}),
    ]
    bad = tmp_path / "nan.safetensors"  # weight[4, 2] = NaN
    raw = bytearray(src.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8 : 8 + n])
    begin = 8 + n + hdr["weight"]["data_offsets"][0] + (4 * head.dim + 2) * 4
    raw[begin : begin + 4] = np.float32(np.nan).tobytes()
    bad.write_bytes(bytes(raw))
    cases.append((bad, "Pushing something", subs, {}))
    truncated = tmp_path / "short.safetensors"
    truncated.write_bytes(src.read_bytes()[:-3])
    cases.append((truncated, "Pushing something", subs, {}))
    for path, coarse, ss, opts in cases:
        opts = {"method": "coarse", **opts}
        want = _error(lambda: catsplit.split(load_head(path), None, coarse, ss, **opts).save(out))
        assert _error(lambda: split_file(path, out, None, coarse, ss, **opts)) == want
        assert not out.exists()
    assert "NaN or inf in row(s) 4" in _error(lambda: split_file(bad, out, None, "Pushing something", subs, method="coarse"))
    out.write_bytes(b"old")
    want = _error(lambda: catsplit.split(head, None, "Pushing something", subs, method="coarse").save(out))
    assert _error(lambda: split_file(src, out, None, "Pushing something", subs, method="coarse")) == want
    assert out.read_bytes() == b"old"


def test_in_place_with_overwrite(tmp_path):
    head, subs, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    want = reference(src, tmp_path / "ref.safetensors", None, "Pushing something", subs, method="coarse")
    mode = src.stat().st_mode
    with pytest.raises(CatsplitError, match="exists"):
        split_file(src, src, None, "Pushing something", subs, method="coarse")
    split_file(src, src, None, "Pushing something", subs, method="coarse", overwrite=True)
    assert src.read_bytes() == want and src.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.safetensors", "ref.safetensors"]  # no temp file left


def test_foreign_inputs_take_the_ordinary_path(tmp_path):
    from safetensors.torch import save_file

    head, subs, _, _ = compositional_head()
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(head.labels))
    ckpt = tmp_path / "model.pt"
    torch.save({"model": {"fc": {"weight": head.weight, "bias": head.bias}}, "epoch": 3}, ckpt)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": head.weight, "bias": head.bias}, str(foreign), metadata={"catsplit.labels": json.dumps(head.labels), "x": "y"})
    plain = tmp_path / "plain.safetensors"
    save_file({"fc.weight": head.weight, "fc.bias": head.bias}, str(plain))
    for src, load in [(ckpt, dict(key="model.fc", labels=labels)), (foreign, {}), (plain, dict(key="fc", labels=head.labels))]:
        want = tmp_path / f"ref-{src.stem}.safetensors"  # head files are named .safetensors (issue 15)
        catsplit.split(load_head(src, **load), HashEncoder(), "Pushing something", subs, method="retrieval").save(want)
        got = split_file(src, tmp_path / f"out-{src.stem}.safetensors", HashEncoder(), "Pushing something", subs, method="retrieval", **load)
        assert got.read_bytes() == want.read_bytes()
    with open_head_file(foreign) as source:
        assert source.reader is None  # loaded, not mapped
    catsplit_file = tmp_path / "head.safetensors"
    head.save(catsplit_file)
    with open_head_file(catsplit_file, labels=head.labels) as source:
        assert source.reader is None  # labels= replaces the stored labels: the ordinary path


@st.composite
def edit_chains(draw):
    """A random head (dtype, bias, size), up to two earlier splits, and the split under test."""
    n_verbs, n_mods = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    labels = [f"verb{i} thing mod{j}" for i in range(n_verbs) for j in range(n_mods)] + ["Target thing", "Other thing"]
    dim = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = DTYPES[draw(st.sampled_from(list(DTYPES)))]
    w = torch.from_numpy(rng.standard_normal((len(labels), dim)).astype(np.float32)).to(dtype)
    b = torch.from_numpy(rng.standard_normal(len(labels)).astype(np.float32)).to(dtype) if draw(st.booleans()) else None
    head = Head(weight=w, bias=b, labels=labels)
    targets = ["Target thing", "Other thing"]
    for i in range(draw(st.integers(0, 2))):
        coarse = targets.pop(0)
        subs = [f"{coarse} sub{j}" for j in range(draw(st.integers(2, 3)))]
        head = catsplit.split(head, None, coarse, subs, method="coarse", mode=draw(st.sampled_from(["flat", "hierarchical"])))
        targets.append(subs[-1])
    coarse = targets[0]
    subs = [f"{coarse} mod{j}" for j in range(draw(st.integers(2, 4)))]
    options = dict(method=draw(st.sampled_from(METHODS)), mode=draw(st.sampled_from(["flat", "hierarchical"])),
                   seed=draw(st.integers(0, 5)), config=FAST)
    return head, coarse, subs, options


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(edit_chains())
def test_random_heads_and_edits(tmp_path, chain):
    head, coarse, subs, options = chain
    for p in tmp_path.iterdir():
        p.unlink()
    src = tmp_path / "h.safetensors"
    head.save(src)
    enc = HashEncoder(dim=16)
    try:
        want = reference(src, tmp_path / "ref.safetensors", enc, coarse, subs, **options)
    except CatsplitError as exc:  # e.g. too few labels for the method: split_file must fail the same way
        with pytest.raises(CatsplitError) as info:
            split_file(src, tmp_path / "out.safetensors", enc, coarse, subs, **options)
        assert str(info.value) == str(exc)
        return
    assert split_file(src, tmp_path / "out.safetensors", enc, coarse, subs, **options).read_bytes() == want


@pytest.mark.parametrize("prior", ["none", "flat", "hierarchical", "both"])
@pytest.mark.parametrize("bias", [True, False])
def test_split_file_with_order_keep_writes_the_bytes_of_load_split_save(tmp_path, prior, bias):
    """order="keep" splices the new first row into the copied byte ranges (and the others after the table)."""
    head, coarse, subs = edited_head("float16", bias, prior)
    head = catsplit.split(head, None, "Sliding something up", ["Sliding something up a", "Sliding something up b"],
                          method="coarse", mode="hierarchical", order="keep")  # an explicit output order as well
    src = tmp_path / "head.safetensors"
    head.save(src)
    for mode in ("flat", "hierarchical"):
        options = dict(method="retrieval", mode=mode, order="keep")
        want = reference(src, tmp_path / f"ref-{mode}.safetensors", HashEncoder(), coarse, subs, **options)
        out = split_file(src, tmp_path / f"out-{mode}.safetensors", HashEncoder(), coarse, subs, **options)
        assert out.read_bytes() == want, mode
        loaded = load_head(out)
        assert loaded.labels[head.labels.index(coarse)] == subs[0]
        assert catsplit.unsplit(loaded, coarse).equals(load_head(src))
