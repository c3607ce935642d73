"""dlref: verified JAX reference implementations of deep-learning building blocks.

The functional ops are re-exported here; the model zoo (``dlref.models``), the flax NNX modules
(``dlref.nn``), training (``dlref.train``), experiments (``dlref.experiments``), the kernels
(``dlref.kernels``) and the testing tools (``dlref.testing``) are imported as submodules. No
submodule is named like an exported function: ``import dlref.convolution as m`` gives the module,
``dlref.conv`` the function.
"""

from dlref.activations import leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh
from dlref.augment import (
    Transform,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_value,
    affine,
    augment_batch,
    expand_dataset,
    fit_pca_color,
    flip_left_right,
    flip_up_down,
    gaussian_noise,
    hsv_to_rgb,
    pca_color,
    random_brightness,
    random_contrast,
    random_crop,
    random_flip_left_right,
    random_flip_up_down,
    random_gaussian_noise,
    random_resized_crop,
    random_rotate,
    random_salt_and_pepper,
    random_saturation,
    random_scale,
    random_translate,
    random_value,
    rgb_to_hsv,
    rotate,
    salt_and_pepper,
    scale,
    translate,
)
from dlref.convolution import conv, conv_transpose, depthwise_separable_conv
from dlref.losses import (
    cross_entropy,
    exponential_loss,
    hinge_loss,
    huber_loss,
    kl_divergence,
    l1_loss,
    l2_loss,
    multiclass_hinge_loss,
    sigmoid_binary_cross_entropy,
    smooth_l1_loss,
    softmax_cross_entropy,
    zero_one_loss,
)
from dlref.model_summary import Summary, SummaryRow, SummaryTotals, summary
from dlref.norm import (
    BatchNormState,
    batch_norm,
    fold_batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    min_max_scale,
    standardize,
)
from dlref.pooling import (
    avg_pool,
    avg_pool_backward,
    global_avg_pool,
    global_max_pool,
    max_pool,
    max_pool_backward,
)
from dlref.regularize import (
    EarlyStopping,
    clip_by_global_norm,
    clip_by_value,
    dropout,
    gaussian_dropout,
    l1_penalty,
    l2_penalty,
)
from dlref.shapes import (
    CONVENTIONS,
    ParamCount,
    ReceptiveField,
    activation_bytes,
    activation_flops,
    batch_norm_flops,
    conv_flops,
    conv_output_size,
    conv_params,
    conv_transpose_output_size,
    pool_flops,
    receptive_field,
)

__version__ = "0.1.0"

# Submodules that are not re-exported name by name (they import flax or Pallas, or are tools):
# loaded on first attribute access, so `import dlref` stays light.
_LAZY_SUBMODULES = ("nn", "train", "models", "experiments", "kernels", "verify", "testing")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"dlref.{name}")
    raise AttributeError(f"module 'dlref' has no attribute {name!r}")


__all__ = [
    # activations
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "softplus",
    "softmax",
    "log_softmax",
    # losses
    "zero_one_loss",
    "cross_entropy",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "kl_divergence",
    "hinge_loss",
    "multiclass_hinge_loss",
    "exponential_loss",
    "l1_loss",
    "l2_loss",
    "huber_loss",
    "smooth_l1_loss",
    # norm
    "BatchNormState",
    "batch_norm",
    "fold_batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "min_max_scale",
    "standardize",
    # regularize
    "dropout",
    "gaussian_dropout",
    "l1_penalty",
    "l2_penalty",
    "clip_by_value",
    "clip_by_global_norm",
    "EarlyStopping",
    # shapes
    "conv_output_size",
    "conv_transpose_output_size",
    "receptive_field",
    "ReceptiveField",
    "conv_params",
    "ParamCount",
    "conv_flops",
    "pool_flops",
    "activation_flops",
    "batch_norm_flops",
    "activation_bytes",
    # model_summary
    "summary",
    "Summary",
    "SummaryRow",
    "SummaryTotals",
    "CONVENTIONS",
    # convolution
    "conv",
    "conv_transpose",
    "depthwise_separable_conv",
    # pooling
    "max_pool",
    "avg_pool",
    "global_max_pool",
    "global_avg_pool",
    "max_pool_backward",
    "avg_pool_backward",
    # augment
    "Transform",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_value",
    "affine",
    "augment_batch",
    "expand_dataset",
    "fit_pca_color",
    "flip_left_right",
    "flip_up_down",
    "gaussian_noise",
    "hsv_to_rgb",
    "pca_color",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_gaussian_noise",
    "random_resized_crop",
    "random_rotate",
    "random_salt_and_pepper",
    "random_saturation",
    "random_scale",
    "random_translate",
    "random_value",
    "rgb_to_hsv",
    "rotate",
    "salt_and_pepper",
    "scale",
    "translate",
]
