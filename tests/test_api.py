"""Conventions over every public name of dlref (the API contract, docs/contract.md)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import dlref

# Public modules whose functions are not all re-exported from the package root; their public
# names (``__all__``, else every public function defined there) obey the same conventions.
SUBMODULES = ["dlref.nn", "dlref.train", "dlref.experiments", "dlref.models", "dlref.kernels"]

# Optional arguments that docs/contract.md places positionally (the API contract wins over the
# keyword-only habit): {function name: {argument names}}.
POSITIONAL_OPTIONAL = {
    "leaky_relu": {"negative_slope"},
    "softmax": {"axis"},
    "log_softmax": {"axis"},
    "hinge_loss": {"margin"},
    "huber_loss": {"delta"},
    "smooth_l1_loss": {"beta"},
    "min_max_scale": {"axis", "feature_range"},
    "standardize": {"axis"},
    "fold_batch_norm": {"eps"},
    "conv_output_size": {"s", "p", "d"},
    "conv_transpose_output_size": {"s", "p", "output_padding", "d"},
}


def _is_function(obj) -> bool:
    return inspect.isfunction(obj) or (callable(obj) and hasattr(obj, "__wrapped__"))


def _public_functions():
    out = {}
    for name in dlref.__all__:
        obj = getattr(dlref, name)
        if _is_function(obj):
            out[name] = obj
    for module_name in SUBMODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and _is_function(v) and v.__module__ == module_name
        ]
        for n in names:
            obj = getattr(module, n)
            if _is_function(obj):
                out.setdefault(n, obj)
    return sorted(out.items())


# Every public submodule of dlref (the kernels ship as dlref.kernels from kernels/, outside
# dlref's own directory, so they are named here too).
PUBLIC_SUBMODULES = sorted(
    {m.name for m in pkgutil.iter_modules(dlref.__path__) if not m.name.startswith("_")}
    | {"kernels"}
)


def test_public_submodules_are_found():
    assert {"convolution", "pooling", "regularize", "model_summary", "testing"} <= set(
        PUBLIC_SUBMODULES
    )


def test_no_submodule_is_named_like_an_export():
    """`import dlref.<name> as m` binds dlref.<name>: an export of that name would shadow it."""
    clashes = [m for m in PUBLIC_SUBMODULES if m in dlref.__all__]
    assert clashes == []


@pytest.mark.parametrize("name", PUBLIC_SUBMODULES)
def test_import_submodule_as_gives_the_module(name):
    namespace: dict = {}
    exec(f"import dlref.{name} as m", namespace)
    assert isinstance(namespace["m"], types.ModuleType)
    assert namespace["m"].__name__ == f"dlref.{name}"


def test_all_names_exist():
    missing = [n for n in dlref.__all__ if not hasattr(dlref, n)]
    assert missing == []


@pytest.mark.parametrize("name,fn", _public_functions(), ids=lambda v: getattr(v, "__name__", v))
def test_docstring_has_args_and_returns(name, fn):
    doc = inspect.getdoc(fn) or ""
    if inspect.signature(fn).parameters:
        assert "Args:" in doc, f"{name}: docstring lacks 'Args:'"
    assert "Returns:" in doc, f"{name}: docstring lacks 'Returns:'"


@pytest.mark.parametrize("name,fn", _public_functions(), ids=lambda v: getattr(v, "__name__", v))
def test_key_first_and_optional_keyword_only(name, fn):
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params]
    if "key" in names:
        assert names[0] == "key", f"{name}: the random key must be the first argument"
    allowed = POSITIONAL_OPTIONAL.get(name, set())
    for p in params:
        if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD:
            assert p.name in allowed, f"{name}: optional argument {p.name!r} must be keyword-only"


@pytest.mark.parametrize("name", [n for n in dlref.__all__ if inspect.isclass(getattr(dlref, n))])
def test_classes_documented(name):
    assert inspect.getdoc(getattr(dlref, name)), f"{name}: class has no docstring"


# ============================================================================================
# Malformed arguments (issue 11): every public callable, called with one argument replaced by
# something malformed (wrong rank, dtype, sign, type or length; empty; NaN; inf), either
# returns or raises ValueError / TypeError whose message begins with its name (a class: the
# class name); nothing else escapes. NaN in a floating array argument is not an error: the call
# returns, and NaN reaches the output (docs/contract.md: NaN propagates).
#
# The callables are discovered (dlref.__all__ and the public names of PROPERTY_MODULES); each
# needs one row in BASE, a valid call on tiny inputs, which is then mutated one argument at a
# time (the defaults of the arguments it leaves out included). Hypothesis draws which
# mutations run (derandomized in CI); NaN in the first floating argument always runs.

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from hypothesis import Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROPERTY_MODULES = SUBMODULES + ["dlref.testing", "dlref.testing.strategies"]


def _public_callables() -> dict[str, object]:
    """Qualified name -> every public function and class (constructors are called too)."""
    out = {}
    for name in dlref.__all__:
        obj = getattr(dlref, name)
        if inspect.isclass(obj) or _is_function(obj):
            out[name] = obj
    for module_name in PROPERTY_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and (inspect.isclass(v) or _is_function(v))
            and getattr(v, "__module__", None) == module_name
        ]
        for n in names:
            obj = getattr(module, n)
            if inspect.isclass(obj) or _is_function(obj):
                out[f"{module_name}.{n}"] = obj
    return out


CALLABLES = _public_callables()


# ---- valid base calls on tiny inputs (fresh values per call: models are stateful) ----------


def _u(*shape, lo=-1.0, hi=1.0, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(lo, hi, shape), jnp.float32)


def _probs(*shape, seed=0):
    return jax.nn.softmax(_u(*shape, seed=seed), axis=-1)


def _key():
    return jax.random.key(0)


def _rngs():
    from flax import nnx

    return nnx.Rngs(0)


def _tree():
    return {"w": _u(2, 2), "b": _u(2, seed=1)}


def _img(*shape):
    return _u(*shape, lo=0.0, hi=1.0)


def _policy():
    return [dlref.Transform("flip_left_right")]


def _mlp():
    from dlref.nn import MLP

    return MLP(4, (4,), 2, rngs=_rngs())


def _digits_xy():
    return _u(8, 4), jnp.asarray(np.arange(8) % 2, jnp.int32)


def _checkpoint(path):
    from dlref.train import save_checkpoint

    model = _mlp()
    save_checkpoint(model, path)
    return model


_PLAIN_STATE = lambda: dlref.BatchNormState.create(3)  # noqa: E731
_ROW = dict(
    op="conv",
    shape=(1, 2),
    dtype="float32",
    receptive_field=None,
    jump=None,
    start=None,
    params=0,
    non_trainable=0,
    flops=0,
    bytes=0,
)
_TOTALS = dict(
    params=0,
    non_trainable=0,
    flops=0,
    activation_bytes=0,
    receptive_field=None,
    jump=None,
    convention="macs",
)


def _call(*args, **kwargs):
    return lambda: (args, kwargs)


# name -> () -> (args, kwargs). A lambda per row so that every call gets fresh values.
BASE: dict[str, Callable[[], tuple[tuple, dict]]] = {
    # activations
    **{n: (lambda: ((_u(2, 3),), {})) for n in ("sigmoid", "tanh", "relu", "softplus")},
    "leaky_relu": lambda: ((_u(2, 3), 0.1), {}),
    "softmax": lambda: ((_u(2, 3),), {}),
    "log_softmax": lambda: ((_u(2, 3),), {}),
    # losses
    "zero_one_loss": lambda: ((_u(2, 3), jnp.array([0, 2])), {}),
    "cross_entropy": lambda: ((_probs(2, 3), jnp.array([0, 2])), {}),
    "softmax_cross_entropy": lambda: ((_u(2, 3), jnp.array([0, 2])), {}),
    "sigmoid_binary_cross_entropy": lambda: ((_u(2, 3), _u(2, 3, lo=0.0, seed=1)), {}),
    "kl_divergence": lambda: ((_probs(2, 3), _probs(2, 3, seed=1)), {}),
    "hinge_loss": lambda: ((_u(2, 3), jnp.sign(_u(2, 3, seed=1))), {}),
    "multiclass_hinge_loss": lambda: ((_u(2, 3), jnp.array([0, 2])), {}),
    "exponential_loss": lambda: ((_u(2, 3), jnp.sign(_u(2, 3, seed=1))), {}),
    **{
        n: (lambda: ((_u(2, 3), _u(2, 3, seed=1)), {}))
        for n in ("l1_loss", "l2_loss", "huber_loss", "smooth_l1_loss")
    },
    # norm
    "BatchNormState": lambda: ((jnp.zeros(3), jnp.ones(3)), {}),
    "batch_norm": lambda: (
        (_u(4, 3), _u(3, seed=1), _u(3, seed=2), _PLAIN_STATE()),
        {"train": True},
    ),
    "fold_batch_norm": lambda: ((_u(1, 1, 2, 3), _u(3), _PLAIN_STATE(), _u(3), _u(3)), {}),
    "layer_norm": lambda: ((_u(2, 3),), {}),
    "group_norm": lambda: ((_u(2, 2, 4), 2), {}),
    "instance_norm": lambda: ((_u(2, 2, 3),), {}),
    "min_max_scale": lambda: ((_u(3, 2), 0), {}),
    "standardize": lambda: ((_u(3, 2), 0), {}),
    # regularize
    "dropout": lambda: ((_key(), _u(2, 3), 0.5), {}),
    "gaussian_dropout": lambda: ((_key(), _u(2, 3), 0.5), {}),
    "l1_penalty": lambda: ((_tree(),), {}),
    "l2_penalty": lambda: ((_tree(),), {}),
    "clip_by_value": lambda: ((_tree(), -0.5, 0.5), {}),
    "clip_by_global_norm": lambda: ((_tree(), 1.0), {}),
    "EarlyStopping": lambda: ((2,), {}),
    # shapes
    "conv_output_size": lambda: ((5, 3), {}),
    "conv_transpose_output_size": lambda: ((4, 3), {}),
    "receptive_field": lambda: (([(3, 1, 1), (3, 2, 0)],), {}),
    "ReceptiveField": lambda: ((3, 1, 0.0), {}),
    "conv_params": lambda: ((3, 8, 3), {}),
    "ParamCount": lambda: ((10,), {}),
    "conv_flops": lambda: ((3, 8, 3, 8), {}),
    "pool_flops": lambda: ((3, 2, 8), {}),
    "activation_flops": lambda: (((1, 4, 4, 3),), {}),
    "batch_norm_flops": lambda: (((1, 4, 4, 3),), {}),
    "activation_bytes": lambda: (((1, 4, 4, 3),), {}),
    # model_summary
    "summary": lambda: ((lambda x: dlref.relu(x), _u(1, 4, 4, 2)), {"print_fn": None}),
    "Summary": lambda: (((), dlref.SummaryTotals(**_TOTALS)), {}),
    "SummaryRow": lambda: ((), dict(_ROW)),
    "SummaryTotals": lambda: ((), dict(_TOTALS)),
    # convolution, pooling
    "conv": lambda: ((_u(1, 5, 5, 2), _u(3, 3, 2, 4, seed=1)), {}),
    "conv_transpose": lambda: ((_u(1, 5, 5, 2), _u(3, 3, 4, 2, seed=1)), {}),
    "depthwise_separable_conv": lambda: (
        (_u(1, 5, 5, 2), _u(3, 3, 1, 2, seed=1), _u(1, 1, 2, 4, seed=2)),
        {},
    ),
    "max_pool": lambda: ((_u(1, 4, 4, 2), 2), {}),
    "avg_pool": lambda: ((_u(1, 4, 4, 2), 2), {}),
    "global_max_pool": lambda: ((_u(1, 4, 4, 2),), {}),
    "global_avg_pool": lambda: ((_u(1, 4, 4, 2),), {}),
    "max_pool_backward": lambda: ((_u(1, 4, 4, 2), _u(1, 2, 2, 2, seed=1), 2), {}),
    "avg_pool_backward": lambda: ((_u(1, 4, 4, 2), _u(1, 2, 2, 2, seed=1), 2), {}),
    # augment
    "Transform": lambda: (("flip_left_right",), {}),
    "adjust_brightness": lambda: ((_img(4, 4, 3), 0.1), {}),
    "adjust_contrast": lambda: ((_img(4, 4, 3), 1.2), {}),
    "adjust_saturation": lambda: ((_img(4, 4, 3), 1.2), {}),
    "adjust_value": lambda: ((_img(4, 4, 3), 1.2), {}),
    "affine": lambda: ((_img(4, 4, 3), jnp.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])), {}),
    "augment_batch": lambda: ((_key(), _img(2, 4, 4, 3), _policy()), {}),
    "expand_dataset": lambda: ((_key(), _img(2, 4, 4, 3), jnp.array([0, 1]), 2, _policy()), {}),
    "fit_pca_color": lambda: ((_img(2, 4, 4, 3),), {}),
    "flip_left_right": lambda: ((_img(4, 4, 3),), {}),
    "flip_up_down": lambda: ((_img(4, 4, 3),), {}),
    "gaussian_noise": lambda: ((_key(), _img(4, 4, 3), 0.1), {}),
    "hsv_to_rgb": lambda: ((_img(4, 4, 3),), {}),
    "rgb_to_hsv": lambda: ((_img(4, 4, 3),), {}),
    "pca_color": lambda: ((_key(), _img(4, 4, 3), jnp.ones(3), jnp.eye(3)), {}),
    "random_brightness": lambda: ((_key(), _img(4, 4, 3), 0.1), {}),
    "random_contrast": lambda: ((_key(), _img(4, 4, 3), 0.8, 1.2), {}),
    "random_saturation": lambda: ((_key(), _img(4, 4, 3), 0.8, 1.2), {}),
    "random_value": lambda: ((_key(), _img(4, 4, 3), 0.8, 1.2), {}),
    "random_scale": lambda: ((_key(), _img(4, 4, 3), 0.8, 1.2), {}),
    "random_crop": lambda: ((_key(), _img(4, 4, 3), (2, 2)), {}),
    "random_resized_crop": lambda: ((_key(), _img(4, 4, 3), (2, 2)), {}),
    "random_flip_left_right": lambda: ((_key(), _img(4, 4, 3)), {}),
    "random_flip_up_down": lambda: ((_key(), _img(4, 4, 3)), {}),
    "random_gaussian_noise": lambda: ((_key(), _img(4, 4, 3), 0.1), {}),
    "random_rotate": lambda: ((_key(), _img(4, 4, 3), 10.0), {}),
    "random_salt_and_pepper": lambda: ((_key(), _img(4, 4, 3), 0.1), {}),
    "random_translate": lambda: ((_key(), _img(4, 4, 3), 0.25), {}),
    "rotate": lambda: ((_img(4, 4, 3), 10.0), {}),
    "salt_and_pepper": lambda: ((_key(), _img(4, 4, 3), 0.1), {}),
    "scale": lambda: ((_img(4, 4, 3), 1.5), {}),
    "translate": lambda: ((_img(4, 4, 3), (1, 1)), {}),
    # nn
    "dlref.nn.rnn_cell": lambda: (
        ({"w_ih": _u(3, 4), "w_hh": _u(4, 4, seed=1), "b": _u(4, seed=2)}, _u(2, 4), _u(2, 3)),
        {},
    ),
    "dlref.nn.lstm_cell": lambda: (
        (
            {"w_ih": _u(3, 16), "w_hh": _u(4, 16, seed=1), "b": _u(16, seed=2)},
            (_u(2, 4), _u(2, 4, seed=3)),
            _u(2, 3),
        ),
        {},
    ),
    "dlref.nn.scan_rnn": lambda: (
        (
            importlib.import_module("dlref.nn").rnn_cell,
            {"w_ih": _u(3, 4), "w_hh": _u(4, 4, seed=1), "b": _u(4, seed=2)},
            _u(2, 4),
            _u(2, 5, 3),
        ),
        {},
    ),
    "dlref.nn.Conv": lambda: ((2, 4, 3), {"rngs": _rngs()}),
    "dlref.nn.BatchNorm": lambda: ((3,), {}),
    "dlref.nn.Dropout": lambda: ((0.5,), {"rngs": _rngs()}),
    "dlref.nn.MLP": lambda: ((4, (4,), 2), {"rngs": _rngs()}),
    "dlref.nn.CNN": lambda: ((1, 3), {"channels": (4,), "rngs": _rngs()}),
    "dlref.nn.ResNetBlock": lambda: ((4, 4), {"rngs": _rngs()}),
    "dlref.nn.RNN": lambda: ((3, 4), {"rngs": _rngs()}),
    "dlref.nn.LSTM": lambda: ((3, 4), {"rngs": _rngs()}),
    # train
    "dlref.train.Splits": lambda: ((_digits_xy(), _digits_xy(), _digits_xy()), {}),
    "dlref.train.History": lambda: ((), {}),
    "dlref.train.load_digits": lambda: ((), {}),
    "dlref.train.adding_problem": lambda: ((_key(), 4, 5), {}),
    "dlref.train.fit": lambda: (
        (_mlp(), importlib.import_module("optax").sgd(0.1), _digits_xy()),
        {"epochs": 1, "batch_size": 4, "progress": False},
    ),
    "dlref.train.evaluate": lambda: ((_mlp(), _digits_xy()), {}),
    "dlref.train.save_checkpoint": lambda: ((_mlp(), "saved.npz"), {}),
    "dlref.train.load_checkpoint": lambda: ((_checkpoint("base.npz"), "base.npz"), {}),
    "dlref.train.data_parallel_mesh": lambda: ((), {}),
    "dlref.train.cli_main": lambda: ((["--help"],), {}),
    # models (module constructors run under nnx.eval_shape: see ABSTRACT)
    "dlref.models.adaptive_avg_pool": lambda: ((_u(1, 4, 4, 2), (2, 2)), {}),
    "dlref.models.LeNet5": lambda: ((), {"rngs": _rngs()}),
    "dlref.models.AlexNet": lambda: ((10,), {"rngs": _rngs()}),
    "dlref.models.VGG16": lambda: ((10,), {"rngs": _rngs()}),
    "dlref.models.BasicBlock": lambda: ((4, 4, 1), {"rngs": _rngs()}),
    "dlref.models.Bottleneck": lambda: ((16, 4, 1), {"rngs": _rngs()}),
    "dlref.models.ResNet": lambda: (
        (importlib.import_module("dlref.models").BasicBlock, (1, 1, 1, 1), 10),
        {"rngs": _rngs()},
    ),
    "dlref.models.build": lambda: (("lenet5",), {}),
    "dlref.models.input_shape": lambda: (("lenet5",), {}),
    "dlref.models.param_count": lambda: (
        (importlib.import_module("dlref.models").build("lenet5"),),
        {},
    ),
    "dlref.models.model_summary": lambda: (
        (importlib.import_module("dlref.models").build("lenet5"),),
        {"x": jnp.zeros((1, 32, 32, 1)), "print_fn": None},
    ),
    "dlref.models.cli_main": lambda: ((["lenet5"],), {}),
    # experiments (tiny settings: each accepted call takes a second or two)
    **{
        f"dlref.experiments.{n}": _call(**kw)
        for n, kw in {
            "activation_properties": dict(names=("relu",), limit=10.0),
            "activation_convergence": dict(
                activations=("tanh",), hidden=4, depth=1, batch_size=4, steps=2, monitor=8
            ),
            "relu_sparsity": dict(depth=1, width=4, batch_size=4, repeats=1),
            "linear_output_regression": dict(hidden=4, steps=1),
            "pointwise_conv_nonlinearity": dict(channels=(2, 2), size=2, batch=1),
            "batch_size_effect": dict(batch_sizes=(256,), epochs=1),
            "gradient_noise": dict(batch_sizes=(1, 4), samples=2, hidden=2),
            "memory_budget_batch": dict(budget_bytes=2**20, model="mlp", xla_batches=()),
            "batch_size_scaling": dict(batch_sizes=(16,), max_steps=2),
            "feature_normalization": dict(max_steps=2),
            "bn_scale_invariance": dict(scales=(2.0,), steps=1, width=2, batch_size=4),
            "bn_saturation": dict(depth=1, width=2, batch_size=4),
            "bn_full_batch_statistics": dict(hidden=2, batch_size=512),
            "lr_sensitivity": dict(
                learning_rates=(0.1,), epochs=1, depth=1, width=4, batch_size=256
            ),
            "dropout_bn_variance_shift": dict(epochs=1, batch_size=256),
            "vanishing_gradients": dict(depth=2, width=4, batch_size=4, variants=("relu",)),
            "exploding_gradients": dict(depth=2, width=2, batch_size=2, steps=1, overflow_depth=1),
            "gradient_norms_through_time": dict(length=3, hidden=4, batch_size=2),
            "pooling_translation_invariance": dict(shifts=((0, 1),), channels=1, n_images=2),
            "pool_before_conv": dict(channels=1, epochs=1, batch_size=512),
            "dropout_ensemble": dict(
                samples=2, hidden=2, steps=1, batch_size=2, n_linear=1, n_eval=2
            ),
            "fitting_regimes": dict(
                n_train=32, steps=4, eval_every=2, patience=1, augment_factor=1
            ),
            "parameter_sharing": dict(
                image_size=2, features=2, kernel=1, input_size=1, hidden=1, lengths=(1,)
            ),
        }.items()
    },
    # kernels
    "dlref.kernels.ConvBlocks": lambda: ((), {}),
    "dlref.kernels.TuningEntry": lambda: (
        ("cpu", "sig", "float32", importlib.import_module("dlref.kernels").ConvBlocks(), False),
        {},
    ),
    "dlref.kernels.TuningTable": lambda: ((), {}),
    "dlref.kernels.choose_blocks": lambda: ((4, 8, 16, jnp.float32), {}),
    "dlref.kernels.default_table": lambda: ((), {}),
    "dlref.kernels.im2col_conv": lambda: ((_u(1, 5, 5, 2), _u(3, 3, 2, 4, seed=1)), {}),
    "dlref.kernels.pallas_conv": lambda: ((_u(1, 5, 5, 2), _u(3, 3, 2, 4, seed=1)), {}),
    "dlref.kernels.pallas_conv_input_grad": lambda: (
        (_u(1, 3, 4), _u(3, 2, 4, seed=1), (1, 5, 2)),
        {},
    ),
    "dlref.kernels.pallas_conv_weight_grad": lambda: ((_u(1, 5, 2), _u(1, 3, 4, seed=1), 3), {}),
    "dlref.kernels.im2col_input_grad": lambda: (
        (_u(1, 3, 4), _u(3, 2, 4, seed=1), (1, 5, 2)),
        {},
    ),
    "dlref.kernels.im2col_weight_grad": lambda: ((_u(1, 5, 2), _u(1, 3, 4, seed=1), 3), {}),
    "dlref.kernels.im2col": lambda: ((_u(1, 5, 2), 3), {}),
    "dlref.kernels.col2im": lambda: ((_u(1, 3, 6), (1, 5, 2), 3), {}),
    "dlref.kernels.conv_geometry": lambda: (
        (_u(1, 5, 2), _u(3, 2, 4, seed=1), 1, 0, 1, 1, "conv_geometry"),
        {},
    ),
    "dlref.kernels.ConvGeometry": lambda: (((5,), (3,), (1,), ((0, 0),), (1,), (3,), 1, 2, 4), {}),
    # testing
    "dlref.testing.assert_op_close": lambda: ((jnp.sin, jnp.sin, _u(3)), {}),
    "dlref.testing.check_op_gradients": lambda: ((jnp.sin, _u(3)), {}),
    "dlref.testing.rel_err": lambda: ((_u(3), _u(3, seed=1)), {}),
    "dlref.testing.op_errors": lambda: ((jnp.sin, jnp.sin, _u(3)), {}),
    "dlref.testing.tolerance": lambda: ((jnp.float32,), {}),
    "dlref.testing.strategies.ConvConfig": lambda: (((1, 5, 2), (3, 2, 4), (1,), 0, (1,), 1), {}),
    "dlref.testing.strategies.ConvTransposeConfig": lambda: (
        ((1, 5, 2), (3, 2, 4), (1,), 0, (0,), (1,), 1),
        {},
    ),
    "dlref.testing.strategies.PoolConfig": lambda: (
        ("max", (1, 4, 2), (2,), (2,), ((0, 0),), (1,), False, True),
        {},
    ),
    "dlref.testing.strategies.arrays": lambda: (((2, 3),), {}),
    "dlref.testing.strategies.conv_configs": lambda: ((), {}),
    "dlref.testing.strategies.conv_transpose_configs": lambda: ((), {}),
    "dlref.testing.strategies.pool_configs": lambda: ((), {}),
}

# Constructors of flax NNX modules run under nnx.eval_shape: their validation runs, no weights
# are initialized (VGG16 alone has 1.4e8).
ABSTRACT = {
    n
    for n, obj in CALLABLES.items()
    if inspect.isclass(obj) and issubclass(obj, importlib.import_module("flax.nnx").Module)
}

# Exceptions other than ValueError / TypeError that a callable documents (with the reason).
ALLOWED_EXTRA: dict[str, tuple[type[BaseException], ...]] = {
    # assertion helpers: AssertionError is their answer "not close"
    "dlref.testing.assert_op_close": (AssertionError,),
    "dlref.testing.check_op_gradients": (AssertionError,),
    # argparse entry points: a bad command line exits with status 2 (SystemExit)
    "dlref.train.cli_main": (SystemExit,),
    "dlref.models.cli_main": (SystemExit,),
    # a checkpoint path that does not exist: Python's FileNotFoundError
    "dlref.train.load_checkpoint": (FileNotFoundError,),
}

# Callables whose output does not carry NaN in their first floating argument through to the
# result by design (they read shapes, or that argument only selects): NaN there must not raise,
# but need not reach the output.
NAN_BLIND: dict[str, str] = {
    "avg_pool_backward": "dL/dx depends on x only through its shape (ct carries the values)",
    "max_pool_backward": "x only picks each window's maximum (a NaN is the maximum, docstring)",
    "dlref.testing.op_errors": "NaN at the same places in fn and reference is agreement, 0",
    "summary": "a per-layer table of shapes, parameters and FLOPs",
    "dlref.models.model_summary": "a per-layer table of shapes, parameters and FLOPs",
}

SECONDS_PER_CALL = 120  # a hang is a failure (e.g. a loop whose step a mutation set to 0)


# ---- mutations ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutation:
    param: str
    label: str
    make: Callable[[object], object]  # the base value -> the malformed value
    nan: bool = False  # NaN in a floating array: must return, with NaN in the output


def _is_key(v) -> bool:
    return isinstance(v, jax.Array) and jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key)


def _array_mutations(x) -> list[tuple[str, Callable, bool]]:
    x = jnp.asarray(x)
    out = [
        ("rank + 1", lambda v: jnp.asarray(v)[None], False),
        ("rank - 1", lambda v: jnp.asarray(v)[0] if jnp.ndim(v) else jnp.asarray(v)[None], False),
        ("empty", lambda v: jnp.zeros((0,) + jnp.shape(v)[1:], jnp.asarray(v).dtype), False),
        ("string", lambda v: "abc", False),
        ("None", lambda v: None, False),
        ("complex dtype", lambda v: jnp.asarray(v).astype(jnp.complex64), False),
    ]
    if x.ndim:
        out.append(("one longer", lambda v: jnp.concatenate([v, v[..., :1]], axis=-1), False))
    if jnp.issubdtype(x.dtype, jnp.floating):
        out += [
            ("NaN", lambda v: jnp.full_like(v, jnp.nan), True),
            ("inf", lambda v: jnp.full_like(v, jnp.inf), False),
            ("negated", lambda v: -v, False),
            ("int dtype", lambda v: jnp.asarray(v).astype(jnp.int32), False),
            ("bool dtype", lambda v: jnp.asarray(v) > 0, False),
        ]
    elif jnp.issubdtype(x.dtype, jnp.integer):
        out += [
            ("negative", lambda v: jnp.full_like(v, -1), False),
            ("out of range", lambda v: jnp.full_like(v, 1000), False),
            ("float dtype", lambda v: jnp.asarray(v).astype(jnp.float32), False),
        ]
    return out


def _mutations_of(value) -> list[tuple[str, Callable, bool]]:
    """(label, base value -> malformed value, nan) for one argument, by the base value's kind."""
    if _is_key(value) or (isinstance(value, jax.Array) and value.dtype == jnp.uint32):
        return [
            ("int seed", lambda v: 0, False),
            ("float array", lambda v: jnp.zeros(2), False),
            ("None", lambda v: None, False),
            ("two keys", lambda v: jax.random.split(jax.random.key(0), 2), False),
        ]
    if isinstance(value, jax.Array | np.ndarray):
        return _array_mutations(value)
    if isinstance(value, bool):
        return [
            ("string 'no'", lambda v: "no", False),
            ("int 1", lambda v: 1, False),
            ("None", lambda v: None, False),
        ]
    if isinstance(value, int):
        return [
            ("negative", lambda v: -1, False),
            ("zero", lambda v: 0, False),
            ("bool", lambda v: True, False),
            ("float", lambda v: v + 0.5, False),
            ("string", lambda v: str(v), False),
            ("None", lambda v: None, False),
        ]
    if isinstance(value, float):
        return [
            ("negative", lambda v: -v if v else -1.0, False),
            ("zero", lambda v: 0.0, False),
            ("NaN", lambda v: math.nan, False),
            ("inf", lambda v: math.inf, False),
            ("bool", lambda v: True, False),
            ("string", lambda v: str(v), False),
            ("None", lambda v: None, False),
        ]
    if isinstance(value, str):
        return [
            ("unknown string", lambda v: "bogus", False),
            ("empty string", lambda v: "", False),
            ("int", lambda v: 3, False),
            ("None", lambda v: None, False),
        ]
    if value is None:
        return [
            ("string", lambda v: "bogus", False),
            ("int", lambda v: 3, False),
            ("float array", lambda v: jnp.ones(2), False),
        ]
    if isinstance(value, tuple | list):
        out = [
            ("empty sequence", lambda v: type(v)() if type(v) in (tuple, list) else (), False),
            ("one shorter", lambda v: tuple(v)[:-1], False),
            ("one longer", lambda v: tuple(v) + tuple(v)[-1:], False),
            ("None", lambda v: None, False),
            ("string", lambda v: "abc", False),
        ]
        if len(value):
            for label, make, nan in _mutations_of(value[0]):
                out.append((f"[0] {label}", _at(0, make), nan))
        return out
    if isinstance(value, dict):
        out = [
            ("empty dict", lambda v: {}, False),
            ("None", lambda v: None, False),
            ("string", lambda v: "abc", False),
        ]
        if value:
            k = next(iter(value))
            for label, make, nan in _mutations_of(value[k]):
                out.append((f"[{k!r}] {label}", _at(k, make), nan))
        return out
    return [
        ("None", lambda v: None, False),
        ("string", lambda v: "abc", False),
        ("int", lambda v: 3, False),
    ]


SEQ_LABELS = ("empty sequence", "one shorter", "one longer", "[0] ")


def _at(index, make):
    def f(v):
        if isinstance(v, dict):
            return {**v, index: make(v[index])}
        items = list(v)
        items[index] = make(items[index])
        return type(v)(*items) if hasattr(type(v), "_fields") else type(v)(items)

    return f


def _signature(obj) -> inspect.Signature:
    sig = inspect.signature(obj)
    var = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if inspect.isclass(obj) and all(p.kind in var for p in sig.parameters.values()):
        params = list(inspect.signature(obj.__init__).parameters.values())[1:]  # drop self
        sig = sig.replace(parameters=params)
    return sig


def _bound(name: str):
    args, kwargs = BASE[name]()
    bound = _signature(CALLABLES[name]).bind(*args, **kwargs)
    return bound


def _mutations(name: str) -> list[Mutation]:
    sig = _signature(CALLABLES[name])
    with _workdir():
        bound = _bound(name)
    out = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.name in bound.arguments:
            value = bound.arguments[p.name]
        elif p.default is not p.empty:
            value = p.default
        else:
            continue
        mutations = _mutations_of(value)
        if p.kind is p.VAR_POSITIONAL:  # *args: only mutations that leave a tuple to unpack
            mutations = [m for m in _mutations_of(tuple(value)) if m[0].startswith(SEQ_LABELS)]
        for label, make, nan in mutations:
            out.append(Mutation(p.name, label, make, nan))
    return out


# ---- running one malformed call -------------------------------------------------------------

_WORKDIR = tempfile.mkdtemp(prefix="dlref_test_api_")  # files a mutated path writes land here


@contextlib.contextmanager
def _workdir():
    with contextlib.chdir(_WORKDIR):
        yield


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    def handler(signum, frame):
        raise _Timeout(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _floats(out, depth=0):
    """Every floating value in ``out`` (arrays, floats; through containers and dataclasses)."""
    if depth > 6:
        return
    if isinstance(out, jax.Array | np.ndarray | np.floating):
        if jnp.issubdtype(out.dtype, jnp.floating):
            yield np.asarray(out)
    elif isinstance(out, float):
        yield np.asarray(out)
    elif isinstance(out, dict):
        for v in out.values():
            yield from _floats(v, depth + 1)
    elif isinstance(out, tuple | list):
        for v in out:
            yield from _floats(v, depth + 1)
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        for f in dataclasses.fields(out):
            yield from _floats(getattr(out, f.name), depth + 1)


def _abstract(obj, bound):
    """The constructor call under ``nnx.eval_shape``, with its ``nnx.Rngs`` made inside the
    trace (an ``Rngs`` made outside cannot be advanced there)."""
    from flax import nnx

    def call():
        kwargs = dict(bound.kwargs)
        if isinstance(kwargs.get("rngs"), nnx.Rngs):
            kwargs["rngs"] = nnx.Rngs(0)
        return obj(*bound.args, **kwargs)

    return lambda: nnx.eval_shape(call)


def run_mutation(name: str, m: Mutation) -> str | None:
    """Call ``name`` with ``m`` applied; ``None`` if the outcome obeys the rules, else why not."""
    obj = CALLABLES[name]
    prefix = obj.__name__
    extra = ALLOWED_EXTRA.get(name, ())
    with _workdir():
        bound = _bound(name)
        base = bound.arguments.get(m.param, _signature(obj).parameters[m.param].default)
        if _signature(obj).parameters[m.param].kind is inspect.Parameter.VAR_POSITIONAL:
            base = tuple(base)
        bound.arguments[m.param] = m.make(base)
        call = (
            (lambda: obj(*bound.args, **bound.kwargs))
            if name not in ABSTRACT
            else _abstract(obj, bound)
        )
        try:
            with _time_limit(SECONDS_PER_CALL), contextlib.redirect_stdout(None):
                out = call()
        except (ValueError, TypeError) as e:
            if m.nan:
                return f"raised {type(e).__name__} on NaN input: {e}"
            if not re.match(re.escape(prefix) + r"[:.(\s]", str(e)):
                return f"{type(e).__name__} not naming {prefix!r}: {str(e)[:300]}"
            return None
        except extra:
            return None
        except Exception as e:  # noqa: BLE001 -- the property: nothing else escapes
            return f"{type(e).__name__} escaped: {str(e)[:300]}"
    if m.nan and name not in NAN_BLIND:
        values = list(_floats(out))
        if values and not any(np.isnan(v).any() for v in values):
            return "NaN input, no NaN in the output"
    return None


def _describe(name: str, m: Mutation, why: str) -> str:
    return f"{name}({m.param} <- {m.label}): {why}"


# ---- the tests ------------------------------------------------------------------------------


def _first_nan(name: str) -> Mutation | None:
    """NaN in the first floating array argument (the data, for the ops)."""
    return next((m for m in _mutations(name) if m.nan), None)


def _has_nan(name: str) -> bool:
    return name in NAN_NAMES


NAN_NAMES = [n for n in sorted(BASE) if _first_nan(n) is not None]


def test_every_public_callable_has_a_base_call():
    assert sorted(set(CALLABLES) - set(BASE)) == []  # add a row to BASE for a new callable
    assert sorted(set(BASE) - set(CALLABLES)) == []  # no row for a name that is gone


# Mutations drawn per callable: a few (3 in the CI profile, 33 in "thorough"), since each is a
# call on fresh inputs that compiles its ops; one for those whose accepted call trains a model.
MALFORMED_EXAMPLES = max(1, settings().max_examples // 6)
SLOW = {n for n in BASE if n.startswith("dlref.experiments.")} | {"dlref.train.fit"}
SLOW_EXAMPLES = max(1, settings().max_examples // 60)


@pytest.mark.parametrize("name", [n for n in sorted(BASE) if n not in SLOW and not _has_nan(n)])
def test_base_call_returns(name):
    """A base call that failed would make every mutation's error look right. (Callables with a
    floating argument are checked in the next test: NaN in it must return. The SLOW ones, which
    train, were checked once by hand.)"""
    obj = CALLABLES[name]
    with _workdir(), _time_limit(SECONDS_PER_CALL), contextlib.redirect_stdout(None):
        bound = _bound(name)
        if name in ABSTRACT:
            _abstract(obj, bound)()
        else:
            obj(*bound.args, **bound.kwargs)


# callables with at least one argument to mutate (default_table() takes none)
MUTABLE_NAMES = [n for n in sorted(BASE) if _mutations(n)]


@pytest.mark.parametrize("name", MUTABLE_NAMES)
def test_malformed_arguments_raise_clear_errors(name):
    """NaN in the first floating argument (always), then mutations drawn by hypothesis."""
    cases = _mutations(name)
    first_nan = _first_nan(name)
    if first_nan is not None:
        why = run_mutation(name, first_nan)
        assert why is None, _describe(name, first_nan, why)

    @settings(
        max_examples=SLOW_EXAMPLES if name in SLOW else MALFORMED_EXAMPLES,
        phases=[Phase.explicit, Phase.generate],
    )
    @given(st.sampled_from(cases))
    def check(m):
        why = run_mutation(name, m)
        assert why is None, _describe(name, m, why)

    check()
