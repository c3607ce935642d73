r"""Test your own kernels and gradients against dlref, in a few lines.

* :func:`assert_op_close` — value, VJP and JVP of ``fn`` against ``reference`` on the same
  arguments, with one random cotangent and one random tangent passed through both, as
  normwise relative errors per output leaf, against :func:`tolerance` of the dtype.
* :func:`op_errors` — the same errors as numbers, without asserting (``dlref verify`` tables).
* :func:`check_op_gradients` — :func:`jax.test_util.check_grads` (finite differences, any
  order, both modes) with the step and tolerance chosen from the dtype.
* :func:`tolerance` and :data:`TOLERANCES` — the default tolerance of each dtype, and why.
* :func:`rel_err` — the normwise relative error ``max|a - b| / max|b|`` of two pytrees.
* :mod:`dlref.testing.strategies` — hypothesis strategies that draw only *valid*
  convolution, transposed-convolution and pooling configurations, and arrays without ties
  or kinks. It needs hypothesis (``pip install 'dlref[testing]'``); importing
  :mod:`dlref` or :mod:`dlref.testing` does not import it.

Example:
  >>> import jax, jax.numpy as jnp
  >>> import dlref
  >>> x = jnp.linspace(-1.0, 1.0, 8).reshape(1, 8, 1)
  >>> w = jnp.array([1.0, -2.0, 0.5]).reshape(3, 1, 1)
  >>> def mine(x, w):  # a conv written as a sum of shifted slices
  ...     return sum(x[:, t : t + 6] * w[t, 0, 0] for t in range(3))
  >>> assert_op_close(mine, lambda x, w: dlref.conv(x, w), x, w)
"""

from dlref.testing import _compare
from dlref.testing._compare import MODES as MODES
from dlref.testing._compare import TOLERANCES as TOLERANCES
from dlref.testing._compare import assert_op_close as assert_op_close
from dlref.testing._compare import check_op_gradients as check_op_gradients
from dlref.testing._compare import op_errors as op_errors
from dlref.testing._compare import rel_err as rel_err
from dlref.testing._compare import tolerance as tolerance

# The names are declared once, in the module that defines them.
__all__ = list(_compare.__all__)
