"""catsplit/__init__.py: the public names, re-exported lazily so that `import catsplit` stays light."""

import catsplit


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, catsplit; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib', 'tokenizers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert catsplit.__version__
    assert "split" in dir(catsplit)


def test_exported_names_are_not_shadowed_by_submodules():
    """A submodule named like an exported function would replace it on first import."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(catsplit.__path__):
        if mod.name != "__main__":  # importing it runs the CLI
            importlib.import_module(f"catsplit.{mod.name}")
    for name in catsplit.__all__:
        assert not isinstance(getattr(catsplit, name), type(catsplit)), name
