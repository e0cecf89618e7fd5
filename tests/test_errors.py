"""catsplit.errors: the exception types, and warnings attributed to the caller's line."""


from catsplit import CatsplitError


def test_catsplit_error_is_value_error():
    assert issubclass(CatsplitError, ValueError)
