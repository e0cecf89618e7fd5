"""Crash-safe and concurrent saves, with real processes: SIGKILL mid-write, two writers racing.

After a kill the destination is always a complete head file, bit-identical to the old or the
new one; a stray temp file `.<name>.<random>.tmp` may remain and does not disturb later saves.
"""

from __future__ import annotations

import os
import random
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from catsplit import CatsplitError, Head, load_head

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # seconds for a child to import torch and load its heads, on a busy 2-core machine

SAVE_LOOP = r"""
import itertools, sys
from catsplit import load_head
mode, target = sys.argv[1], sys.argv[2]
heads = [load_head(p) for p in sys.argv[3:]]
print("ready", flush=True)
if mode == "overwrite":  # replace the same file again and again
    for h in itertools.cycle(heads):
        h.save(target, overwrite=True)
else:  # write new files, one after another
    for i in itertools.count():
        heads[i % len(heads)].save(f"{target}.{i}")
"""

RACER = r"""
import os, sys, time
from catsplit import CatsplitError, load_head
head, target, go, modes = load_head(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")
print("ready", flush=True)
for r, mode in enumerate(modes):
    while not os.path.exists(f"{go}.{r}"):
        time.sleep(0.0002)
    try:
        head.save(f"{target}.{r}", overwrite=(mode == "overwrite"))
        print("ok", flush=True)
    except CatsplitError as exc:
        print("refused", exc, flush=True)
"""


def _same_file(blob: bytes, other: bytes) -> bool:
    """Bit-identical: catsplit writes the header itself, deterministically, so a re-saved head gives the same bytes."""
    return blob == other


def _head(seed: int, rows: int = 4000, dim: int = 512) -> Head:
    """~8 MB of float32: large enough that a save takes a while."""
    g = torch.Generator().manual_seed(seed)
    return Head(weight=torch.randn(rows, dim, generator=g), bias=torch.randn(rows, generator=g),
                labels=[f"class {seed} {i}" for i in range(rows)])


def _spawn(script: str, *args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _readline(proc: subprocess.Popen, timeout: float = TIMEOUT) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"child gave no output in {timeout} s")
        line = proc.stdout.readline()
    finally:
        sel.close()
    if not line:
        proc.wait()
        pytest.fail(f"child exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return line.strip()


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heads")
    a, b = folder / "a.safetensors", folder / "b.safetensors"
    _head(1).save(a)
    _head(2).save(b)
    return a, b


def test_sigkill_during_saves_leaves_a_complete_file(tmp_path, two_heads):
    a, b = two_heads
    old, new = a.read_bytes(), b.read_bytes()
    rng = random.Random()
    trials = []
    for i, mode in enumerate(["overwrite"] * 3 + ["new"]):
        folder = tmp_path / f"trial{i}"
        folder.mkdir()
        target = folder / "head.safetensors"
        if mode == "overwrite":
            target.write_bytes(old)
        trials.append((mode, folder, target, _spawn(SAVE_LOOP, mode, target, b, a)))
    try:
        for _, _, _, proc in trials:
            assert _readline(proc) == "ready"
        delays = []
        for _, _, _, proc in trials:  # the children are saving in a loop now: kill each at a random moment
            delays.append(rng.uniform(0.0, 0.3))
            time.sleep(delays[-1])
            proc.send_signal(signal.SIGKILL)
            proc.wait(TIMEOUT)
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    finally:
        for *_, proc in trials:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for mode, folder, target, _ in trials:
        names = sorted(os.listdir(folder))
        if mode == "overwrite":
            finished = [target]
            got = target.read_bytes()
            assert _same_file(got, old) or _same_file(got, new), f"damaged file after SIGKILL (delays {delays})"
        else:
            finished = sorted(folder.glob("head.safetensors.*"))
            for f in finished:
                got = f.read_bytes()
                assert _same_file(got, old) or _same_file(got, new), f"damaged {f.name} after SIGKILL"
        for f in finished:
            assert load_head(f).equals(load_head(a)) or load_head(f).equals(load_head(b))
        strays = [n for n in names if folder / n not in finished]
        # only catsplit's own temp names: `.<name>.<8 random characters>.tmp`
        assert all(re.fullmatch(r"\.head\.safetensors(\.\d+)?\.[A-Za-z0-9_]{8}\.tmp", n) for n in strays), strays
        # strays do not disturb later saves, with or without overwrite
        _head(3).save(target, overwrite=True)
        _head(3).save(folder / "other.safetensors")
        assert load_head(target).equals(load_head(folder / "other.safetensors"))
        for n in strays:  # the documented clean-up: remove .<name>.*.tmp once no save is running
            (folder / n).unlink()


def test_two_processes_saving_to_one_path(tmp_path, two_heads):
    a, b = two_heads
    contents = [a.read_bytes(), b.read_bytes()]
    modes = ["overwrite", "new", "overwrite", "new", "new", "overwrite"]
    target, go = tmp_path / "shared.safetensors", tmp_path / "go"
    racers = [_spawn(RACER, src, target, go, ",".join(modes)) for src in (a, b)]
    try:
        for proc in racers:
            assert _readline(proc) == "ready"
        for r, mode in enumerate(modes):
            Path(f"{go}.{r}").touch()
            results = [_readline(proc) for proc in racers]
            out = Path(f"{target}.{r}")
            got = out.read_bytes()
            assert any(_same_file(got, c) for c in contents), f"round {r} ({mode}): a mix of the two heads"
            if mode == "overwrite":
                assert results == ["ok", "ok"], results
            else:
                assert sorted(r_.split()[0] for r_ in results) == ["ok", "refused"], results
                refusal = next(r_ for r_ in results if r_.startswith("refused"))
                assert "appeared while saving" in refusal or "exists" in refusal, refusal
            leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
            assert leftovers == [], leftovers  # both finished normally: no temp file remains
        for proc in racers:
            proc.wait(TIMEOUT)
            assert proc.returncode == 0, proc.stderr.read()[-2000:]
    finally:
        for proc in racers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_failed_save_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    import catsplit.io.headfile

    target = tmp_path / "h.safetensors"
    _head(1, rows=10, dim=4).save(target)
    before = target.read_bytes()

    def full_disk(f, header, tensors):
        f.write(header[:5])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catsplit.io.headfile, "write_safetensors", full_disk)
    with pytest.raises(CatsplitError, match="No space left on device.*untouched"):
        _head(2, rows=10, dim=4).save(target, overwrite=True)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["h.safetensors"]


def test_long_file_names_get_a_temp_name_that_fits(tmp_path):
    name = "x" * 250 + ".safetensors"[: 255 - 250]
    target = tmp_path / name
    _head(1, rows=3, dim=2).save(target)
    assert load_head(target).num_classes == 3
