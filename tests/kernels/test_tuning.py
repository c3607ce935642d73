"""The tuning table, the kernel paths it selects (gemm, small_cin, loop order), output
poisoning, and the GPU check script's CPU smoke run.

Interpret-mode shapes are tiny; each value-and-gradient test jits one function.
"""

from __future__ import annotations

import importlib.util
import json
import types
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _oracle import lax_conv, lax_conv_epilogue, vjp_both
from jax.experimental import pallas as pl
from jax.sharding import AbstractDevice, AbstractMesh, AxisType

from dlref.kernels import bench, tuning
from dlref.kernels.blocks import ConvBlocks, choose_blocks, conv_geometry, target_device
from dlref.kernels.pallas_igemm import _call, pallas_conv, poison_outputs
from dlref.testing import rel_err

H100 = AbstractDevice(device_kind="NVIDIA H100", num_cores=None, platform="gpu")
MESH = AbstractMesh((1,), ("x",), (AxisType.Explicit,), abstract_device=H100)
ROOT = Path(__file__).resolve().parents[2]


def _geo(xs, ws, stride=1, padding=0, dilation=1, groups=1):
    x, w = jax.ShapeDtypeStruct(xs, jnp.float32), jax.ShapeDtypeStruct(ws, jnp.float32)
    return conv_geometry(x, w, stride, padding, dilation, groups, "test")


def _entry(device="NVIDIA H100", sig="sig", dtype="bfloat16", **blocks):
    return tuning.TuningEntry(device, sig, dtype, ConvBlocks(**blocks), False)


# ---------------------------------------------------------------------------------------------
# The table.


def test_signature_is_batch_free_and_names_every_option():
    a = tuning.signature_of((128, 56, 56, 128), (3, 3, 128, 128), stride=2, padding=1)
    b = tuning.signature_of((1, 56, 56, 128), (3, 3, 128, 128), stride=2, padding=1)
    assert a == b == "k3x3_s2x2_d1x1_p1-1_1-1_g1_in56x56_c128-128"
    c = tuning.signature_of((1, 56, 56, 128), (3, 3, 64, 128), padding=2, dilation=2, groups=2)
    assert c == "k3x3_s1x1_d2x2_p2-2_2-2_g2_in56x56_c128-128"


def test_lookup_prefix_longest_match_and_misses():
    table = tuning.TuningTable(
        [
            _entry("NVIDIA H100", block_m=32),
            _entry("NVIDIA H100 80GB", block_m=128),
            _entry("NVIDIA H100", dtype="float32", block_m=16),
        ]
    )
    assert table.lookup("NVIDIA H100 80GB HBM3", "sig", jnp.bfloat16).block_m == 128
    assert table.lookup("nvidia h100 pcie", "sig", "bfloat16").block_m == 32  # case-insensitive
    assert table.lookup("NVIDIA H100", "sig", jnp.float32).block_m == 16
    assert table.lookup("NVIDIA H100", "sig", jnp.float16) is None  # dtype miss
    assert table.lookup("NVIDIA H100", "other", jnp.bfloat16) is None  # shape miss
    assert table.lookup("NVIDIA A100", "sig", jnp.bfloat16) is None  # device miss


def test_choose_blocks_consults_the_table_then_falls_back():
    geo = _geo((2, 14, 14, 256), (3, 3, 256, 256), padding=1)
    sig = tuning.conv_signature(geo)
    stored = ConvBlocks(64, 128, 64, 4, 5, loop_order="channel_major")
    table = tuning.TuningTable([tuning.TuningEntry("NVIDIA H200", sig, "bfloat16", stored, True)])
    args = (256, 256, 224, jnp.bfloat16)
    hit = choose_blocks(*args, geometry=geo, device_kind="NVIDIA H200", table=table)
    assert hit == stored
    miss = choose_blocks(*args, geometry=geo, device_kind="NVIDIA H100", table=table)
    assert miss == choose_blocks(*args) == ConvBlocks(128, 128, 64, 8, 3)  # the heuristic
    # TPU never reads the (GPU) table.
    tpu = choose_blocks(*args, backend="tpu", geometry=geo, device_kind="NVIDIA H200", table=table)
    assert tpu.block_n == 128 and tpu.path == "implicit"


def test_round_trip(tmp_path):
    table = tuning.TuningTable(
        [
            _entry(block_m=128, path="gemm", num_stages=4),
            tuning.TuningEntry(
                "NVIDIA H200",
                "s2",
                "float32",
                ConvBlocks(fold_kw=True, path="small_cin"),
                True,
                "note",
                0.25,
                "stem",
            ),
        ]
    )
    path = tmp_path / "t.json"
    table.save(path)
    back = tuning.TuningTable.load(path)
    assert back.entries == table.entries
    assert json.loads(path.read_text())["version"] == tuning.SCHEMA_VERSION


def test_shipped_table_covers_the_resnet50_layers_and_is_marked_unmeasured():
    table = tuning.TuningTable.load(tuning.TABLE_PATH)
    assert all(not e.measured and "not measured" in e.note for e in table.entries)
    for device in ("NVIDIA H100 80GB HBM3", "NVIDIA H200"):
        for ly in bench.resnet50_suite():
            sig = tuning.signature_of(ly.x_shape, ly.w_shape, stride=ly.stride, padding=ly.padding)
            blocks = table.lookup(device, sig, jnp.bfloat16)
            assert blocks is not None, (device, ly.name)
            if ly.k == 1:
                assert blocks.path == "gemm"
            if ly.c_in == 3:
                assert blocks.path == "small_cin"


def test_env_var_tables_merge_over_the_shipped_one(tmp_path, monkeypatch):
    sig = tuning.signature_of((1, 56, 56, 64), (3, 3, 64, 64), padding=1)
    mine = tuning.TuningTable([_entry("NVIDIA H100", sig, block_m=16, num_stages=7)])
    mine.save(tmp_path / "mine.json")
    monkeypatch.setenv(tuning.ENV_VAR, str(tmp_path / "mine.json"))
    merged = tuning.default_table()
    assert merged.lookup("NVIDIA H100 80GB HBM3", sig, "bfloat16").num_stages == 7
    assert len(merged) == len(tuning.TuningTable.load(tuning.TABLE_PATH))  # replaced, not added


def test_pallas_conv_follows_the_table_of_the_target_device(tmp_path, monkeypatch):
    # A (deliberately unusable) gemm entry for a 3x3 conv on the "cpu" device: pallas_conv
    # must pick it up, which shows as the gemm path's error.
    sig = tuning.signature_of((1, 4, 4, 2), (3, 3, 2, 2))
    tuning.TuningTable([_entry("cpu", sig, "float32", path="gemm")]).save(tmp_path / "t.json")
    monkeypatch.setenv(tuning.ENV_VAR, str(tmp_path / "t.json"))
    assert target_device() == ("cpu", "cpu")
    with pytest.raises(NotImplementedError, match="the gemm path needs a 1x1 kernel"):
        pallas_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)))
    with jax.sharding.use_abstract_mesh(MESH):
        assert target_device() == ("gpu", "NVIDIA H100")


GOOD = {"device": "d", "signature": "s", "dtype": "bfloat16", "blocks": {}, "measured": False}


@pytest.mark.parametrize(
    "data,match",
    [
        ({"entries": []}, "schema version None"),
        ({"version": 1, "entries": {}}, "entries must be a list"),
        ({"version": 1, "entries": [{**GOOD, "measured": "no"}]}, "measured must be true or fal"),
        (
            {"version": 1, "entries": [{k: v for k, v in GOOD.items() if k != "dtype"}]},
            r"entry 0: entry is missing \['dtype'\]",
        ),
        (
            {"version": 1, "entries": [{**GOOD, "blocks": {"bm": 64}}]},
            r"blocks has unknown fields \['bm'\]",
        ),
        (
            {"version": 1, "entries": [{**GOOD, "blocks": {"path": "winograd"}}]},
            "path must be one of",
        ),
        (
            {"version": 1, "entries": [{**GOOD, "blocks": {"block_m": 0}}]},
            "block_m must be a positive int",
        ),
        ({"version": 1, "entries": [{**GOOD, "dtype": "bf17"}]}, "unknown dtype 'bf17'"),
        ({"version": 1, "entries": [{**GOOD, "extra": 1}]}, r"unknown keys \['extra'\]"),
        ({"version": 1, "entries": [{**GOOD, "time_ms": -1}]}, "time_ms must be a positive"),
        (
            {"version": 1, "entries": [{**GOOD, "xla_time_ms": True}]},
            "xla_time_ms must be a positive",
        ),
        ({"version": 1, "entries": [GOOD, GOOD]}, "duplicate entry"),
        ({"version": 1, "entries": [3]}, "an entry must be an object"),
    ],
)
def test_bad_tables_raise_clear_errors(data, match):
    with pytest.raises(ValueError, match=match):
        tuning.TuningTable.from_json(data)


def test_bad_json_file(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        tuning.TuningTable.load(tmp_path / "t.json")


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(num_warps=0), "num_warps must be a positive int"),
        (dict(block_k=16.0), "block_k must be a positive int"),
        (dict(wgrad_splits=-1), "wgrad_splits must be an int >= 0"),
        (dict(loop_order="k_major"), "loop_order must be one of"),
        (dict(fold_kw=1), "fold_kw must be a bool"),
    ],
)
def test_conv_blocks_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        ConvBlocks(**kw)


# ---------------------------------------------------------------------------------------------
# Paths chosen by the heuristic.


@pytest.mark.parametrize(
    "xs,ws,opts,path,fold",
    [
        ((2, 14, 14, 1024), (1, 1, 1024, 256), {}, "gemm", False),
        ((2, 224, 224, 3), (7, 7, 3, 64), dict(stride=2, padding=3), "small_cin", False),
        ((2, 32, 32, 3), (3, 3, 3, 16), dict(padding=1), "small_cin", True),  # 3*16 > 16
        ((2, 14, 14, 64), (1, 1, 32, 64), dict(groups=2), "implicit", False),
        ((2, 14, 14, 64), (1, 1, 64, 64), dict(stride=2), "implicit", False),
        ((2, 14, 14, 64), (3, 3, 64, 64), dict(padding=1), "implicit", False),
    ],
    ids=["1x1", "stem", "cifar-stem", "grouped-1x1", "strided-1x1", "3x3"],
)
def test_heuristic_paths(xs, ws, opts, path, fold):
    geo = _geo(xs, ws, **opts)
    g = geo.groups
    b = choose_blocks(
        geo.c_in // g, geo.c_out // g, 196, jnp.bfloat16, geometry=geo, device_kind="(none)"
    )
    assert (b.path, b.fold_kw) == (path, fold)
    if path == "gemm":
        assert b.block_m == 128  # M is the whole batch's pixels, not the 196 of one image


# ---------------------------------------------------------------------------------------------
# The paths in interpret mode against lax.conv_general_dilated and jax.grad.

PATH_CASES = [
    # gemm: M = 2*5*3 = 30 and C_in = 20 not multiples of the blocks (padding exercised)
    ((2, 5, 3, 20), (1, 1, 20, 24), {}, ConvBlocks(16, 16, 16, path="gemm")),
    ((2, 11, 9, 3), (7, 7, 3, 5), dict(stride=2, padding=3), None),  # small_cin, stem-like
    (
        (1, 9, 8, 2),
        (3, 3, 2, 4),
        dict(stride=(2, 1), padding=((1, 2), (1, 0)), dilation=2),
        ConvBlocks(16, 16, 16, path="small_cin", fold_kw=True),
    ),
    (
        (1, 6, 6, 20),
        (3, 3, 20, 20),
        dict(padding=1),
        ConvBlocks(16, 16, 16, loop_order="channel_major"),
    ),
]
PATH_IDS = ["gemm", "small_cin-stem", "small_cin-fold-dilated", "channel-major"]


@pytest.mark.parametrize("xs,ws,opts,block", PATH_CASES, ids=PATH_IDS)
def test_paths_values_and_grads_match_lax(key, xs, ws, opts, block):
    kx, kw, kc = jax.random.split(key, 3)
    x, w = jax.random.normal(kx, xs), jax.random.normal(kw, ws)

    def f(x, w):
        return pallas_conv(x, w, block=block, **opts)

    def ref(x, w):
        return lax_conv(x, w, **opts)

    got, want, g_got, g_want = jax.jit(lambda x, w: vjp_both(f, ref, (x, w), kc))(x, w)
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape and rel_err(a, b) < 1e-5


def test_gemm_path_fused_epilogue_bf16(key):
    ks = jax.random.split(key, 7)
    x = jax.random.normal(ks[0], (2, 4, 4, 32)).astype(jnp.bfloat16)
    w = jax.random.normal(ks[1], (1, 1, 32, 16)).astype(jnp.bfloat16)
    bias, scale, shift = (jax.random.normal(k, (16,)) for k in ks[2:5])
    res = jax.random.normal(ks[5], (2, 4, 4, 16)).astype(jnp.bfloat16)

    def f(*a):
        return pallas_conv(
            a[0], a[1], bias=a[2], scale=a[3], shift=a[4], residual=a[5], activation="relu"
        )

    def ref(*a):
        a = [v.astype(jnp.float32) for v in a]
        return lax_conv_epilogue(*a, activation="relu")

    args = (x, w, bias, scale, shift, res)
    got, want, g_got, g_want = jax.jit(lambda *a: vjp_both(f, ref, a, ks[6]))(*args)
    assert got.dtype == jnp.bfloat16
    assert rel_err(got, want) < 1.5e-2  # bf16 inputs and output, float32 accumulation
    for a, b in zip(g_got, g_want, strict=True):
        assert rel_err(a, b) < 1.5e-2


# ---------------------------------------------------------------------------------------------
# Poisoned outputs.


def test_poisoning_exposes_unwritten_tiles():
    # A kernel that stores only its first tile: poisoned, the second tile reads NaN.
    def kernel(o_ref):
        @pl.when(pl.program_id(0) == 0)
        def _():
            o_ref[...] = jnp.ones(o_ref.shape, o_ref.dtype)

    plan = types.SimpleNamespace(interpret=True, backend="interpret", poison=True)
    spec = pl.BlockSpec((8, 8), lambda i: (i, 0))
    out_shape = [jax.ShapeDtypeStruct((16, 8), jnp.float32)]
    kw = dict(out_shape=out_shape, grid=(2,), in_specs=[], out_specs=[spec], plan=plan, name="t")
    (y,) = _call(kernel, [], **kw)
    np.testing.assert_array_equal(y[:8], 1.0)
    assert bool(jnp.all(jnp.isnan(y[8:])))


def test_poisoned_conv_writes_every_tile(key):
    kx, kw = jax.random.split(key)
    x, w = jax.random.normal(kx, (2, 5, 3, 20)), jax.random.normal(kw, (1, 1, 20, 24))
    with poison_outputs():
        y = jax.jit(lambda x, w: pallas_conv(x, w, block=ConvBlocks(16, 16, 16, path="gemm")))(x, w)
    assert rel_err(y, lax_conv(x, w)) < 1e-5  # finite: no tile left unwritten


# ---------------------------------------------------------------------------------------------
# CUDA lowering of the paths, from this CPU host.


def _lower(fn, *args) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with jax.sharding.use_abstract_mesh(MESH):
            return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


@pytest.mark.parametrize(
    "xs,ws,opts,block,fwd_name",
    [
        ((2, 14, 14, 64), (1, 1, 64, 256), {}, None, "dlref_conv_gemm"),
        ((2, 32, 32, 3), (7, 7, 3, 64), dict(stride=2, padding=3), None, "dlref_conv_fwd"),
        ((2, 32, 32, 3), (3, 3, 3, 16), dict(padding=1), None, "dlref_conv_fwd"),  # fold_kw
        (
            (2, 8, 8, 64),
            (3, 3, 64, 64),
            dict(padding=1),
            ConvBlocks(64, 64, 32, loop_order="channel_major"),
            "dlref_conv_fwd",
        ),
    ],
    ids=["gemm", "small_cin", "small_cin-fold", "channel-major"],
)
def test_paths_lower_to_triton(xs, ws, opts, block, fwd_name):
    x, w = jax.ShapeDtypeStruct(xs, jnp.bfloat16), jax.ShapeDtypeStruct(ws, jnp.bfloat16)

    def fwd(x, w):
        return pallas_conv(x, w, block=block, activation="relu", **opts)

    text = _lower(fwd, x, w)
    assert text.count("xla.gpu.triton") == 1 and fwd_name in text
    grad = _lower(jax.grad(lambda x, w: fwd(x, w).astype(jnp.float32).sum(), (0, 1)), x, w)
    assert grad.count("xla.gpu.triton") == 3 and "dlref_conv_wgrad" in grad
    if fwd_name == "dlref_conv_gemm":  # the input gradient of a 1x1 conv is a 1x1 conv too
        assert grad.count("dlref_conv_gemm") >= 2


# ---------------------------------------------------------------------------------------------
# bench/gpu_check.py runs on a CPU (smoke mode) and writes its JSON and table fragment.


def _load_gpu_check():
    """bench/gpu_check.py as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    return gpu_check


def test_gpu_check_smoke(tmp_path):
    gpu_check = _load_gpu_check()
    assert gpu_check.main(["--out", str(tmp_path), "--smoke"]) == 0
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"device", "jax_version", "date", "method", "matmul", "rows", "summary"} <= set(record)
    rows = record["rows"]
    impls = {(r["impl"], r["dtype"], r["mode"]) for r in rows}
    want = {
        ("xla", "bfloat16", "fwd"),
        ("pallas", "bfloat16", "fwd"),
        ("im2col", "bfloat16", "fwd"),
        ("pallas", "bfloat16", "fwdbwd"),
        ("pallas", "float32", "fwd"),
    }
    assert want <= impls
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
    best = [r for r in rows if r.get("best")]
    assert len(best) == 2 and all(r["poisoned_ok"] for r in best)
    assert {r["config"]["path"] for r in best} == {"small_cin", "gemm"}
    assert {r["impl"] for r in record["fused"]} == {"xla_unfused", "pallas_fused"}
    assert record["summary"]["all_checked_ok"] is True
    fragment = tuning.TuningTable.load(tmp_path / "tuning_fragment.json")
    assert len(fragment) == 2 and all(e.measured for e in fragment.entries)


def test_gpu_check_dry_run_lowers_every_variant_for_cuda(tmp_path):
    # Every swept configuration, forward + backward and the fused kernel, at the real ResNet-50
    # shapes, lowers to Triton for an (abstract) H100: the GPU session will not hit a
    # lowering error.
    gpu_check = _load_gpu_check()
    assert gpu_check.main(["--out", str(tmp_path), "--dry-run"]) == 0
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = record["rows"] + record["fused"]
    assert not record["errors"] and not record["skipped"]
    assert all("error" not in r for r in rows), [r for r in rows if "error" in r]
    pallas = [r for r in rows if r["impl"].startswith("pallas")]
    assert len(pallas) > 40
    for r in pallas:
        assert r["triton_calls"] == (1 if r["mode"] == "fwd" else 3), r
    paths = {r["config"]["path"] for r in pallas if "config" in r}
    assert paths == {"implicit", "gemm", "small_cin"}
