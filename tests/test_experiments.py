"""dlref.experiments: each claim of the study guide's *why* questions, asserted.

Every test runs a small seeded experiment and asserts the claim against a threshold that comes
from theory where theory gives one (derived in the comment), otherwise from a stated margin;
no threshold is the code's own output. Independent oracles (NumPy eigen-decompositions, hand
counts) are computed here, apart from dlref. Timings are recorded by the experiments and never
asserted.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlref import experiments as E
from dlref.augment import fit_pca_color, pca_color
from dlref.train import load_digits


def _standardized_train(seed=0):
    """The training digits z-scored with NumPy (constant pixels left at 0): the oracle's copy."""
    x, y = load_digits(seed=seed, layout="flat").train
    x = x.astype(np.float64)
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0), y


def _factor(norms):
    """Geometric-mean factor by which per-layer norms grow from the last layer back to the
    first."""
    norms = np.asarray(norms, np.float64)
    return (norms[0] / norms[-1]) ** (1 / (len(norms) - 1))


def test_every_experiment_is_seeded_and_deterministic():
    import inspect

    functions = [getattr(E, n) for n in E.__all__ if inspect.isfunction(getattr(E, n))]
    assert len(functions) >= 20
    for f in functions:
        p = inspect.signature(f).parameters
        assert "seed" in p and p["seed"].kind is p["seed"].KEYWORD_ONLY, f.__name__
    # the same seed gives the same numbers; another seed other numbers
    a, b = E.bn_saturation(depth=2), E.bn_saturation(depth=2)
    c = E.bn_saturation(depth=2, seed=1)
    assert np.array_equal(a["plain"], b["plain"]) and not np.array_equal(a["plain"], c["plain"])


# ------------------------------------------------------------------------------------------
# Activations


def test_activation_properties():
    p = E.activation_properties()
    # (monotone, f(x) ≈ x near 0, bounded, f(0), jax.grad at 0): from the definitions;
    # relu'(0) = 0 and leaky_relu'(0) = 1 are the subgradients jax.nn uses.
    expected = {
        "sigmoid": (True, False, True, 0.5, 0.25),
        "tanh": (True, True, True, 0.0, 1.0),
        "relu": (True, False, False, 0.0, 0.0),
        "leaky_relu": (True, False, False, 0.0, 1.0),
        "softplus": (True, False, False, math.log(2), 0.5),
    }
    for name, (mono, near, bounded, f0, s0) in expected.items():
        got = p[name]
        assert (got["monotone"], got["near_identity"], got["bounded"]) == (mono, near, bounded)
        assert got["f0"] == pytest.approx(f0, abs=1e-7) and got["slope0"] == s0
    # ranges on [-1e4, 1e4]: (0, 1), (-1, 1), [0, ∞), slope 0.01 below 0
    assert 0 <= p["sigmoid"]["min"] and p["sigmoid"]["max"] <= 1
    assert -1 <= p["tanh"]["min"] and p["tanh"]["max"] <= 1
    assert p["relu"]["min"] == 0 and p["relu"]["max"] == 1e4
    assert p["leaky_relu"]["min"] == pytest.approx(-0.01 * 1e4)
    with pytest.raises(ValueError, match="activation_properties: activation must be one of"):
        E.activation_properties(names=("elu",))


def test_activation_convergence_centring_and_slope():
    r = E.activation_convergence()
    s = r["steps_to_target"]
    assert all(v is not None for v in s.values()), s
    # Centring alone (same derivative, mean 0 vs ≈ 1): tanh needs at most half the steps of
    # tanh + 1. The margin: a factor 2 is what "trains faster" should mean.
    assert 2 * s["tanh"] <= s["shifted_tanh"]
    # ...and centring never slows the sigmoid down (LeCun et al. 1998, "Efficient BackProp").
    assert s["centred_sigmoid"] <= s["sigmoid"]
    # Slope alone (both centred): near 0, sigmoid − ½ ≈ z/4 and tanh ≈ z, a gain 4× smaller
    # per layer; require at least that factor 4 in steps.
    assert 4 * s["tanh"] <= s["centred_sigmoid"]
    # How to choose (the guide: ReLU by default, sigmoid only for a binary output): ReLU and
    # leaky ReLU need at most half the steps of sigmoid.
    assert 2 * max(s["relu"], s["leaky_relu"]) <= s["sigmoid"]
    with pytest.raises(ValueError, match="activation_convergence: activation must be one of"):
        E.activation_convergence(activations=("elu",))


def test_relu_sparsity():
    depth, width = 3, 128
    r = E.relu_sparsity(depth=depth, width=width, repeats=3)
    zeros = r["zero_fraction"]
    # Weights symmetric about 0 make every pre-activation symmetric: P(z < 0) = 1/2. Units are
    # independent given their input; the worst case (a unit all-on or all-off over the batch)
    # gives a standard deviation 0.5/√units of the mean fraction: allow 4 of them.
    assert abs(zeros["relu"].mean() - 0.5) < 4 * 0.5 / math.sqrt(depth * width)
    assert np.all(np.abs(zeros["relu"] - 0.5) < 4 * 0.5 / math.sqrt(width))
    # sigmoid and tanh are never exactly 0 for a non-zero input
    assert np.all(zeros["sigmoid"] == 0) and np.all(zeros["tanh"] == 0)
    print("time per training step (s):", r["step_time"])  # recorded, not asserted


def test_linear_output_regression():
    r = E.linear_output_regression()
    y = load_digits(seed=0, layout="flat").train[1].astype(np.float64)
    # the bound, recomputed: sigmoid's range (0, 1) misses every label above 1 by y − 1
    bound = np.mean(np.maximum(y - 1, 0) ** 2)
    assert r["bound"]["sigmoid"] == pytest.approx(bound, rel=1e-6)
    # A bounded output cannot go below the bound, whatever its weights; the loss is a float32
    # mean of 1257 squares (relative rounding below 1e-5).
    for out in ("sigmoid", "tanh"):
        assert r["mse"][f"relu_{out}"] >= r["bound"][out] * (1 - 1e-5)
    # A linear output can: an order of magnitude below the bound.
    assert r["mse"]["relu_linear"] < r["bound"]["sigmoid"] / 10
    # A linear hidden activation makes the network affine: never better than least squares
    # (NumPy's lstsq, float64), up to float32 rounding...
    x, _ = _standardized_train()
    design = np.concatenate([x, np.ones((len(x), 1))], 1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    lstsq = np.mean((design @ coef - y) ** 2)
    assert r["lstsq_mse"] == pytest.approx(lstsq, rel=1e-6)
    assert r["mse"]["linear_linear"] >= lstsq * (1 - 1e-5)
    # ...while a ReLU hidden layer beats it by at least a factor 2.
    assert r["mse"]["relu_linear"] < lstsq / 2


def test_pointwise_conv_nonlinearity():
    r = E.pointwise_conv_nonlinearity()
    # Without an activation, three 1×1 convolutions are the one with the product kernel and
    # are additive, up to float32 rounding (ε = 6e-8 times a few dozen accumulated terms).
    assert r["composed_error"] < 1e-5
    assert r["additivity_linear"] < 1e-5
    # With ReLU after each, the defect is of the order of the signal: require a tenth of it,
    # four orders of magnitude above the rounding of the linear stack.
    assert r["additivity_relu"] > 0.1


# ------------------------------------------------------------------------------------------
# Batch size


def test_gradient_noise_falls_as_one_over_batch():
    r = E.gradient_noise(samples=100)
    # E‖g_B − g‖² = tr Σ / B exactly for batches drawn with replacement; the measured value
    # is a mean of 100 i.i.d. squared norms: within 4 standard errors (CLT).
    z = (r["variance"] - r["theory"]) / r["stderr"]
    assert np.all(np.abs(z) < 4), z
    assert abs(r["slope"] + 1) < 0.1  # log-log slope −1


def test_batch_size_effect_fewer_updates_lower_accuracy():
    r = E.batch_size_effect(batch_sizes=(32, 512), epochs=1)
    assert r["updates"].tolist() == [1257 // 32, 1257 // 512]
    # 39 Adam updates against 2 from the same init: the large batch cannot have learnt as
    # much. A 0.2 margin in accuracy (chance is 0.1) is what "less accurate" should mean.
    assert r["val_accuracy"][0] > r["val_accuracy"][1] + 0.2
    print("seconds per epoch:", dict(zip(r["batch_size"].tolist(), r["time_per_epoch"])))


def test_memory_budget_batch_mlp_hand_count():
    budget = 2**20
    r = E.memory_budget_batch(budget_bytes=budget, model="mlp", xla_batches=(256, 1024))
    # dlref.nn.MLP(64, [128, 128], 10), counted by hand: outputs 128 + 128 + 10 floats per
    # example; weights 64·128 + 128 + 128·128 + 128 + 128·10 + 10.
    per_example = 4 * (128 + 128 + 10)
    params = 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    state = 4 * params * 4  # weights, gradient and Adam's two moments, float32
    assert (r["per_example_bytes"], r["params"], r["state_bytes"]) == (per_example, params, state)
    assert r["max_batch"] == (budget - state) // per_example
    assert r["total_at_max"] <= budget < r["total_above"]
    # XLA's compiled training step grows linearly in B too: 4× the batch, 4× the temporary
    # memory. Its buffer assignment is not exactly affine in B (alignment, fusion choices), so
    # allow 20 %; growth faster than linear would give 16× (quadratic) or more.
    assert r["xla_temp"][1] / r["xla_temp"][0] == pytest.approx(4, rel=0.2)
    with pytest.raises(ValueError, match="memory_budget_batch: budget_bytes"):
        E.memory_budget_batch(budget_bytes=1000, model="mlp", xla_batches=())
    with pytest.raises(ValueError, match="memory_budget_batch: model must be one of"):
        E.memory_budget_batch(model="resnet1000", xla_batches=())


def test_memory_budget_batch_cnn_linear_in_batch():
    r = E.memory_budget_batch(budget_bytes=2**24, model="cnn", xla_batches=())
    a1, a2, at_max, above = r["activations"].tolist()
    # every feature map has a batch axis: activation memory is exactly linear in B
    assert a2 == 2 * a1 and at_max == r["max_batch"] * a1 and above == (r["max_batch"] + 1) * a1
    assert r["total_at_max"] <= 2**24 < r["total_above"]


def test_batch_size_scaling_linear_rule_and_where_it_breaks():
    r = E.batch_size_scaling()
    b, lr = r["batch_size"], r["lr_linear"]
    # λ_max from NumPy: the Hessian of the mean over N·10 squared errors of a linear model
    # with bias is (2 / (10 N)) [X 1]ᵀ[X 1] for each of the 10 outputs.
    x, _ = _standardized_train()
    design = np.concatenate([x, np.ones((len(x), 1))], 1)
    lam = 2 / (10 * len(x)) * np.linalg.eigvalsh(design.T @ design)[-1]
    assert r["lambda_max"] == pytest.approx(lam, rel=1e-4)
    # Gradient descent on a quadratic diverges iff η > 2/λ_max (minibatch noise only adds):
    # the linear-scaling rule breaks exactly there (B = break_batch is the boundary itself).
    off_boundary = b != 256
    assert np.array_equal(r["diverged_linear"][off_boundary], (lr > r["lr_max"])[off_boundary])
    # Below the break, η ∝ B keeps the examples needed (steps · B) constant (SGD with a small
    # step follows the gradient flow per example seen); allow 50 % for the discretisation as
    # η approaches 1/λ_max.
    small = b <= 256 // 2
    examples = r["steps_linear"][small] * b[small]
    assert np.all(r["steps_linear"][small] > 0) and examples.max() <= 1.5 * examples.min()
    # With a constant η the steps stop falling once the minibatch gradient is nearly the full
    # one, so the examples (epochs) needed grow ∝ B: 32× the batch must cost at least 16×
    # the examples (half the gradient-descent limit).
    steps = dict(zip(b.tolist(), r["steps_constant"].tolist()))
    assert steps[32] > 0 and steps[1024] > 0
    assert steps[1024] * 1024 >= 16 * steps[32] * 32


# ------------------------------------------------------------------------------------------
# Normalization


def test_feature_normalization_conditioning_and_steps():
    r = E.feature_normalization()
    raw, std = r["raw"], r["standardized"]
    # The Hessian of the mean squared error of a linear model is (2/N)[X 1]ᵀ[X 1]: NumPy.
    d = load_digits(seed=0, layout="flat")
    x = d.train[0].astype(np.float64)
    x = x[:, x.std(0) > 0]
    for name, feats in (("raw", x), ("standardized", (x - x.mean(0)) / x.std(0))):
        design = np.concatenate([feats, np.ones((len(feats), 1))], 1)
        eig = 2 / len(feats) * np.linalg.eigvalsh(design.T @ design)
        assert r[name]["lambda_max"] == pytest.approx(eig[-1], rel=1e-4)
        assert r[name]["lambda_min"] == pytest.approx(eig[0], rel=1e-2)
        # gradient descent with η = 1/λ_max never increases a quadratic (float32 slack)
        curve = r[name]["loss"]
        assert np.all(np.diff(curve) <= 1e-6 * curve[0])
    assert std["kappa"] < raw["kappa"]
    # The measured steps respect the worst-case bound (1 − 1/κ)^(2t) ≤ tolerance...
    assert std["steps"] is not None and std["steps"] <= std["bound"]
    # ...and standardisation speeds gradient descent up at least tenfold ("大大加快"): the raw
    # problem has not reached the target after max_steps = 3000 > 10 × the standardised.
    assert raw["steps"] is None or raw["steps"] >= 10 * std["steps"]
    assert 10 * std["steps"] <= 3000


def test_bn_scale_invariance_and_growing_weight_norm():
    r = E.bn_scale_invariance()
    # Exact identities of a function invariant to the scale of W (BN with eps → 0), checked
    # to float32 rounding: L(aW) = L(W), a·∇L(aW) = ∇L(W), ⟨∇L(W), W⟩ = 0, and SGD's
    # ‖W_{t+1}‖² = ‖W_t‖² + η²‖∇L‖².
    assert np.all(r["output_change"] < 1e-5)
    assert np.all(np.abs(r["grad_ratio"] - 1) < 1e-5)
    assert np.all(r["euler"] < 1e-5)
    assert np.all(r["pythagoras_error"] < 1e-5)
    # hence the norm only grows and the effective step η/‖W‖² only shrinks
    assert np.all(np.diff(r["weight_norm"]) >= 0)
    assert np.all(np.diff(r["effective_lr"]) <= 0)


def test_bn_saturation_chebyshev():
    depth, width = 6, 64
    r = E.bn_saturation(depth=depth, width=width)
    z_s = 2 * math.acosh(1 / (2 * math.sqrt(0.025)))  # sigmoid'(z_s) = sigmoid'(0) / 10
    assert r["z_s"] == pytest.approx(z_s)
    # With BN every unit has batch mean 0 and variance ≤ 1: Chebyshev bounds the fraction
    # of its batch beyond z_s by 1/z_s² (≈ 0.076), whatever the weights.
    assert np.all(r["bn"] <= 1 / z_s**2)
    # Without BN the saturated fraction follows the Gaussian prediction over the weights,
    # within 4 standard deviations of a mean over `width` independent units (≤ 0.5/√width).
    assert np.all(np.abs(r["plain"] - r["predicted_plain"]) < 4 * 0.5 / math.sqrt(width))
    assert r["plain"].mean() > 1 / z_s**2  # and it is beyond what BN allows


def test_bn_full_batch_statistics_cost_and_staleness():
    r = E.bn_full_batch_statistics()
    n, b = r["n"], 32
    # the forward pass over the whole training set costs N/B minibatch passes
    assert r["cost_ratio"] == pytest.approx(n / b)
    # within one epoch the statistics computed at its start drift beyond the standard error
    # 1/√N that the full-set estimate was supposed to buy, and keep drifting
    drift = r["drift"]
    assert drift[0] == 0 and drift[-1] > 1 / math.sqrt(n)
    assert drift[-1] > drift[len(drift) // 2] > 0


def test_lr_sensitivity():
    r = E.lr_sensitivity(learning_rates=(1.0,), epochs=1, depth=2)
    assert r["learning_rate"].tolist() == [1.0] and r["bn"].shape == r["no_bn"].shape == (1,)
    # at a large SGD step BN trains and the plain ReLU MLP does not: 0.2 of accuracy apart
    assert r["bn"][0] > r["no_bn"][0] + 0.2


def test_dropout_bn_variance_shift():
    r = E.dropout_bn_variance_shift(epochs=3)
    # dropout before BN: eval-time variance below the running estimate (about 1 - p = 0.5
    # for p = 0.5 on zero-mean inputs, Li et al. 2019; the ReLU inputs here have a mean, so
    # require only a clear shift below 0.8); BN before dropout: no shift within 10 %
    assert r["dropout_before_bn"]["shift"] < 0.8
    assert abs(r["bn_before_dropout"]["shift"] - 1) < 0.1


# ------------------------------------------------------------------------------------------
# Gradients


def test_vanishing_gradients_per_layer_factors():
    depth = 10
    g = E.vanishing_gradients(depth=depth, batch_size=64)
    assert set(g) == set(E.VARIANTS) and all(v.shape == (depth,) for v in g.values())
    f = {k: _factor(v) for k, v in g.items()}
    # Mean field theory per layer (derived in E.vanishing_gradients): sigmoid at most 1/4,
    # tanh (LeCun) and ReLU (He) 1, ReLU + BN √(π/(π−1)) = 1.211. Finite width 64 makes the
    # per-layer gain fluctuate by ~1/√(2·64) ≈ 9 %, ~3 % after the geometric mean over 9
    # layers: a 10 % band is 3 standard deviations.
    assert f["sigmoid"] <= 0.25 * 1.1
    assert f["tanh"] == pytest.approx(1.0, rel=0.1)
    assert f["relu"] == pytest.approx(1.0, rel=0.1)
    assert f["relu+bn"] == pytest.approx(math.sqrt(math.pi / (math.pi - 1)), rel=0.1)
    assert E.THEORY_FACTOR["relu+bn"] == math.sqrt(math.pi / (math.pi - 1))
    # so the sigmoid's first layer gets at most (0.275)^9 ≈ 1e-5 of the last one's gradient
    assert g["sigmoid"][0] < 1e-3 * g["sigmoid"][-1]
    assert g["residual"][0] > g["residual"][-1]  # shortcuts: nothing vanishes
    with pytest.raises(ValueError, match="vanishing_gradients: variant must be one of"):
        E.vanishing_gradients(depth=2, variants=("elu",))


def test_exploding_gradients_init_and_clipping():
    r = E.exploding_gradients()
    # ∂L/∂h grows back through a ReLU layer by √(σ_w² n / 2) (He et al. 2015): n = 64,
    # σ_w² = 1 ("large") → √32, Xavier 2/128 → √½, He 2/64 → 1. Same 10 % band as above.
    for name, var in (("large", 1.0), ("xavier", 2 / 128), ("he", 2 / 64)):
        assert r["theory_factor"][name] == pytest.approx(math.sqrt(var * 64 / 2))
        assert r["factor"][name] == pytest.approx(r["theory_factor"][name], rel=0.1)
    # At depth 30 the large init's gradient is ~√32^30 ≈ 10^22.6 per layer: its square is
    # beyond float32's largest value (3.4e38), so a plain sum of squares would be inf; dlref's
    # global norm (computed on g / 2^k) stays finite. The good inits are small anyway.
    norms = r["global_norm_float32"]
    f32_max = float(np.finfo(np.float32).max)
    assert math.isfinite(norms["large"]) and norms["large"] ** 2 > f32_max
    assert math.isfinite(norms["xavier"]) and norms["xavier"] ** 2 < f32_max
    assert math.isfinite(norms["he"]) and norms["he"] ** 2 < f32_max
    loss = r["loss"]
    assert not np.isfinite(loss["large"][-1])  # one unclipped step blows the weights up
    assert np.all(np.isfinite(loss["large_clipped"]))  # the step is at most lr·max_norm
    assert loss["large_clipped"][-1] < loss["large_clipped"][0]
    assert np.all(np.isfinite(loss["he"])) and loss["he"][-1] < loss["he"][0]
    assert np.all(np.isfinite(loss["xavier"]))


def test_gradient_norms_through_time():
    g = E.gradient_norms_through_time(length=50, hidden=16, batch_size=8)
    assert g["rnn"].shape == g["lstm"].shape == (50,)
    # the fraction of the last step's gradient that reaches the first step: measured
    # 1.4e-3 (LSTM) vs 1.3e-5 (RNN) at seed 0; a factor 10 leaves a wide margin
    assert g["lstm"][0] / g["lstm"][-1] > 10 * g["rnn"][0] / g["rnn"][-1]


# ------------------------------------------------------------------------------------------
# Pooling


def test_pooling_translation_invariance():
    r = E.pooling_translation_invariance()
    # A random strided convolution has no reason to ignore shifts (a random linear map keeps
    # relative differences on average); pooling must cut the relative change by at least
    # 20 % against both it and the unpooled feature map.
    for pool in ("max_pool", "avg_pool"):
        assert r[pool] < 0.8 * r["identity"] and r[pool] < 0.8 * r["strided_conv"]
    # For i.i.d. values a 2×2 max is unchanged by a 1-pixel shift iff the maximum of the 6
    # pixels involved is one of the 2 shared ones: probability 1/3 (ties only add).
    assert r["unchanged_max"] >= 1 / 3


def test_pool_before_conv_saves_macs_costs_accuracy():
    r = E.pool_before_conv(epochs=8)
    # conv 3×3 on 8×8 against 4×4 positions: exactly 4× the multiply-accumulates
    assert r["macs_ratio"] == 4.0
    assert r["macs"]["conv_first"] == 8 * 8 * 9 * 16 and r["macs"]["pool_first"] == 4 * 4 * 9 * 16
    a, b, n = r["accuracy"]["conv_first"], r["accuracy"]["pool_first"], r["n_eval"]
    se = math.sqrt(a * (1 - a) / n + b * (1 - b) / n)  # of the difference (binomial)
    assert a - b > 3 * se


# ------------------------------------------------------------------------------------------
# Regularisation


def test_dropout_ensemble_weight_scaling():
    r = E.dropout_ensemble()
    # Linear layer: the weight-scaling rule is exact in expectation. Each of the 160 outputs'
    # Monte Carlo mean is normal around it with the exact σ/√K: the largest |z| of 160 stays
    # below 4.52 with probability 0.999 (Bonferroni).
    assert r["linear_z"] < 4.52
    # the squared relative gap over the squared Monte Carlo error has mean 1 when the rule
    # is exact; after the ReLUs it is not exact: the gap is beyond twice the noise...
    assert r["linear_gap"] ** 2 < 2 * r["linear_mc_error"] ** 2
    assert r["mlp_gap"] ** 2 > 2 * r["mlp_mc_error"] ** 2
    # ...but a good approximation: the same class on ≥ 95 % of the digits, accuracies within
    # 0.03 (8 digits of 270).
    assert r["agreement"] >= 0.95
    assert abs(r["accuracy_weight_scaling"] - r["accuracy_mc"]) <= 0.03


def test_fitting_regimes_and_what_shrinks_the_gap():
    r = E.fitting_regimes()
    train, gap = r["train_loss"], r["gap"]
    assert set(gap) == set(E.REGIMES)
    # under-fitting: the 2-unit network cannot fit even its 128 training digits (loss above
    # 1 nat, chance is ln 10 = 2.3); over-fitting: the wide one memorises them, wrong labels
    # included (< 0.05), and its test loss is far above (gap > 0.2 nat)
    assert train["underfit"] > 1.0 and train["overfit"] < 0.05 and gap["overfit"] > 0.2
    # each remedy the guide lists shrinks the gap by at least 20 % (the margin: a smaller
    # change is within what another seed of the split moves it)
    for regime in ("l2", "dropout", "augmentation", "early_stopping"):
        assert gap[regime] < 0.8 * gap["overfit"], (regime, gap)
    assert r["stopped_early"] and r["best_eval"] < len(r["val_curve"]["overfit"]) - 1


# ------------------------------------------------------------------------------------------
# Architectures


def test_parameter_sharing_counts():
    r = E.parameter_sharing()
    # by hand: dense 8·8·1 → 8·8·32; conv 3×3, 1 → 32; RNN I = 8, H = 32
    assert r["dense"] == (64 * 1) * (64 * 32) + 64 * 32
    assert r["conv"] == 3 * 3 * 1 * 32 + 32
    per_step = 8 * 32 + 32 * 32 + 32
    assert r["rnn"] == {1: per_step, 8: per_step, 64: per_step}
    assert r["untied"] == {1: per_step, 8: 8 * per_step, 64: 64 * per_step}


# ------------------------------------------------------------------------------------------
# Erratum 16 (docs/errata.md): AlexNet's PCA lighting, against a NumPy oracle


def test_seed_errata_16_pca_lighting_against_numpy():
    """The guide's 颜色变换 item is cut off after "PCA in the RGB space of the training set";
    AlexNet eigen-decomposes the 3×3 RGB covariance of the *whole training set* and adds
    Σ α_i λ_i p_i, α ~ N(0, σ²), to every pixel of an image."""
    rng = np.random.default_rng(16)
    mix = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    images = (rng.random((5, 4, 6, 3)) @ mix).astype(np.float32)
    vals, vecs = fit_pca_color(jnp.asarray(images))
    # NumPy oracle over all pixels of all images (population covariance)
    pixels = images.reshape(-1, 3).astype(np.float64)
    lam, p = np.linalg.eigh(np.cov(pixels.T, bias=True))
    lam, p = lam[::-1], p[:, ::-1]
    np.testing.assert_allclose(np.asarray(vals), lam, rtol=1e-4, atol=1e-7)
    # eigenvectors agree up to sign: |pᵢ · vᵢ| = 1
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(vecs) * p, 0)), 1.0, rtol=1e-4)
    # The set-wide fit is not the mean of per-image fits (albumentations' FancyPCA refits on
    # each image): the between-image variance is part of the set's covariance.
    per_image = np.mean(
        [np.linalg.eigvalsh(np.cov(im.reshape(-1, 3).T, bias=True)) for im in images], 0
    )
    assert lam.sum() > per_image.sum()

    # pca_color adds one shift per image, the same for all its pixels, distributed as
    # N(0, σ² P diag(λ²) Pᵀ): compare the covariance of 4000 shifts with the NumPy value.
    sigma, n = 0.1, 4000
    flat = jnp.full((n, 2, 2, 3), 0.5, jnp.float32)
    shifted = np.asarray(pca_color(jax.random.key(16), flat, vals, vecs, sigma=sigma), np.float64)
    shift = shifted - 0.5
    np.testing.assert_allclose(shift, shift[:, :1, :1, :].repeat(2, 1).repeat(2, 2), atol=1e-6)
    s = shift[:, 0, 0, :]
    expected = sigma**2 * (p * lam**2) @ p.T
    # sample covariance of n Gaussian vectors: each entry's standard error is at most
    # √(2/n)·max diagonal (Wishart); allow 5 of them
    tol = 5 * math.sqrt(2 / n) * np.max(np.diag(expected))
    np.testing.assert_allclose(np.cov(s.T, bias=True), expected, atol=tol)
    assert np.all(np.abs(s.mean(0)) < 5 * np.sqrt(np.diag(expected) / n))


# ------------------------------------------------------------------------------------------
# Arguments: every experiment checks them before any work (tests/test_api.py mutates one
# argument of each at random; these are the cases that the checks were written for). Each
# call raises before it compiles anything: the whole table takes about a second.

BAD_ARGUMENTS = [
    # (function, kwargs, exception, message after "<function>: ")
    ("activation_properties", dict(names="relu"), TypeError, "names must be a sequence"),
    ("activation_properties", dict(names=()), ValueError, "names must have at least 1"),
    ("activation_properties", dict(names=(None,)), TypeError, "activation must be one of"),
    ("activation_properties", dict(limit=math.inf), ValueError, "limit must be finite"),
    ("activation_properties", dict(eps=0.0), ValueError, "eps must lie in"),
    ("activation_convergence", dict(steps=0), ValueError, "steps must be >= 1"),
    ("activation_convergence", dict(target=math.nan), ValueError, "target must be finite"),
    ("activation_convergence", dict(learning_rate="0.5"), TypeError, "learning_rate must be"),
    ("relu_sparsity", dict(repeats=0), ValueError, "repeats must be >= 1"),
    ("linear_output_regression", dict(hidden=True), TypeError, "hidden must be an int"),
    ("pointwise_conv_nonlinearity", dict(channels=(8,)), ValueError, "channels must have"),
    ("pointwise_conv_nonlinearity", dict(channels=(8, 0)), ValueError, "an entry of channels"),
    ("batch_size_effect", dict(batch_sizes=(8, 1.5)), TypeError, "an entry of batch_sizes"),
    ("batch_size_effect", dict(batch_sizes=(10_000,)), ValueError, "batch_sizes must lie in"),
    ("gradient_noise", dict(batch_sizes=(4,)), ValueError, "batch_sizes must have at least 2"),
    ("gradient_noise", dict(samples=1), ValueError, "samples must be >= 2"),
    ("memory_budget_batch", dict(model=None), TypeError, "model must be one of"),
    ("memory_budget_batch", dict(budget_bytes=-1), ValueError, "budget_bytes must be >= 1"),
    ("memory_budget_batch", dict(xla_batches=(0,)), ValueError, "an entry of xla_batches"),
    ("batch_size_scaling", dict(tolerance=0.0), ValueError, "tolerance must lie in"),
    ("batch_size_scaling", dict(constant_lr_fraction=-1.0), ValueError, "constant_lr_fraction"),
    ("feature_normalization", dict(tolerance=math.nan), ValueError, "tolerance must lie in"),
    ("bn_scale_invariance", dict(scales=(1.0, 0.0)), ValueError, "an entry of scales"),
    ("bn_scale_invariance", dict(batch_size=1), ValueError, "batch_size must be >= 2"),
    ("bn_saturation", dict(weight_std=math.inf), ValueError, "weight_std must be finite"),
    ("bn_full_batch_statistics", dict(batch_size=10_000), ValueError, "batch_size must lie"),
    ("lr_sensitivity", dict(learning_rates=(0.1, True)), TypeError, "an entry of learning_r"),
    ("dropout_bn_variance_shift", dict(rate=1.0), ValueError, "rate must lie in"),
    ("vanishing_gradients", dict(variants=["relu", 3]), TypeError, "variant must be one of"),
    ("exploding_gradients", dict(depth=1), ValueError, "depth must be >= 2"),
    ("exploding_gradients", dict(max_norm=0.0), ValueError, "max_norm must lie in"),
    ("gradient_norms_through_time", dict(length=0), ValueError, "length must be >= 1"),
    ("pooling_translation_invariance", dict(window=9), ValueError, "window must lie in"),
    ("pooling_translation_invariance", dict(shifts=((0, 1, 2),)), ValueError, "an entry of shifts"),
    ("pooling_translation_invariance", dict(shifts=(1,)), TypeError, "an entry of shifts"),
    ("pool_before_conv", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("dropout_ensemble", dict(rate=0.0), ValueError, "rate must lie in"),
    ("fitting_regimes", dict(eval_every=200), ValueError, "eval_every must lie in"),
    ("fitting_regimes", dict(policy=("translate",)), TypeError, "an entry of policy"),
    ("fitting_regimes", dict(label_noise=1.5), ValueError, "label_noise must lie in"),
    ("fitting_regimes", dict(n_train=5000), ValueError, "n_train must lie in"),
    ("parameter_sharing", dict(lengths=()), ValueError, "lengths must have at least 1"),
    ("parameter_sharing", dict(seed=-1), ValueError, "seed must be >= 0"),
]


@pytest.mark.parametrize(
    "name,kwargs,exc,message",
    BAD_ARGUMENTS,
    ids=[f"{r[0]}-{sorted(r[1])[0]}" for r in BAD_ARGUMENTS],
)
def test_bad_arguments_raise_naming_the_experiment(name, kwargs, exc, message):
    with pytest.raises(exc, match="^" + re.escape(f"{name}: {message}")):
        getattr(E, name)(**kwargs)


def test_every_experiment_has_a_bad_argument_case():
    import inspect

    functions = {n for n in E.__all__ if inspect.isfunction(getattr(E, n))}
    assert functions == {row[0] for row in BAD_ARGUMENTS}
