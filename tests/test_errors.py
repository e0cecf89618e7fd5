"""catsplit.errors: the exception types, and warnings attributed to the caller's line."""

import warnings

import pytest

from catsplit import CatsplitError, MissingDependencyError
from catsplit.errors import warn_caller


def test_catsplit_error_is_value_error():
    assert issubclass(CatsplitError, ValueError)


def test_missing_dependency_error_is_both_a_catsplit_error_and_an_import_error():
    err = MissingDependencyError("this feature needs onnx: pip install onnx", name="onnx")
    assert isinstance(err, CatsplitError) and isinstance(err, ImportError)
    assert err.name == "onnx" and err.msg == str(err) == "this feature needs onnx: pip install onnx"
    with pytest.raises(ImportError):
        raise err


def test_warn_caller_names_the_first_frame_outside_catsplit():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_caller("look here", UserWarning)  # called from this file: the warning is attributed to it
    assert [(w.filename, str(w.message), w.category) for w in caught] == [(__file__, "look here", UserWarning)]
