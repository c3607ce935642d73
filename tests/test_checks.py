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


def test_check_real_accepts_numbers_and_real_arrays_only():
    import jax
    import numpy as np

    for ok in (1, 2.5, np.float32(0.1), np.int64(3), jnp.array(0.5), jnp.array(2, jnp.int32)):
        _checks.check_real(ok, "v", "op")
    _checks.check_real(jnp.ones(3), "v", "op", scalar=False)
    jax.jit(lambda t: _checks.check_real(t, "v", "op") or t)(1.0)  # a traced scalar
    for bad, err in (
        ("0.1", r"op: v must be a number, got '0.1'"),
        (True, r"op: v must be a number, got True"),
        (None, r"op: v must be a number, got None"),
        (1j, r"op: v must be a number"),
        (jnp.array(True), r"op: v must be a real number, got an array of dtype bool"),
    ):
        with pytest.raises(TypeError, match=err):
            _checks.check_real(bad, "v", "op")
    with pytest.raises(ValueError, match=r"op: v must be a scalar, got an array of shape \(2,\)"):
        _checks.check_real(jnp.ones(2), "v", "op")
    with pytest.raises(TypeError, match=r"op: rate must be a number, got '0.5'"):
        _checks.check_in_range("0.5", 0, 1, "rate", "op")  # before: float("0.5") passed


def test_check_key_as_array_concrete_range():
    import jax
    import numpy as np

    _checks.check_key(jax.random.key(0), "op")
    _checks.check_key(jax.random.PRNGKey(0), "op")  # legacy raw uint32 key
    jax.vmap(lambda k: _checks.check_key(k, "op") or 0)(jax.random.split(jax.random.key(0), 2))
    for bad in (0, None, jnp.zeros(2), jax.random.split(jax.random.key(0), 2)):
        with pytest.raises(TypeError, match="op: key must be one jax.random key"):
            _checks.check_key(bad, "op")
    assert _checks.as_array([1.0, 2.0], "x", "op").shape == (2,)
    for bad in ("abc", None, {"a": 1}, object()):
        with pytest.raises(TypeError, match="op: x must be an array"):
            _checks.as_array(bad, "x", "op")
    with pytest.raises(ValueError, match="op: x must be a rectangular array"):
        _checks.as_array([[1.0], [1.0, 2.0]], "x", "op")
    assert _checks.concrete_range(jnp.array([3.0, float("nan"), -1.0])) == (-1.0, 3.0)
    assert _checks.concrete_range(np.array([2, 7])) == (2, 7)
    assert _checks.concrete_range(jnp.array([float("nan")])) is None  # NaN is let through
    assert _checks.concrete_range(jnp.zeros((0,))) is None
    assert jax.jit(lambda x: jnp.float32(_checks.concrete_range(x) is None))(1.0) == 1.0


def test_choice_and_axes_type_errors():
    with pytest.raises(TypeError, match=r"op: mode must be one of \('min', 'max'\), got None"):
        _checks.check_choice(None, ("min", "max"), "mode", "op")
    with pytest.raises(TypeError, match=r"op: mode must be one of .*got \['min'\]"):
        _checks.check_choice(["min"], ("min", "max"), "mode", "op")  # unhashable: no crash
    with pytest.raises(ValueError, match=r"op: ddof must be one of \(0, 1\), got True"):
        _checks.check_choice(True, (0, 1), "ddof", "op")  # True == 1, but not a choice
    with pytest.raises(ValueError, match=r"op: ddof must be one of \(0, 1\)"):
        _checks.check_choice(jnp.ones(2), (0, 1), "ddof", "op")  # elementwise ==: no crash
    with pytest.raises(TypeError, match=r"op: reduction must be one of .*got 3"):
        _checks.check_reduction(3, "op")
    assert _checks.normalize_axes((), 2, "op", allow_empty=True) == ()
    assert _checks.normalize_axes((-1, 0), 3, "op", name="dims") == (0, 2)
    with pytest.raises(ValueError, match="op: dims 3 is out of range for an input of rank 2"):
        _checks.normalize_axes(3, 2, "op", name="dims")
    with pytest.raises(ValueError, match="op: axis must name at least one axis"):
        _checks.normalize_axes((), 2, "op")
