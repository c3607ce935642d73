"""Built-in models: parameter counts, MACs and receptive fields against published values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlref.cli import main as dlref_main
from dlref.models import (
    MODELS,
    adaptive_avg_pool,
    build,
    cli_main,
    input_shape,
    model_summary,
    param_count,
)
from dlref.shapes import receptive_field

# torchvision.models weights metadata ("num_params", "_ops" = GFLOPS, really GMACs of the convs
# and linear layers): AlexNet_Weights.IMAGENET1K_V1, VGG16_Weights.IMAGENET1K_V1,
# ResNet18_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V1 (torchvision 0.15+ docs).
TORCHVISION = {
    "alexnet": (61_100_840, 0.71),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet50": (25_557_032, 4.09),
}
# Hand counts (LeNet5's docstring): 156 + 2,416 + 48,120 + 10,164 + 850
LENET5_PARAMS = 61_706
# BN running mean + var: 2 per BN channel (torchvision's buffers, minus num_batches_tracked)
# resnet18: stem 64 + stages 2·(64+64) + (128·3 + 128·2) + (256·3 + 256·2) + (512·3 + 512·2)
BN_STATS = {"resnet18": 2 * (64 + 256 + 640 + 1280 + 2560), "resnet50": 53_120}


@pytest.fixture(scope="module")
def summaries():
    return {name: model_summary(name, print_fn=None) for name in MODELS}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_param_counts_equal_torchvision(name, summaries):
    params, macs_g = TORCHVISION[name]
    model = build(name)
    trainable, other = param_count(model)
    assert trainable == params
    s = summaries[name]
    assert s.totals.params == trainable  # summary's dataflow sees every nnx.Param once
    assert s.totals.non_trainable == other == BN_STATS.get(name, 0)
    assert round(s.totals.flops / 1e9, 2) == macs_g


def test_lenet5(summaries):
    assert param_count(build("lenet5")) == (LENET5_PARAMS, 0)
    s = summaries["lenet5"]
    assert s.totals.params == LENET5_PARAMS
    # C1 28·28·6·25 + C3 10·10·16·150 + C5 120·400 + F6 84·120 + out 10·84 (hand count)
    assert s.totals.flops == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert s.totals.receptive_field == (32, 32)
    model = build("lenet5", abstract=False)  # real weights: summary of a concrete model too
    x = jnp.ones((2, 32, 32, 1))
    y = model(x)
    assert y.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y)))
    s2 = model_summary(model, x=x, convention="flops", print_fn=None)
    assert s2.rows[-1].shape == y.shape and s2.totals.params == LENET5_PARAMS


def test_final_receptive_fields(summaries):
    # Araujo, Norris, Sim, Distill 2019, Table 1: alexnet_v2 195, vgg_16 212 (same layers as
    # torchvision's conv stacks). ResNets, torchvision v1.5 (stride on the 3x3), by hand:
    assert summaries["alexnet"].totals.receptive_field == (195, 195)
    assert summaries["vgg16"].totals.receptive_field == (212, 212)
    # The longest path of a ResNet is its chain of 3x3 convs (1x1 convs add nothing);
    # resnet50 (bottlenecks 3,4,6,3): 7+2·2(pool)=11, +2·4·3=35, +8=43 (j8), +16·3=91,
    # +16=107 (j16), +32·5=267, +32=299 (j32), +64·2=427.
    assert summaries["resnet50"].totals.receptive_field == (427, 427)
    chain = [(7, 2, 3), (3, 2, 1)]
    for stage, blocks in enumerate((2, 2, 2, 2)):
        for b in range(blocks):
            s = 2 if stage > 0 and b == 0 else 1
            chain += [(3, s, 1), (3, 1, 1)]
    assert receptive_field(chain)[-1].size == 435
    assert summaries["resnet18"].totals.receptive_field == (435, 435)
    assert all(s.totals.jump == (32, 32) for n, s in summaries.items() if n != "lenet5")


def test_resnet_rows_show_branches(summaries):
    rows = summaries["resnet18"].rows
    assert rows[0].op == "conv 7×7/2 +bn+relu" and rows[0].shape == (1, 112, 112, 64)
    assert rows[1].op == "max_pool 3×3/2" and rows[1].receptive_field == (11, 11)
    adds = [r for r in rows if r.op == "add +relu"]
    assert len(adds) == 8  # one join per BasicBlock
    # the projection shortcut (1x1/2) sees less than the main path; the join takes the union
    i = next(i for i, r in enumerate(rows) if r.op == "conv 1×1/2 +bn")
    assert rows[i].receptive_field < rows[i - 1].receptive_field == rows[i + 1].receptive_field


def _torch_adaptive_avg_pool_2d(x, out):
    """NumPy oracle of PyTorch's AdaptiveAvgPool2d bins: [floor(i·n/o), ceil((i+1)·n/o))."""
    (h, w), (oh, ow) = x.shape[1:3], out
    y = np.empty((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            rows = slice((i * h) // oh, -(-((i + 1) * h) // oh))
            cols = slice((j * w) // ow, -(-((j + 1) * w) // ow))
            y[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return y


def test_adaptive_avg_pool_matches_pytorch_rule(key):
    x = jax.random.normal(key, (2, 7, 5, 3))
    for out in [(3, 6), (2, 5), (7, 2)]:
        np.testing.assert_allclose(
            np.asarray(adaptive_avg_pool(x, out)),
            _torch_adaptive_avg_pool_2d(np.asarray(x, np.float64), out),
            rtol=2e-6,
            atol=1e-7,
        )
    assert adaptive_avg_pool(x, (7, 5)) is x  # identity at the output size (AlexNet/VGG 224)


def test_cli_summary(capsys):
    assert cli_main(["resnet18", "--convention", "flops", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 at (2, 224, 224, 3)" in out
    assert "total: params 11,689,512 (+9,600 non-trainable) | FLOPs" in out
    assert "final receptive field 435×435 (jump 32×32)" in out
    assert dlref_main(["summary", "lenet5"]) == 0
    assert "total: params 61,706 | MACs 416,520" in capsys.readouterr().out


def test_cli_bad_input(capsys):
    assert cli_main(["resnet1000"]) == 2
    assert "unknown model 'resnet1000'; choose one of lenet5" in capsys.readouterr().err
    assert cli_main(["lenet5", "--batch", "0"]) == 2
    assert "--batch must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["lenet5", "--convention", "gflops"])


def test_bad_input():
    with pytest.raises(ValueError, match="unknown model 'vgg19'"):
        build("vgg19")
    with pytest.raises(ValueError, match="unknown model 'vgg19'"):
        input_shape("vgg19")
    with pytest.raises(ValueError, match="pass an example input x for a custom model"):
        model_summary(build("lenet5"))
