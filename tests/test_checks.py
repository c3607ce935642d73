"""The shared validation helpers: every message names the op, the rule and the value."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from dlref import _checks


def test_as_tuple():
    assert _checks.as_tuple(3, 2, "stride", "op") == (3, 3)
    assert _checks.as_tuple((1, 2), 2, "stride", "op") == (1, 2)
    with pytest.raises(ValueError, match=r"op: stride must be an int or a tuple of 2 ints"):
        _checks.as_tuple((1, 2, 3), 2, "stride", "op")
    with pytest.raises(TypeError, match=r"op: stride must contain Python ints"):
        _checks.as_tuple((1.0, 2), 2, "stride", "op")
    with pytest.raises(TypeError, match=r"op: stride must be an int"):
        _checks.as_tuple(True, 2, "stride", "op")
    with pytest.raises(ValueError, match=r"op: stride must be >= 1, got 0"):
        _checks.as_tuple(0, 2, "stride", "op", minimum=1)


def test_same_padding_matches_tf_rule():
    # TF docs: n=5, k=3, s=2 -> out 3, total pad 2 -> (1, 1);
    # n=6, k=3, s=2 -> out 3, total pad 1 -> (0, 1)
    assert _checks.same_padding(5, 3, 2, 1) == (1, 1)
    assert _checks.same_padding(6, 3, 2, 1) == (0, 1)
    assert _checks.same_padding(7, 3, 1, 2) == (2, 2)  # effective kernel 5


def test_normalize_padding_forms():
    assert _checks.normalize_padding(1, 2, "op") == ((1, 1), (1, 1))
    assert _checks.normalize_padding((1, 2), 2, "op") == ((1, 1), (2, 2))
    assert _checks.normalize_padding(((0, 1), (2, 3)), 2, "op") == ((0, 1), (2, 3))
    assert _checks.normalize_padding("valid", 2, "op") == ((0, 0), (0, 0))
    same = _checks.normalize_padding("SAME", 1, "op", sizes=(6,), window=(3,), stride=(2,))
    assert same == ((0, 1),)


def test_normalize_padding_errors():
    with pytest.raises(ValueError, match=r"op: padding must be an int, a tuple, 'VALID' or 'SAME'"):
        _checks.normalize_padding("FULL", 2, "op")
    with pytest.raises(ValueError, match=r"op: padding must be non-negative"):
        _checks.normalize_padding(-1, 2, "op")
    with pytest.raises(ValueError, match=r"op: padding must have one entry per spatial dimension"):
        _checks.normalize_padding((1, 2, 3), 2, "op")
    with pytest.raises(TypeError, match=r"op: padding must contain Python ints"):
        _checks.normalize_padding(((0.5, 1), (0, 0)), 2, "op")


def test_rank_dtype_shape_checks():
    x = jnp.zeros((2, 3))
    assert _checks.check_rank(x, (2, 3), "x", "op") == 2
    with pytest.raises(ValueError, match=r"op: x must have rank 4, got rank 2"):
        _checks.check_rank(x, 4, "x", "op")
    with pytest.raises(TypeError, match=r"op: x must have a floating dtype, got int32"):
        _checks.check_floating(jnp.zeros(2, jnp.int32), "x", "op")
    with pytest.raises(ValueError, match=r"op: a and b must have the same shape"):
        _checks.check_same_shape(x, jnp.zeros(3), ("a", "b"), "op")


def test_range_and_choice():
    _checks.check_in_range(0.5, 0, 1, "rate", "op", hi_closed=False)
    with pytest.raises(ValueError, match=r"op: rate must lie in \[0, 1\), got 1.0"):
        _checks.check_in_range(1.0, 0, 1, "rate", "op", hi_closed=False)
    with pytest.raises(ValueError, match=r"op: reduction must be one of"):
        _checks.reduce_loss(jnp.ones(2), "avg", "op")
    assert float(_checks.reduce_loss(jnp.array([1.0, 3.0]), "mean", "op")) == 2.0
    assert float(_checks.reduce_loss(jnp.array([1.0, 3.0]), "sum", "op")) == 4.0
    with pytest.raises(ValueError, match=r"op: mode must be one of \('min', 'max'\)"):
        _checks.check_choice("up", ("min", "max"), "mode", "op")
