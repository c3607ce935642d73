"""Measurements of the study guide's *why* claims, as plain functions returning numbers.

Each function runs a small, seeded, deterministic experiment — on scikit-learn's digits, the
adding problem or random arrays — with dlref's own ops, models (:mod:`dlref.nn`) and training
loop (:mod:`dlref.train`), and returns NumPy arrays, floats and dicts to plot and to assert.
Every docstring states the claim, the quantity measured and, where theory gives one, the value
theory predicts; ``tests/test_experiments.py`` asserts each claim against that value (or a
stated margin), and the notebooks plot them. The defaults are small enough for CI; raise
``epochs``, ``samples``, ``depth`` and so on for smoother curves. Timings are measured and
returned, never asserted.

Activations (激活函数)
  :func:`activation_properties`, :func:`activation_convergence` (tanh vs sigmoid: centring and
  slope), :func:`relu_sparsity`, :func:`linear_output_regression`,
  :func:`pointwise_conv_nonlinearity` (1×1 convolutions).
Batch size
  :func:`batch_size_effect`, :func:`gradient_noise` (variance ∝ 1/B),
  :func:`memory_budget_batch`, :func:`batch_size_scaling` (steps vs B, the linear-scaling rule
  and where it breaks).
Normalization (归一化, BN)
  :func:`feature_normalization` (condition number and gradient-descent steps),
  :func:`bn_scale_invariance`, :func:`bn_saturation`, :func:`bn_full_batch_statistics`,
  :func:`lr_sensitivity`, :func:`dropout_bn_variance_shift`.
Gradients
  :func:`vanishing_gradients`, :func:`exploding_gradients` (init and clipping),
  :func:`gradient_norms_through_time` (RNN vs LSTM).
Pooling
  :func:`pooling_translation_invariance`, :func:`pool_before_conv`.
Regularisation
  :func:`dropout_ensemble` (weight scaling vs Monte Carlo), :func:`fitting_regimes` (under- and
  over-fitting; L2, dropout, augmentation, early stopping).
Architectures
  :func:`parameter_sharing` (dense vs conv vs RNN parameter counts).
"""

from dlref.experiments._activations import (
    CONVERGENCE_ACTIVATIONS,
    activation_convergence,
    activation_properties,
    linear_output_regression,
    pointwise_conv_nonlinearity,
    relu_sparsity,
)
from dlref.experiments._architectures import parameter_sharing
from dlref.experiments._batch_size import (
    batch_size_effect,
    batch_size_scaling,
    gradient_noise,
    memory_budget_batch,
)
from dlref.experiments._dropout import dropout_ensemble
from dlref.experiments._fitting import AUGMENTATION_POLICY, REGIMES, fitting_regimes
from dlref.experiments._gradients import (
    EXPLODING_INITS,
    THEORY_FACTOR,
    VARIANTS,
    exploding_gradients,
    gradient_norms_through_time,
    vanishing_gradients,
)
from dlref.experiments._normalization import (
    SATURATION_Z,
    bn_full_batch_statistics,
    bn_saturation,
    bn_scale_invariance,
    dropout_bn_variance_shift,
    feature_normalization,
    lr_sensitivity,
)
from dlref.experiments._pooling import pool_before_conv, pooling_translation_invariance

__all__ = [
    # activations
    "CONVERGENCE_ACTIVATIONS",
    "activation_properties",
    "activation_convergence",
    "relu_sparsity",
    "linear_output_regression",
    "pointwise_conv_nonlinearity",
    # batch size
    "batch_size_effect",
    "gradient_noise",
    "memory_budget_batch",
    "batch_size_scaling",
    # normalization
    "feature_normalization",
    "bn_scale_invariance",
    "SATURATION_Z",
    "bn_saturation",
    "bn_full_batch_statistics",
    "lr_sensitivity",
    "dropout_bn_variance_shift",
    # gradients
    "VARIANTS",
    "THEORY_FACTOR",
    "vanishing_gradients",
    "EXPLODING_INITS",
    "exploding_gradients",
    "gradient_norms_through_time",
    # pooling
    "pooling_translation_invariance",
    "pool_before_conv",
    # regularisation
    "dropout_ensemble",
    "REGIMES",
    "AUGMENTATION_POLICY",
    "fitting_regimes",
    # architectures
    "parameter_sharing",
]
