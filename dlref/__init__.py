"""dlref: verified JAX reference implementations of deep-learning building blocks.

The functional ops are re-exported here; the model zoo (``dlref.models``), the flax NNX modules
(``dlref.nn``), training (``dlref.train``), experiments (``dlref.experiments``), the kernels
(``dlref.kernels``) and the testing tools (``dlref.testing``) are imported as submodules. No
submodule is named like an exported function: ``import dlref.convolution as m`` gives the module,
``dlref.conv`` the function.
"""

from dlref import (
    activations,
    augment,
    convolution,
    losses,
    model_summary,
    norm,
    pooling,
    regularize,
    shapes,
)
from dlref.activations import leaky_relu as leaky_relu
from dlref.activations import log_softmax as log_softmax
from dlref.activations import relu as relu
from dlref.activations import sigmoid as sigmoid
from dlref.activations import softmax as softmax
from dlref.activations import softplus as softplus
from dlref.activations import tanh as tanh
from dlref.augment import Transform as Transform
from dlref.augment import adjust_brightness as adjust_brightness
from dlref.augment import adjust_contrast as adjust_contrast
from dlref.augment import adjust_saturation as adjust_saturation
from dlref.augment import adjust_value as adjust_value
from dlref.augment import affine as affine
from dlref.augment import augment_batch as augment_batch
from dlref.augment import expand_dataset as expand_dataset
from dlref.augment import fit_pca_color as fit_pca_color
from dlref.augment import flip_left_right as flip_left_right
from dlref.augment import flip_up_down as flip_up_down
from dlref.augment import gaussian_noise as gaussian_noise
from dlref.augment import hsv_to_rgb as hsv_to_rgb
from dlref.augment import pca_color as pca_color
from dlref.augment import random_brightness as random_brightness
from dlref.augment import random_contrast as random_contrast
from dlref.augment import random_crop as random_crop
from dlref.augment import random_flip_left_right as random_flip_left_right
from dlref.augment import random_flip_up_down as random_flip_up_down
from dlref.augment import random_gaussian_noise as random_gaussian_noise
from dlref.augment import random_resized_crop as random_resized_crop
from dlref.augment import random_rotate as random_rotate
from dlref.augment import random_salt_and_pepper as random_salt_and_pepper
from dlref.augment import random_saturation as random_saturation
from dlref.augment import random_scale as random_scale
from dlref.augment import random_translate as random_translate
from dlref.augment import random_value as random_value
from dlref.augment import rgb_to_hsv as rgb_to_hsv
from dlref.augment import rotate as rotate
from dlref.augment import salt_and_pepper as salt_and_pepper
from dlref.augment import scale as scale
from dlref.augment import translate as translate
from dlref.convolution import conv as conv
from dlref.convolution import conv_transpose as conv_transpose
from dlref.convolution import depthwise_separable_conv as depthwise_separable_conv
from dlref.losses import cross_entropy as cross_entropy
from dlref.losses import exponential_loss as exponential_loss
from dlref.losses import hinge_loss as hinge_loss
from dlref.losses import huber_loss as huber_loss
from dlref.losses import kl_divergence as kl_divergence
from dlref.losses import l1_loss as l1_loss
from dlref.losses import l2_loss as l2_loss
from dlref.losses import multiclass_hinge_loss as multiclass_hinge_loss
from dlref.losses import sigmoid_binary_cross_entropy as sigmoid_binary_cross_entropy
from dlref.losses import smooth_l1_loss as smooth_l1_loss
from dlref.losses import softmax_cross_entropy as softmax_cross_entropy
from dlref.losses import zero_one_loss as zero_one_loss
from dlref.model_summary import Summary as Summary
from dlref.model_summary import SummaryRow as SummaryRow
from dlref.model_summary import SummaryTotals as SummaryTotals
from dlref.model_summary import summary as summary
from dlref.norm import BatchNormState as BatchNormState
from dlref.norm import batch_norm as batch_norm
from dlref.norm import fold_batch_norm as fold_batch_norm
from dlref.norm import group_norm as group_norm
from dlref.norm import instance_norm as instance_norm
from dlref.norm import layer_norm as layer_norm
from dlref.norm import min_max_scale as min_max_scale
from dlref.norm import standardize as standardize
from dlref.pooling import avg_pool as avg_pool
from dlref.pooling import avg_pool_backward as avg_pool_backward
from dlref.pooling import global_avg_pool as global_avg_pool
from dlref.pooling import global_max_pool as global_max_pool
from dlref.pooling import max_pool as max_pool
from dlref.pooling import max_pool_backward as max_pool_backward
from dlref.regularize import EarlyStopping as EarlyStopping
from dlref.regularize import clip_by_global_norm as clip_by_global_norm
from dlref.regularize import clip_by_value as clip_by_value
from dlref.regularize import dropout as dropout
from dlref.regularize import gaussian_dropout as gaussian_dropout
from dlref.regularize import l1_penalty as l1_penalty
from dlref.regularize import l2_penalty as l2_penalty
from dlref.shapes import CONVENTIONS as CONVENTIONS
from dlref.shapes import ParamCount as ParamCount
from dlref.shapes import ReceptiveField as ReceptiveField
from dlref.shapes import activation_bytes as activation_bytes
from dlref.shapes import activation_flops as activation_flops
from dlref.shapes import batch_norm_flops as batch_norm_flops
from dlref.shapes import conv_flops as conv_flops
from dlref.shapes import conv_output_size as conv_output_size
from dlref.shapes import conv_params as conv_params
from dlref.shapes import conv_transpose_output_size as conv_transpose_output_size
from dlref.shapes import pool_flops as pool_flops
from dlref.shapes import receptive_field as receptive_field

__version__ = "0.1.0"

# Submodules that are not re-exported name by name (they import flax or Pallas, or are tools):
# loaded on first attribute access, so `import dlref` stays light.
_LAZY_SUBMODULES = ("nn", "train", "models", "experiments", "kernels", "verify", "testing")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"dlref.{name}")
    raise AttributeError(f"module 'dlref' has no attribute {name!r}")


# The package exports each topic module's ``__all__`` but for the names that stay in their module
# (``dlref.augment.MODES``, ``dlref.convolution.auto_impl``): each module's list is the one place
# a public name is declared, and tests/test_api.py checks that every name here is imported above.
_MODULE_ONLY = frozenset({"MODES", "auto_impl"})
__all__ = [
    name
    for module in (
        activations,
        losses,
        norm,
        regularize,
        shapes,
        model_summary,
        convolution,
        pooling,
        augment,
    )
    for name in module.__all__
    if name not in _MODULE_ONLY
]
