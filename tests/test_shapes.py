"""Output-size calculators against the shapes the lax ops actually produce."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

from dlref.shapes import conv_output_size, conv_transpose_output_size


@given(
    n=st.integers(1, 20),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    lo=st.integers(0, 3),
    hi=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_conv_output_size_matches_lax(n, k, s, lo, hi, d):
    if n + lo + hi < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="there is no output"):
            conv_output_size(n, k, s, (lo, hi), d)
        return
    x = jnp.zeros((1, n, 1))
    w = jnp.zeros((k, 1, 1))
    y = lax.conv_general_dilated(
        x, w, (s,), [(lo, hi)], rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC")
    )
    assert conv_output_size(n, k, s, (lo, hi), d) == y.shape[1]


def test_ceil_mode_pytorch_rule():
    # PyTorch docs example values: MaxPool1d(k=2, s=2, ceil_mode=True) on n=5 -> 3
    assert conv_output_size(5, 2, 2, ceil_mode=True) == 3
    assert conv_output_size(5, 2, 2) == 2
    # Worked by hand from PyTorch's rule (out-1)*s >= n + p_lo -> drop the last window:
    # n=4, k=2, s=2, p=1: ceil(4/2)+1 = 3; the third window starts at 4 < n + p_lo = 5, kept.
    # n=3, k=2, s=2, p=1: ceil(3/2)+1 = 3; the third window starts at 4 >= n + p_lo = 4, dropped.
    assert conv_output_size(4, 2, 2, 1, ceil_mode=True) == 3
    assert conv_output_size(3, 2, 2, 1, ceil_mode=True) == 2


def test_per_dimension_tuples():
    assert conv_output_size((224, 200), 7, 2, 3) == (112, 100)
    assert conv_output_size((5, 6), (3, 2), (1, 2), ((1, 1), 0)) == (5, 3)
    assert conv_transpose_output_size((4, 5), 3, 2, 1, (1, 0)) == (8, 9)
    with pytest.raises(ValueError, match=r"k must have one entry per dimension \(2\)"):
        conv_output_size((5, 6), (3, 3, 3))


def test_conv_transpose_output_size_inverts_conv():
    # PyTorch ConvTranspose2d docs: (in-1)*s - 2p + d(k-1) + output_padding + 1
    assert conv_transpose_output_size(4, 3, 2, 1, 1) == 8
    assert conv_output_size(8, 3, 2, 1) == 4
    # seed formula (in-1)*s + k holds only for p=0, d=1, output_padding=0 (SEED_ERRATA 2)
    assert conv_transpose_output_size(4, 3, 2) == (4 - 1) * 2 + 3
    assert conv_transpose_output_size(4, 3, 2, 1) != (4 - 1) * 2 + 3


def test_bad_input():
    with pytest.raises(ValueError, match="stride s must be >= 1, got 0"):
        conv_output_size(5, 3, 0)
    with pytest.raises(ValueError, match="kernel size k must be >= 1"):
        conv_output_size(5, 0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        conv_output_size(5, 3, 1, -1)
    with pytest.raises(TypeError, match="input size n must be an int"):
        conv_output_size(5.0, 3)
    with pytest.raises(ValueError, match="output_padding=2 must be smaller than either stride"):
        conv_transpose_output_size(4, 3, 2, 0, 2)
    with pytest.raises(ValueError, match="leaves no output"):
        conv_transpose_output_size(1, 1, 1, 1)
