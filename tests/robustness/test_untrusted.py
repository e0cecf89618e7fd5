"""Files from elsewhere never run code, and paths inside their metadata are never opened."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from catsplit import CatsplitError, load_head

ROOT = Path(__file__).resolve().parents[2]


class _Evil:
    """Unpickling this creates the marker file (via os.system: arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt", ".PT"])
@pytest.mark.parametrize("layout", ["top", "nested", "raw_pickle"])
def test_malicious_pickles_do_not_run(tmp_path, suffix, layout):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    if layout == "top":
        torch.save(_Evil(marker), path)
    elif layout == "nested":
        torch.save({"state_dict": {"fc.weight": torch.ones(2, 3), "fc.bias": _Evil(marker)}}, path)
    else:  # a bare pickle, not torch's zip container
        path.write_bytes(pickle.dumps({"fc.weight": _Evil(marker)}, protocol=2))
    with pytest.raises(CatsplitError) as err:
        load_head(path, key="fc", labels=["a", "b"])
    assert str(path) in str(err.value) and "weights_only=True" in str(err.value)
    assert not marker.exists()


def test_a_pickle_with_a_safetensors_name_is_not_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    torch.save({"weight": _Evil(marker)}, path)
    with pytest.raises(CatsplitError, match="not a valid safetensors file"):
        load_head(path, labels=["a"])
    assert not marker.exists()


AUDIT = r"""
import json, sys
watched = set(json.loads(sys.argv[2]))
opened = []
def hook(event, args):
    if event in ("open", "os.open", "os.listdir", "os.scandir", "os.stat", "os.mkfifo", "shutil.copyfile") and args:
        p = str(args[0])
        if p in watched:
            opened.append((event, p))
            raise RuntimeError(f"catsplit touched {p} ({event})")
sys.addaudithook(hook)
from catsplit import CatsplitError, load_head
try:
    head = load_head(sys.argv[1])
except CatsplitError as exc:
    print(json.dumps({"opened": opened, "error": str(exc)}))
else:
    print(json.dumps({"opened": opened, "metadata": head.metadata, "labels": head.labels}))
"""


def test_paths_in_metadata_are_never_opened(tmp_path):
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)  # opening it for reading would block forever
    secret = tmp_path / "secret.json"
    secret.write_text('["x", "y"]')
    paths = [str(fifo), str(secret), str(tmp_path / "missing" / "labels.json"), "/etc/passwd"]
    meta = {
        "catsplit.format": "1",
        "catsplit.labels": json.dumps(["a", "b"]),
        "labels_file": str(fifo),
        "catsplit.labels_path": str(secret),
        "source": paths[2],
        "tokenizer": "file:///etc/passwd",
        "config": json.dumps({"path": "/etc/passwd", "external_data": str(fifo)}),
    }
    p = tmp_path / "head.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata=meta)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", AUDIT, str(p), json.dumps(paths)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["opened"] == []
    assert result["labels"] == ["a", "b"]
    assert {k: v for k, v in result["metadata"].items()} == {k: v for k, v in meta.items() if k not in ("catsplit.format", "catsplit.labels")}


def test_a_label_path_in_a_foreign_files_metadata_is_not_opened(tmp_path):
    """Found by fuzzing: a foreign file whose `catsplit.labels` held a JSON string was read as a labels *file*."""
    secret = tmp_path / "secret.json"
    secret.write_text('["x", "y"]')
    p = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.labels": json.dumps(str(secret))})
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", AUDIT, str(p), json.dumps([str(secret)])], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["opened"] == []
    assert "must be a JSON list of labels" in result["error"] and str(p) in result["error"]
    for value in ("null", "3", '{"a": 0}'):
        save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.labels": value})
        with pytest.raises(CatsplitError, match="must be a JSON list of labels"):
            load_head(p)
