"""Built-in models for ``dlref summary``: LeNet-5, AlexNet, VGG-16, ResNet-18 and ResNet-50.

Flax NNX modules, channels-last (inputs ``(N, H, W, C)``), defined layer for layer as
torchvision defines them (``torchvision.models.alexnet``, ``vgg16``, ``resnet18``,
``resnet50``), so their trainable parameter counts equal torchvision's
``sum(p.numel() for p in model.parameters())``. LeNet-5 has no torchvision definition; ours is
stated on :class:`LeNet5`. Pooling is dlref's own (:func:`dlref.max_pool` is PyTorch's
``MaxPool2d``), so ``dlref summary`` also shows how :func:`dlref.summary` reads a pooling
written as a loop over its window's taps.

Models are built abstractly (``nnx.eval_shape``) for counting and :func:`model_summary`, so
VGG-16's 138 million parameters are never allocated.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from dlref._checks import check_bool, check_int
from dlref.model_summary import summary
from dlref.pooling import avg_pool, global_avg_pool, max_pool

# torchvision's BatchNorm2d: momentum 0.1 on the new batch = flax momentum 0.9 on the old value.
_BN = dict(use_running_average=True, momentum=0.9, epsilon=1e-5)


def _pad(p: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((p, p), (p, p))


def adaptive_avg_pool(x: jax.Array, out: tuple[int, int]) -> jax.Array:
    r"""``nn.AdaptiveAvgPool2d(out)`` on NHWC inputs.

    .. math:: y_i = \operatorname{mean}\big(x[\lfloor i n / o \rfloor :
              \lceil (i + 1) n / o \rceil]\big)\quad\text{along H, then W}

    Matches PyTorch's ``F.adaptive_avg_pool2d`` bins; the identity (the same array) when
    the input already has the output size (AlexNet and VGG at 224×224).

    Args:
      x: ``(N, H, W, C)``.
      out: the output size ``(H', W')``.

    Returns:
      ``(N, H', W', C)``.

    Example:
      >>> adaptive_avg_pool(jnp.arange(3.0).reshape(1, 3, 1, 1), (2, 1)).ravel()
      Array([0.5, 1.5], dtype=float32)
    """
    for axis, o in zip((1, 2), out):
        n = x.shape[axis]
        if n == o:
            continue
        bins = [
            jnp.mean(
                lax.slice_in_dim(x, (i * n) // o, -(-((i + 1) * n) // o), axis=axis),
                axis=axis,
                keepdims=True,
            )
            for i in range(o)
        ]
        x = jnp.concatenate(bins, axis=axis)
    return x


class LeNet5(nnx.Module):
    """LeNet-5 on 32×32×1 inputs, the common fully connected variant: 61,706 parameters.

    C1 conv 5×5, 1→6, tanh, S2 avg pool 2/2; C3 conv 5×5, 6→16 (every map connected), tanh,
    S4 avg pool 2/2; C5 conv 5×5, 16→120, tanh; F6 dense 120→84, tanh; output dense 84→10.
    Parameters 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706. LeCun et al. (1998) connect C3
    sparsely (1,516 parameters), give S2/S4 a trainable coefficient and bias per map (12 and
    32) and end in 84×10 RBF units without bias: 60,840 parameters.

    References:
      LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
      recognition", Proc. IEEE, 1998.
    """

    def __init__(self, *, rngs: nnx.Rngs):
        _check_rngs(rngs, "LeNet5")
        self.c1 = nnx.Conv(1, 6, (5, 5), padding="VALID", rngs=rngs)
        self.c3 = nnx.Conv(6, 16, (5, 5), padding="VALID", rngs=rngs)
        self.c5 = nnx.Conv(16, 120, (5, 5), padding="VALID", rngs=rngs)
        self.f6 = nnx.Linear(120, 84, rngs=rngs)
        self.out = nnx.Linear(84, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = avg_pool(jnp.tanh(self.c1(x)), 2)
        x = avg_pool(jnp.tanh(self.c3(x)), 2)
        x = jnp.tanh(self.c5(x)).reshape(x.shape[0], -1)
        return self.out(jnp.tanh(self.f6(x)))


class AlexNet(nnx.Module):
    """``torchvision.models.alexnet``: 61,100,840 parameters (dropout inactive: inference)."""

    def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs):
        num_classes = check_int(num_classes, "num_classes", "AlexNet", minimum=1)
        _check_rngs(rngs, "AlexNet")
        spec = [(3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1)]
        spec += [(384, 256, 3, 1, 1), (256, 256, 3, 1, 1)]
        self.convs = nnx.List(
            [nnx.Conv(i, o, (k, k), s, padding=_pad(p), rngs=rngs) for i, o, k, s, p in spec]
        )
        self.fc1 = nnx.Linear(256 * 6 * 6, 4096, rngs=rngs)
        self.fc2 = nnx.Linear(4096, 4096, rngs=rngs)
        self.fc3 = nnx.Linear(4096, num_classes, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, conv in enumerate(self.convs):
            x = jax.nn.relu(conv(x))
            if i in (0, 1, 4):
                x = max_pool(x, 3, stride=2)
        x = adaptive_avg_pool(x, (6, 6)).reshape(x.shape[0], -1)
        x = jax.nn.relu(self.fc1(self.dropout(x)))
        x = jax.nn.relu(self.fc2(self.dropout(x)))
        return self.fc3(x)


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nnx.Module):
    """``torchvision.models.vgg16`` (configuration D, no BN): 138,357,544 parameters."""

    def __init__(self, num_classes: int = 1000, *, rngs: nnx.Rngs):
        num_classes = check_int(num_classes, "num_classes", "VGG16", minimum=1)
        _check_rngs(rngs, "VGG16")
        convs, c = [], 3
        for v in _VGG16:
            if v != "M":
                convs.append(nnx.Conv(c, v, (3, 3), padding=_pad(1), rngs=rngs))
                c = v
        self.convs = nnx.List(convs)
        self.fc1 = nnx.Linear(512 * 7 * 7, 4096, rngs=rngs)
        self.fc2 = nnx.Linear(4096, 4096, rngs=rngs)
        self.fc3 = nnx.Linear(4096, num_classes, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=True)

    def __call__(self, x: jax.Array) -> jax.Array:
        convs = iter(self.convs)
        for v in _VGG16:
            x = max_pool(x, 2) if v == "M" else jax.nn.relu(next(convs)(x))
        x = adaptive_avg_pool(x, (7, 7)).reshape(x.shape[0], -1)
        x = self.dropout(jax.nn.relu(self.fc1(x)))
        x = self.dropout(jax.nn.relu(self.fc2(x)))
        return self.fc3(x)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, rngs: nnx.Rngs) -> tuple:
    conv = nnx.Conv(c_in, c_out, (k, k), stride, padding=_pad(k // 2), use_bias=False, rngs=rngs)
    return conv, nnx.BatchNorm(c_out, **_BN, rngs=rngs)


def _block_args(op: str, c_in, planes, stride, rngs) -> tuple[int, int, int]:
    """The checked ``(c_in, planes, stride)`` of a residual block."""
    c_in = check_int(c_in, "c_in", op, minimum=1)
    planes = check_int(planes, "planes", op, minimum=1)
    stride = check_int(stride, "stride", op, minimum=1)
    _check_rngs(rngs, op)
    return c_in, planes, stride


class _ResidualBlock(nnx.Module):
    """What :class:`BasicBlock` and :class:`Bottleneck` share: torchvision's shortcut, a
    strided 1×1 conv-BN where the block changes the shape (``stride != 1`` or ``c_in !=
    planes·expansion``), else the identity."""

    expansion: int

    def _add_shortcut(self, c_in: int, planes: int, stride: int, rngs: nnx.Rngs) -> None:
        c_out = planes * self.expansion
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down_conv, self.down_bn = _conv_bn(c_in, c_out, 1, stride, rngs)
            self.down = True

    def _shortcut(self, x: jax.Array) -> jax.Array:
        return self.down_bn(self.down_conv(x)) if self.down else x


class BasicBlock(_ResidualBlock):
    """torchvision's ``BasicBlock``: two 3×3 conv-BN, a projection shortcut when needed."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int, *, rngs: nnx.Rngs):
        c_in, planes, stride = _block_args("BasicBlock", c_in, planes, stride, rngs)
        self.conv1, self.bn1 = _conv_bn(c_in, planes, 3, stride, rngs)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, 1, rngs)
        self._add_shortcut(c_in, planes, stride, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return jax.nn.relu(y + self._shortcut(x))


class Bottleneck(_ResidualBlock):
    """torchvision's ``Bottleneck`` (ResNet v1.5: the stride sits on the 3×3 conv)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, *, rngs: nnx.Rngs):
        c_in, planes, stride = _block_args("Bottleneck", c_in, planes, stride, rngs)
        self.conv1, self.bn1 = _conv_bn(c_in, planes, 1, 1, rngs)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, stride, rngs)
        self.conv3, self.bn3 = _conv_bn(planes, planes * 4, 1, 1, rngs)
        self._add_shortcut(c_in, planes, stride, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return jax.nn.relu(y + self._shortcut(x))


class ResNet(nnx.Module):
    """``torchvision.models.ResNet``: stem conv 7×7/2-BN-ReLU, max pool 3×3/2, four stages.

    ``ResNet(BasicBlock, (2, 2, 2, 2))`` is ResNet-18 (11,689,512 parameters);
    ``ResNet(Bottleneck, (3, 4, 6, 3))`` is ResNet-50 (25,557,032). BN running statistics
    are ``nnx.BatchStat`` (not counted, as in PyTorch where they are buffers).

    References:
      He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(self, block: type, layers: tuple[int, ...], num_classes: int = 1000, *, rngs):
        op = "ResNet"
        if block not in (BasicBlock, Bottleneck):
            raise TypeError(f"{op}: block must be BasicBlock or Bottleneck, got {block!r:.80}")
        if isinstance(layers, str) or not isinstance(layers, tuple | list) or len(layers) != 4:
            raise TypeError(f"{op}: layers must be a tuple of 4 ints, got {layers!r}")
        layers = tuple(check_int(n, "layers", op, minimum=1) for n in layers)
        num_classes = check_int(num_classes, "num_classes", op, minimum=1)
        _check_rngs(rngs, op)
        self.conv1, self.bn1 = _conv_bn(3, 64, 7, 2, rngs)
        blocks, c = [], 64
        for i, n in enumerate(layers):
            planes = 64 * 2**i
            for j in range(n):
                blocks.append(block(c, planes, 2 if (i > 0 and j == 0) else 1, rngs=rngs))
                c = planes * block.expansion
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(c, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = max_pool(jax.nn.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for b in self.blocks:
            x = b(x)
        return self.fc(global_avg_pool(x))


# name -> (constructor, input shape (H, W, C) without the batch)
MODELS: dict[str, tuple[Callable[[nnx.Rngs], nnx.Module], tuple[int, int, int]]] = {
    "lenet5": (lambda rngs: LeNet5(rngs=rngs), (32, 32, 1)),
    "alexnet": (lambda rngs: AlexNet(rngs=rngs), (224, 224, 3)),
    "vgg16": (lambda rngs: VGG16(rngs=rngs), (224, 224, 3)),
    "resnet18": (lambda rngs: ResNet(BasicBlock, (2, 2, 2, 2), rngs=rngs), (224, 224, 3)),
    "resnet50": (lambda rngs: ResNet(Bottleneck, (3, 4, 6, 3), rngs=rngs), (224, 224, 3)),
}


def _check_rngs(rngs, op: str) -> None:
    if not isinstance(rngs, nnx.Rngs):
        raise TypeError(f"{op}: rngs must be an nnx.Rngs, got {rngs!r:.80}")


def _check_module(model, op: str) -> None:
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{op}: model must be an nnx.Module, got {model!r:.80}")


def _check_name(name: str, op: str = "models") -> None:
    if not isinstance(name, str):
        raise TypeError(f"{op}: name must be one of {tuple(MODELS)}, got {name!r}")
    if name not in MODELS:
        raise ValueError(f"{op}: unknown model {name!r}; choose one of {tuple(MODELS)}")


def build(name, *, abstract=True, seed=0):
    """Build a built-in model by name.

    Args:
      name: ``"lenet5"``, ``"alexnet"``, ``"vgg16"``, ``"resnet18"`` or ``"resnet50"``.
      abstract: build with ``nnx.eval_shape``: every array is a ``jax.ShapeDtypeStruct``
        (instant, no memory); ``False`` initializes real weights.
      seed: the ``nnx.Rngs`` seed for real weights.

    Returns:
      The NNX module, in inference mode (BN uses running statistics, dropout off).

    Raises:
      ValueError: an unknown name.
    """
    _check_name(name, "build")
    abstract = check_bool(abstract, "abstract", "build")
    seed = check_int(seed, "seed", "build", minimum=0)
    ctor = MODELS[name][0]
    if abstract:
        return nnx.eval_shape(lambda: ctor(nnx.Rngs(seed)))
    # one compiled initializer instead of one eager dispatch per random op
    return nnx.jit(lambda: ctor(nnx.Rngs(seed)))()


def input_shape(name, *, batch=1):
    """The input shape ``(batch, H, W, C)`` a built-in model is summarized at.

    Args:
      name: a built-in model name.
      batch: the batch size.

    Returns:
      A tuple of 4 ints.

    Raises:
      ValueError: an unknown name.
    """
    _check_name(name, "input_shape")
    batch = check_int(batch, "batch", "input_shape", minimum=1)
    return (batch, *MODELS[name][1])


def param_count(model):
    """Trainable (``nnx.Param``) and other state (e.g. ``nnx.BatchStat``) sizes of a model.

    Args:
      model: an NNX module, concrete or abstract.

    Returns:
      ``(trainable, non_trainable)`` Python ints.
    """
    _check_module(model, "param_count")
    _, params, rest = nnx.split(model, nnx.Param, ...)
    count = lambda tree: sum(math.prod(x.shape) for x in jax.tree.leaves(tree))  # noqa: E731
    return count(params), count(rest)


def model_summary(model, *, x=None, batch=1, convention="macs", print_fn=print):
    """:func:`dlref.summary` of an NNX model, traced abstractly.

    The model is split into its parameters (``nnx.Param``, trainable) and the rest (BN
    running statistics, non-trainable) and traced as
    ``lambda params, rest, x: nnx.merge(graphdef, params, rest)(x)``.

    Args:
      model: an NNX module (concrete or abstract) or a built-in model name.
      x: an example input (array or ``jax.ShapeDtypeStruct``); by default the built-in
        model's input shape in float32.
      batch: batch size of the default input.
      convention: ``"macs"``, ``"flops"`` or ``"seed"``.
      print_fn: as in :func:`dlref.summary`.

    Returns:
      The :class:`dlref.shapes.Summary`.

    Raises:
      ValueError: an unknown name, or no input for a module that is not built in.
    """
    op = "model_summary"
    if isinstance(model, str):
        _check_name(model, op)
        if x is None:
            x = jax.ShapeDtypeStruct(input_shape(model, batch=batch), jnp.float32)
        model = build(model)
    if x is None:
        raise ValueError("model_summary: pass an example input x for a custom model")
    _check_module(model, op)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def run(params, rest, x):
        return nnx.merge(graphdef, params, rest)(x)

    try:
        return summary(
            run,
            params,
            rest,
            x,
            convention=convention,
            data_argnum=2,
            non_trainable_argnums=(1,),
            print_fn=print_fn,
        )
    except (TypeError, ValueError) as e:  # summary's message, said by the function called
        raise type(e)(f"{op}: {e}") from e


def cli_main(argv: list[str]) -> int:
    """``dlref summary MODEL [--convention macs|flops|seed] [--batch N]``.

    Args:
      argv: the arguments after ``summary``.

    Returns:
      The exit status: 0, or 2 for an unknown model or a bad ``--batch``.
    """
    parser = argparse.ArgumentParser(
        prog="dlref summary",
        description="Per-layer table (shapes, receptive fields, parameters, cost) of a "
        "built-in model, traced abstractly.",
    )
    parser.add_argument("model", help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--convention", default="macs", choices=("macs", "flops", "seed"))
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    args = parser.parse_args(argv)
    if args.model not in MODELS:
        print(
            f"dlref summary: unknown model {args.model!r}; choose one of {', '.join(MODELS)}",
            file=sys.stderr,
        )
        return 2
    if args.batch < 1:
        print(f"dlref summary: --batch must be >= 1, got {args.batch}", file=sys.stderr)
        return 2
    s = model_summary(args.model, batch=args.batch, convention=args.convention, print_fn=None)
    print(f"{args.model} at {input_shape(args.model, batch=args.batch)} (NHWC)")
    print(s)
    return 0
