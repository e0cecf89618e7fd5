"""catsplit.export.backbone: the backbone to export, named by `module:attr` or `file.py:attr`."""

from __future__ import annotations

import sys

import torch

from catsplit.export.backbone import load_backbone
from conftest import BACKBONE


def test_backbone_module_is_imported_from_the_current_folder(tmp_path, monkeypatch):
    package = tmp_path / "catsplit_cwd_models"  # `catsplit export --backbone catsplit_cwd_models.nets:make` from tmp_path
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(BACKBONE + "\n\ndef make():\n    return Backbone()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])  # as in the console script
    try:
        assert isinstance(load_backbone("catsplit_cwd_models.nets:make"), torch.nn.Module)
    finally:
        for name in [m for m in sys.modules if m.startswith("catsplit_cwd_models")]:
            del sys.modules[name]
    assert str(tmp_path) not in sys.path  # only while importing
