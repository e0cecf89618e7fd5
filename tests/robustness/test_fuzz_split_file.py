"""split_file on the fuzz test's mutated head files: it raises load_head's (or split's) error, or writes the
bytes load_head + split + save write."""

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, load_head, split_file
from test_fuzz_headfile import mutated


def _error(fn):
    with pytest.raises(CatsplitError) as info:
        fn()
    return str(info.value)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(blob=mutated(), mode=st.sampled_from(["flat", "hierarchical"]))
def test_damaged_files_fail_or_split_as_load_head_does(tmp_path, blob, mode):
    """Mutated head files (the fuzz test's): split_file raises load_head's error, or writes the same bytes."""
    src, ref, out = tmp_path / "fuzz.safetensors", tmp_path / "ref.safetensors", tmp_path / "out.safetensors"
    for p in (ref, out):
        p.unlink(missing_ok=True)
    src.write_bytes(blob)
    try:
        head = load_head(src)
    except CatsplitError as exc:
        event("load_head fails")
        assert _error(lambda: split_file(src, out, None, "x", ["x 1", "x 2"], method="coarse")) == str(exc)
        return
    coarse = head.labels[0]
    subs = [coarse + " 1", coarse + " 2"]
    try:
        catsplit.split(head, None, coarse, subs, method="coarse", mode=mode).save(ref)
    except CatsplitError as exc:
        event("split fails")
        assert _error(lambda: split_file(src, out, None, coarse, subs, method="coarse", mode=mode)) == str(exc)
        return
    event("written")
    assert split_file(src, out, None, coarse, subs, method="coarse", mode=mode).read_bytes() == ref.read_bytes()
