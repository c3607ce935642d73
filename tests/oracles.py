"""NumPy loop oracles for convolution and pooling, written apart from dlref (small inputs only).

Plain loops over output positions, kernel taps and channels, following the textbook / PyTorch
C++ definitions literally, with their own output-size arithmetic (nothing from dlref), so a bug
cannot hide in both. Channels-last arrays; ``padding`` is a tuple of ``(lo, hi)`` pairs.
"""

from __future__ import annotations

import itertools

import numpy as np


def _pool_out_size(n, k, s, lo, hi, d, ceil_mode):
    # PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h), with (lo, hi) padding.
    span = n + lo + hi - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + lo:
        out -= 1
    return out


def _taps(o, k, stride, padding, dilation, sizes):
    """The kernel taps ``t`` of output position ``o`` and the input positions
    ``i = o*s + t*d - lo`` they read, for the taps whose ``i`` lies inside ``sizes``."""
    for t in itertools.product(*map(range, k)):
        i = [oo * s + tt * d - lo for oo, tt, s, d, (lo, _) in zip(o, t, stride, dilation, padding)]
        if all(0 <= ii < n for ii, n in zip(i, sizes)):
            yield t, i


def conv(x, w, stride, padding, dilation, groups):
    """y[n, o, co] = sum_t sum_ci x[n, o*s + t*d - lo, g*cin_g + ci] w[t, ci, co]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = w.ndim - 2
    k, cin_g, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    out = [
        (n + lo + hi - d * (kk - 1) - 1) // s + 1
        for n, kk, s, d, (lo, hi) in zip(x.shape[1:-1], k, stride, dilation, padding)
    ]
    y = np.zeros((x.shape[0], *out, cout))
    for b in range(x.shape[0]):
        for o in itertools.product(*map(range, out)):
            for co in range(cout):
                g = co // cout_g
                acc = 0.0
                for t, i in _taps(o, k, stride, padding, dilation, x.shape[1:-1]):
                    for ci in range(cin_g):
                        acc += x[(b, *i, g * cin_g + ci)] * w[(*t, ci, co)]
                y[(b, *o, co)] = acc
    return y


def conv_vjp(x, w, ct, stride, padding, dilation, groups):
    """Both cotangents of :func:`conv`, by the same loops: every product x[i]·w[t] that made
    y[o] sends ct[o]·w[t] to dx[i] and ct[o]·x[i] to dw[t]."""
    x, w, ct = (np.asarray(a, np.float64) for a in (x, w, ct))
    nd = w.ndim - 2
    k, cin_g, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for b in range(x.shape[0]):
        for o in itertools.product(*map(range, ct.shape[1:-1])):
            for co in range(cout):
                g = co // cout_g
                for t, i in _taps(o, k, stride, padding, dilation, x.shape[1:-1]):
                    for ci in range(cin_g):
                        dx[(b, *i, g * cin_g + ci)] += ct[(b, *o, co)] * w[(*t, ci, co)]
                        dw[(*t, ci, co)] += ct[(b, *o, co)] * x[(b, *i, g * cin_g + ci)]
    return dx, dw


def conv_transpose(x, w, stride, padding, output_padding, dilation, groups):
    """Scatter form (d2l 14.10): out[o*s + t*d - lo, g*cout_g + co] += x[o, ci] w[t, co, ci]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = w.ndim - 2
    k, cout_g, cin = w.shape[:nd], w.shape[-2], w.shape[-1]
    cin_g = cin // groups
    out = [
        (n - 1) * s - lo - hi + d * (kk - 1) + a + 1
        for n, kk, s, d, a, (lo, hi) in zip(
            x.shape[1:-1], k, stride, dilation, output_padding, padding
        )
    ]
    y = np.zeros((x.shape[0], *out, cout_g * groups))
    for b in range(x.shape[0]):
        for o in itertools.product(*map(range, x.shape[1:-1])):
            for ci in range(cin):
                g = ci // cin_g
                for t, i in _taps(o, k, stride, padding, dilation, out):
                    for co in range(cout_g):
                        y[(b, *i, g * cout_g + co)] += x[(b, *o, ci)] * w[(*t, co, ci)]
    return y


def max_pool(x, ct, window, stride, padding, dilation, ceil_mode):
    """PyTorch's max_pool loops: (value, gradient for cotangent ``ct``).

    Only input positions are visited (padding is -inf, never a max); the strict ``>`` keeps the
    first maximum in row-major order, which receives the window's cotangent.
    """
    x = np.asarray(x, np.float64)
    sizes = x.shape[1:-1]
    out = [
        _pool_out_size(n, k, s, lo, hi, d, ceil_mode)
        for n, k, s, d, (lo, hi) in zip(sizes, window, stride, dilation, padding)
    ]
    y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf)
    dx = np.zeros_like(x)
    ct = None if ct is None else np.asarray(ct, np.float64)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            for o in itertools.product(*map(range, out)):
                best, where = -np.inf, None
                for t in itertools.product(*map(range, window)):
                    i = tuple(
                        oo * s + tt * d - lo
                        for oo, tt, s, d, (lo, _) in zip(o, t, stride, dilation, padding)
                    )
                    if all(0 <= ii < n for ii, n in zip(i, sizes)):
                        v = x[(b, *i, c)]
                        if where is None or v > best:
                            best, where = v, i
                y[(b, *o, c)] = best
                if ct is not None:
                    dx[(b, *where, c)] += ct[(b, *o, c)]
    return y, dx


def avg_pool(x, ct, window, stride, padding, ceil_mode, count_include_pad):
    """PyTorch's avg_pool C++ loops (AvgPoolKernel.cpp), generalised to (lo, hi) padding.

    ``hend = min(hstart + k, n + pad_hi)``; ``pool_size = hend - hstart`` (declared padding
    counted, the ceil overhang not); then clipped to the input for the sum and for the divisor
    with ``count_include_pad=False``.
    """
    x = np.asarray(x, np.float64)
    sizes = x.shape[1:-1]
    out = [
        _pool_out_size(n, k, s, lo, hi, 1, ceil_mode)
        for n, k, s, (lo, hi) in zip(sizes, window, stride, padding)
    ]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    dx = np.zeros_like(x)
    ct = None if ct is None else np.asarray(ct, np.float64)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            for o in itertools.product(*map(range, out)):
                ranges, pool_size, count = [], 1, 1
                for oo, k, s, n, (lo, hi) in zip(o, window, stride, sizes, padding):
                    start = oo * s - lo
                    end = min(start + k, n + hi)
                    pool_size *= end - start
                    start, end = max(start, 0), min(end, n)
                    count *= end - start
                    ranges.append(range(start, end))
                divide = pool_size if count_include_pad else count
                total = 0.0
                for i in itertools.product(*ranges):
                    total += x[(b, *i, c)]
                y[(b, *o, c)] = total / divide
                if ct is not None:
                    for i in itertools.product(*ranges):
                        dx[(b, *i, c)] += ct[(b, *o, c)] / divide
    return y, dx
