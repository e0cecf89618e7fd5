"""What the export tests share: a tiny video backbone, clips for it, and the retrieval edits of the compositional
head (conftest's `retrieval_edits`) exported with it once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
export = pytest.importorskip("catsplit.export")

DIM = 32
_EXPORTED: dict = {}  # what export_once made: the backbone and the two files


class TinyBackbone(torch.nn.Module):
    """uint8 clips [N, T, H, W, 3] -> features [N, DIM]: a Conv3d, a ReLU and a mean, like the benchmark's."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, DIM, 3, stride=2, padding=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4)) * 8.0


def clips(n: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 4, 8, 8, channels), dtype=torch.uint8, generator=g)


def export_once(tmp_path_factory, heads):
    """The backbone with the flat and the hierarchical edit of `heads` (head, flat, hier, subs), each exported once per
    session, whichever test module asks first (the exporter takes seconds; the edits are deterministic, so the
    `heads` of every module equal the ones exported)."""
    if _EXPORTED:
        return _EXPORTED["backbone"], _EXPORTED["paths"]
    _, flat, hier, _ = heads
    folder = tmp_path_factory.mktemp("onnx")
    backbone = TinyBackbone().eval()
    paths = {}
    for name, head in (("flat", flat), ("hier", hier)):
        paths[name] = export.to_onnx(backbone, head, folder / f"{name}.onnx", clips(4))
    _EXPORTED.update(backbone=backbone, paths=paths)
    return backbone, paths


def head_nodes(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node if n.name.startswith("catsplit_head/")]


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


# --- fixtures the export tests import (module-scoped: each importing module gets its own) ---------------
@pytest.fixture(scope="module")
def heads(retrieval_edits):
    return retrieval_edits  # (head, flat, hier, subs)



@pytest.fixture(scope="module")
def exported(tmp_path_factory, heads):
    return export_once(tmp_path_factory, heads)  # (backbone, {"flat": path, "hier": path})



@pytest.fixture(scope="module")
def edited_heads(retrieval_edits):
    return retrieval_edits[1:3]  # (flat, hier)



@pytest.fixture(scope="module")
def head_model(tmp_path_factory, edited_heads):
    return export.to_onnx(None, edited_heads[0], tmp_path_factory.mktemp("m") / "head.onnx", torch.randn(2, DIM))
