"""The `dlref verify` machinery and command line (the registered cases run in test_cli)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from dlref import cli, verify


def _case(fn, ref, **kw):
    return verify.Case("toy", "ref", fn, ref, lambda k: (jax.random.normal(k, (5,)),), **kw)


def test_value_error_is_normwise(key):
    """Rows report dlref.testing.op_errors (its semantics are tested in test_testing): one
    entry off by 0.1·max|ref| is an error of 0.1, whatever that entry's own size."""
    row = verify.run_case(_case(lambda x: x.at[0].add(0.1 * jnp.max(jnp.abs(x))), lambda x: x), key)
    assert row.value_error == pytest.approx(0.1, rel=1e-5) and not row.passed


def test_matching_case_passes(key):
    row = verify.run_case(_case(jnp.sin, jnp.sin), key)
    assert row.passed and row.value_error == 0.0 and row.grad_error == 0.0


def test_wrong_value_fails(key):
    row = verify.run_case(_case(lambda x: x * (1 + 1e-6), lambda x: x), key)
    assert not row.passed
    assert row.value_error == pytest.approx(1e-6, rel=1e-3)


def test_wrong_gradient_fails(key):
    # Same values, gradient off by a factor 2: only the gradient column catches it.
    fn = jax.custom_jvp(lambda x: x)
    fn.defjvp(lambda p, t: (p[0], 2 * t[0]))
    row = verify.run_case(_case(fn, lambda x: x), key)
    assert row.value_error == 0.0
    assert row.grad_error == pytest.approx(1.0)
    assert not row.passed


def test_crash_becomes_failing_row(key):
    def boom(x):
        raise RuntimeError("kaput")

    row = verify.run_case(_case(boom, jnp.sin), key)
    assert not row.passed and "kaput" in row.error
    assert "ERROR" in verify.format_table([row])


def test_table_lists_every_row(key):
    rows = [verify.run_case(_case(jnp.sin, jnp.sin), key)] * 2
    table = verify.format_table(rows)
    assert table.count("toy") == 2 and "2/2 ops pass" in table


def test_cli_filter_without_match(capsys):
    assert cli.main(["verify", "--filter", "no-such-op-anywhere", "--no-progress"]) == 2
    assert "no op matches" in capsys.readouterr().err


def test_cli_verify_prints_table_and_exit_code(capsys):
    # One op through the whole command: table on stdout, exit 0 when every row passes.
    assert cli.main(["verify", "--filter", "activations.relu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "activations.relu" in out and "1/1 ops pass" in out


@pytest.mark.parametrize("case", verify.all_cases(), ids=lambda c: c.op)
def test_registered_case_passes(case, key):
    """Every row of `dlref verify` passes (one test per row, so failures name the op)."""
    row = verify.run_case(case, key)
    assert row.error is None, row.error
    assert row.passed, verify.format_table([row])


def test_cli_verify_dtype_bfloat16(capsys):
    """`dlref verify --dtype bfloat16`: the rows run in bfloat16 against the float64 reference
    at dlref.testing.tolerance(bfloat16). On a subset (the whole table takes minutes; it passes
    in full, 54/54 with 4 n/a): im2col, whose gradient once crashed XLA's CPU dot (BF16 x BF16
    = F32), and the augment rows, four of which are float64/float32-only and show n/a with
    their measured reason rather than pass or fail."""
    assert cli.main(["verify", "--dtype", "bfloat16", "--filter", "im2col", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "kernels.im2col_conv" in out and "1/1 ops pass" in out and "2e-02" in out
    assert cli.main(["verify", "--dtype", "bfloat16", "--filter", "augment", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5/5 ops pass (4 n/a)" in out
    assert "n/a augment.rotate: float64/float32 only: sampling coordinates" in out


def test_cli_verify_transforms(capsys):
    """`dlref verify --transforms`: op x (jit, vmap, jvp, vjp, order 2), each cell against the
    lax counterpart under the same transformation; exit 0 when every cell passes."""
    argv = ["verify", "--transforms", "--filter", "impl='pallas'", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "convolution.conv(impl='pallas')" in out and "FAIL" not in out
    assert "cells pass; 1/1 ops" in out
