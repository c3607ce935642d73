"""``dlref bench``: convolution implementations side by side, JSON and a PNG plot.

Method (every implementation alike, in the same process):

* the same inputs and the same output dtype (bf16 in, bf16 out: XLA asked for a float32
  output from bf16 inputs runs a slower conv, so that comparison would flatter the kernels);
* compiled once (``jax.jit(f).lower(...).compile()``), then warmed up;
* dispatch amortized: ``inner`` calls are queued before one ``block_until_ready``, with
  ``inner`` calibrated so that a sample lasts about ``--sample-ms``; the median (or, with
  ``--statistic min``, the minimum: the least disturbed sample on a busy machine) of
  ``--samples`` samples divided by ``inner`` is the time per call, in wall time (or, with
  ``--clock process``, the CPU time of the process: its work, which other jobs sharing the
  machine do not inflate);
* interleaved: the implementations of one layer are sampled in rotating round-robin order,
  so a slowdown of a shared machine hits them alike and their ratios stay meaningful;
* TFLOP/s from ``2·N·prod(out)·C_out·prod(k)·C_in/g`` (×3 for forward + backward);
* the relative error ``max|y - y_ref| / max|y_ref|`` (:func:`dlref.testing.rel_err`) against
  ``lax.conv_general_dilated`` on float32 inputs at HIGHEST precision (over ``y, dx, dw`` for
  forward + backward);
* the compiled temporary memory, ``compiled.memory_analysis().temp_size_in_bytes``.

Suites: ``cpu`` (default; small shapes, about a minute on 2 cores; the Pallas kernels only
run in interpret mode on a CPU, far too slow to time, so they are left out there) and
``resnet50`` (the ResNet-50 conv layers at batch 128 in bf16 and float32; for a GPU or TPU).
``--dry-run`` only traces and lowers every function (Pallas for CUDA under an abstract H100
when no GPU is present), which checks that a suite builds on a CPU-only host.

The ``reference`` and ``auto`` implementations are ``dlref.conv(impl="reference")`` and
``dlref.conv(impl="auto")``, imported when the harness runs (the harness is a tool on top of
the library; the kernels never import ``dlref.convolution``). ``auto`` is the fastest
implementation known to be correct (``dlref.convolution.auto_impl``): on a CPU the per-tap
reference for depthwise convolutions, im2col's single matmul for 1×1 stride-1 convolutions and
XLA otherwise (the winners of this suite); on a GPU or TPU Pallas only where the tuning table
holds a measured entry that beat XLA, XLA otherwise. Each ``auto`` row names its choice.

Results go to ``./bench/results`` of the working directory (``--out`` elsewhere; required
where that directory does not exist, so nothing is written inside the installed package).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

from dlref.kernels.blocks import conv_geometry
from dlref.kernels.im2col import im2col_conv
from dlref.testing import rel_err

IMPLS = ("reference", "im2col", "pallas", "xla", "auto")
MODES = ("fwd", "fwdbwd")
DTYPES = ("float32", "bfloat16", "float16", "float64")
__all__ = ["Layer", "cli_main", "cpu_suite", "resnet50_suite", "run_suite"]

RESULTS_DIR = Path("bench") / "results"  # relative to the working directory
AUTO_RULE = (
    "auto = the fastest implementation known to be correct: on a CPU the per-tap reference "
    "for depthwise convs, im2col (one matmul) for 1x1 stride-1 convs, XLA otherwise (never "
    "interpret-mode Pallas); on a GPU/TPU Pallas only where the tuning table holds a measured "
    "entry that beat XLA, else XLA"
)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One benchmarked convolution (channels-last input, HWIO kernel)."""

    name: str
    batch: int
    size: int  # square input
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.size, self.size, self.c_in)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.k, self.k, self.c_in // self.groups, self.c_out)

    @property
    def opts(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, groups=self.groups)

    def flops(self) -> float:
        out = (self.size + 2 * self.padding - self.k) // self.stride + 1
        return 2.0 * self.batch * out * out * self.c_out * self.k * self.k * self.c_in / self.groups


def cpu_suite(batch: int = 8) -> list[Layer]:
    """Small layers that run in about a minute on 2 CPU cores."""
    return [
        Layer("stem 7x7/2, 64, 3->16", batch, 64, 3, 16, 7, 2, 3),
        Layer("3x3, 32, 16->32", batch, 32, 16, 32, 3, 1, 1),
        Layer("3x3/2, 32->16, 32->64", batch, 32, 32, 64, 3, 2, 1),
        Layer("1x1, 16, 64->128", batch, 16, 64, 128, 1),
        Layer("dw 3x3, 32, 32", batch, 32, 32, 32, 3, 1, 1, groups=32),
    ]


def resnet50_suite(batch: int = 128) -> list[Layer]:
    """The ResNet-50 conv layers the GPU targets are set on (torchvision's ResNet-50)."""
    return [
        Layer("stem 7x7/2, 224, 3->64", batch, 224, 3, 64, 7, 2, 3),
        Layer("3x3, 56, 64->64", batch, 56, 64, 64, 3, 1, 1),
        Layer("3x3, 28, 128->128", batch, 28, 128, 128, 3, 1, 1),
        Layer("3x3, 14, 256->256", batch, 14, 256, 256, 3, 1, 1),
        Layer("3x3, 7, 512->512", batch, 7, 512, 512, 3, 1, 1),
        Layer("1x1, 56, 64->256", batch, 56, 64, 256, 1),
        Layer("1x1, 14, 1024->256", batch, 14, 1024, 256, 1),
        Layer("3x3/2, 56->28, 128->128", batch, 56, 128, 128, 3, 2, 1),
    ]


SUITES = {
    "cpu": (cpu_suite, ("float32",)),
    "resnet50": (resnet50_suite, ("bfloat16", "float32")),
}


# ---------------------------------------------------------------------------------------------
# The functions under test.


def _xla(x, w, *, stride, padding, groups):
    nd = w.ndim - 2
    return lax.conv_general_dilated(
        x,
        w,
        (stride,) * nd,
        ((padding, padding),) * nd,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )


def _dlref_conv(impl: str) -> Callable:
    from dlref.convolution import conv

    return lambda x, w, **o: conv(x, w, impl=impl, **o)


def auto_choice(layer: Layer, dtype) -> str:
    """What ``impl="auto"`` runs for a layer on the target device."""
    from dlref.convolution import auto_impl

    x = jax.ShapeDtypeStruct(layer.x_shape, jnp.dtype(dtype))
    w = jax.ShapeDtypeStruct(layer.w_shape, jnp.dtype(dtype))
    geo = conv_geometry(x, w, layer.stride, layer.padding, 1, layer.groups, "dlref bench")
    return auto_impl(geo, jnp.dtype(dtype))


def implementation(name: str) -> Callable:
    """``(x, w, *, stride, padding, groups) -> y`` for an implementation name."""
    if name in ("reference", "auto"):
        return _dlref_conv(name)
    if name == "im2col":
        return im2col_conv
    if name == "pallas":
        from dlref.kernels.pallas_igemm import pallas_conv

        return pallas_conv
    if name == "xla":
        return _xla
    raise ValueError(f"dlref bench: unknown implementation {name!r}, expected one of {IMPLS}")


def _make_fn(conv: Callable, layer: Layer, mode: str) -> Callable:
    if mode == "fwd":
        return lambda x, w, ct: conv(x, w, **layer.opts)

    def fwdbwd(x, w, ct):
        y, pull = jax.vjp(lambda x, w: conv(x, w, **layer.opts), x, w)
        return (y, *pull(ct))

    return fwdbwd


def _inputs(layer: Layer, dtype, key):
    kx, kw, kc = jax.random.split(key, 3)
    x = jax.random.normal(kx, layer.x_shape, jnp.float32)
    fan_in = layer.k * layer.k * layer.c_in // layer.groups
    w = jax.random.normal(kw, layer.w_shape, jnp.float32) / math.sqrt(fan_in)
    y_shape = jax.eval_shape(lambda x, w: _xla(x, w, **layer.opts), x, w).shape
    ct = jax.random.normal(kc, y_shape, jnp.float32)
    return x.astype(dtype), w.astype(dtype), ct.astype(dtype)


def _calibrate(compiled, args, sample_ms: float) -> int:
    """Warm up; the number of queued calls that makes a sample last about ``sample_ms``."""
    jax.block_until_ready(compiled(*args))  # warm-up
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    one = max(time.perf_counter() - t0, 1e-6)
    return int(min(1000, max(1, sample_ms / 1e3 / one)))


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def _sample(compiled, args, inner: int, clock=time.perf_counter) -> float:
    """Seconds per call over ``inner`` queued calls, blocked once (``clock``: wall time, or
    the CPU time of this process, all its threads)."""
    t0 = clock()
    # Only the last output is kept: the device runs the queued calls in order, so blocking on
    # it waits for all of them, and earlier outputs are freed as they are replaced (keeping
    # 1000 outputs of a 200 MB layer would not fit on the device).
    out = None
    for _ in range(inner):
        out = compiled(*args)
    jax.block_until_ready(out)
    return (clock() - t0) / inner


def _time_compiled(compiled, args, *, samples: int, sample_ms: float) -> float:
    """Median seconds per call, dispatch amortized over ``inner`` queued calls."""
    inner = _calibrate(compiled, args, sample_ms)
    return statistics.median(_sample(compiled, args, inner) for _ in range(samples))


STATISTICS = {"median": statistics.median, "min": min}


def _time_interleaved(
    compiled: dict,
    args,
    *,
    samples: int,
    sample_ms: float,
    statistic: str = "median",
    clock: str = "wall",
) -> dict:
    """Seconds per call of each function (the ``statistic`` of its samples), the samples
    taken in rotating round-robin order (a slowdown of a shared machine hits every
    implementation alike, so their ratios stay meaningful)."""
    inner = {k: _calibrate(c, args, sample_ms) for k, c in compiled.items()}
    times: dict = {k: [] for k in compiled}
    names = list(compiled)
    for s in range(samples):
        for k in names[s % len(names) :] + names[: s % len(names)]:
            times[k].append(_sample(compiled[k], args, inner[k], CLOCKS[clock]))
    return {k: STATISTICS[statistic](v) for k, v in times.items()}


def _gpu_lowering_context():
    """An abstract H100 for lowering the Triton kernels on a host without a GPU."""
    from jax.sharding import AbstractDevice, AbstractMesh, AxisType

    dev = AbstractDevice(device_kind="NVIDIA H100", num_cores=None, platform="gpu")
    return jax.sharding.use_abstract_mesh(
        AbstractMesh((1,), ("x",), (AxisType.Explicit,), abstract_device=dev)
    )


def _dry_run_one(impl: str, fn: Callable, args) -> dict:
    shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if impl == "pallas" and jax.default_backend() == "cpu":
            with _gpu_lowering_context():
                text = jax.jit(fn).trace(*shapes).lower(lowering_platforms=("cuda",)).as_text()
            return {"lowered_for": "cuda", "triton_calls": text.count("xla.gpu.triton")}
        jax.jit(fn).trace(*shapes).lower()
    return {"lowered_for": jax.default_backend()}


def run_suite(
    suite: str = "cpu",
    *,
    impls: tuple[str, ...] | None = None,
    dtypes: tuple[str, ...] | None = None,
    modes: tuple[str, ...] = MODES,
    batch: int | None = None,
    samples: int = 5,
    sample_ms: float = 100.0,
    statistic: str = "median",
    clock: str = "wall",
    dry_run: bool = False,
    progress: bool = True,
) -> dict:
    """Run (or, with ``dry_run``, only lower) a suite; return the JSON-ready record."""
    from tqdm.auto import tqdm

    make_layers, default_dtypes = SUITES[suite]
    layers = make_layers() if batch is None else make_layers(batch)
    on_cpu = jax.default_backend() == "cpu"
    if impls is None:  # the one place the default set is chosen
        impls = tuple(i for i in IMPLS if not (on_cpu and i == "pallas" and not dry_run))
    dtypes = dtypes or default_dtypes
    notes = []
    if on_cpu and "pallas" not in impls:
        notes.append("pallas left out: on a CPU it only runs in interpret mode, too slow to time")
    if "auto" in impls:
        notes.append(AUTO_RULE)
    jobs = [(ly, dt, md) for dt in dtypes for ly in layers for md in modes]
    rows = []
    key = jax.random.key(0)
    bar = tqdm(
        total=len(jobs) * len(impls),
        desc=f"dlref bench {suite}",
        unit="fn",
        disable=not progress,
        file=sys.stderr,
    )
    for layer, dtype, mode in jobs:
        if dry_run:  # shapes only: nothing is allocated
            args = jax.eval_shape(functools.partial(_inputs, layer, jnp.dtype(dtype)), key)
        else:
            args = _inputs(layer, jnp.dtype(dtype), key)
            ref_args = tuple(a.astype(jnp.float32) for a in args)
            with jax.default_matmul_precision("highest"):
                want = jax.jit(_make_fn(_xla, layer, mode))(*ref_args)
        compiled, outputs = {}, {}
        for impl in impls:
            bar.set_postfix_str(f"{layer.name} {dtype} {mode} {impl}")
            row = dict(
                layer=layer.name,
                x_shape=layer.x_shape,
                w_shape=layer.w_shape,
                **layer.opts,
                dtype=dtype,
                mode=mode,
                impl=impl,
            )
            if impl == "auto":
                row["auto_choice"] = auto_choice(layer, dtype)
            try:
                fn = _make_fn(implementation(impl), layer, mode)
                if dry_run:
                    row.update(_dry_run_one(impl, fn, args))
                else:
                    compiled[impl] = jax.jit(fn).lower(*args).compile()
                    outputs[impl] = compiled[impl](*args)
            except (NotImplementedError, RuntimeError) as e:
                row["skipped"] = f"{type(e).__name__}: {e}"
            rows.append(row)
            bar.update()
        if compiled:
            seconds = _time_interleaved(
                compiled,
                args,
                samples=samples,
                sample_ms=sample_ms,
                statistic=statistic,
                clock=clock,
            )
            flops = layer.flops() * (1 if mode == "fwd" else 3)
            for row in rows[-len(impls) :]:
                impl = row["impl"]
                if impl not in compiled:
                    continue
                mem = compiled[impl].memory_analysis()
                row.update(
                    time_ms=seconds[impl] * 1e3,
                    tflops=flops / seconds[impl] / 1e12,
                    rel_error=rel_err(outputs[impl], want),
                    temp_bytes=None if mem is None else int(mem.temp_size_in_bytes),
                )
            del compiled, outputs
    bar.close()
    for row in rows:  # ratio to XLA: time / time_xla (> 1 is slower than XLA)
        base = [
            r
            for r in rows
            if r["impl"] == "xla"
            and r["layer"] == row["layer"]
            and r["dtype"] == row["dtype"]
            and r["mode"] == row["mode"]
        ]
        if base and "time_ms" in row and "time_ms" in base[0]:
            row["ratio_to_xla"] = row["time_ms"] / base[0]["time_ms"]
    device = jax.devices()[0]
    return {
        "suite": suite,
        "dry_run": dry_run,
        "device": device.device_kind,
        "platform": device.platform,
        "devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "method": {
            "samples": samples,
            "sample_ms": sample_ms,
            "statistic": statistic,
            "clock": clock,
            "dispatch": "amortized",
            "order": "samples interleaved across implementations (rotating round-robin)",
            "reference": "lax.conv_general_dilated float32 HIGHEST",
        },
        "notes": notes,
        "results": rows,
    }


def format_table(record: dict) -> str:
    """The results as a fixed-width text table."""
    head = ("layer", "dtype", "mode", "impl", "ms", "TFLOP/s", "x XLA", "rel err", "temp MiB")
    body = []
    for r in record["results"]:
        impl = f"auto={r['auto_choice']}" if "auto_choice" in r else r["impl"]
        if "time_ms" not in r:
            status = r.get("skipped", r.get("lowered_for", "-"))
            body.append((r["layer"], r["dtype"], r["mode"], impl, str(status)[:60], *[""] * 4))
            continue
        temp = "-" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.2f}"
        ratio = f"{r['ratio_to_xla']:.2f}" if "ratio_to_xla" in r else "-"
        body.append(
            (
                r["layer"],
                r["dtype"],
                r["mode"],
                impl,
                f"{r['time_ms']:.3f}",
                f"{r['tflops']:.4f}",
                ratio,
                f"{r['rel_error']:.1e}",
                temp,
            )
        )
    widths = [max(len(str(v)) for v in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    method = record.get("method", {})
    lines = [
        f"{record['suite']} suite on {record['device']} ({record['platform']}), "
        f"jax {record['jax_version']}, {record['date']}; time per call: the "
        f"{method.get('statistic', 'median')} of {method.get('samples', '?')} samples, "
        f"{method.get('clock', 'wall')} clock"
    ]
    lines += [fmt.format(*head), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*b) for b in body]
    lines += [f"note: {n}" for n in record["notes"]]
    return "\n".join(lines)


def plot(record: dict, path: Path) -> None:
    """Bar chart of time relative to XLA, one panel per (dtype, mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in record["results"] if "ratio_to_xla" in r]
    panels = sorted({(r["dtype"], r["mode"]) for r in rows})
    if not panels:
        return
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    width = 0.8 / len(impls)
    for ax, (dtype, mode) in zip(axes[0], panels, strict=True):
        for k, impl in enumerate(impls):
            vals = []
            for ly in layers:
                hit = [
                    r
                    for r in rows
                    if (r["layer"], r["dtype"], r["mode"], r["impl"]) == (ly, dtype, mode, impl)
                ]
                vals.append(hit[0]["ratio_to_xla"] if hit else float("nan"))
            ax.bar([i + k * width for i in range(len(layers))], vals, width, label=impl)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(layers))])
        ax.set_xticklabels(layers, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("time / XLA time (lower is faster)")
        ax.set_title(f"{dtype}, {mode}")
        ax.legend(fontsize=7)
    fig.suptitle(f"dlref bench {record['suite']}: {record['device']}, jax {record['jax_version']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1 (a one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def cli_main(argv: list[str]) -> int:
    """``dlref bench [--suite cpu|resnet50] ...``: run, print the table, write JSON and PNG.

    Bad arguments print one ``dlref bench: error: ...`` line and exit with status 2.
    """
    p = argparse.ArgumentParser(prog="dlref bench", description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=sorted(SUITES), default="cpu")
    p.add_argument("--impl", default=None, help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument(
        "--dtype", default=None, help=f"comma-separated subset of {','.join(DTYPES)} (suite's)"
    )
    p.add_argument("--mode", default=",".join(MODES), help="fwd, fwdbwd or both")
    p.add_argument(
        "--batch", type=_positive_int, default=None, help="override the suite's batch size"
    )
    p.add_argument("--samples", type=_positive_int, default=5)
    p.add_argument("--sample-ms", type=_positive_float, default=100.0)
    p.add_argument(
        "--statistic",
        choices=sorted(STATISTICS),
        default="median",
        help="of the samples: median, or min (the least disturbed sample, on a busy machine)",
    )
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or the CPU time of the process (its work, on a machine shared with "
        "other jobs)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"directory for the JSON and PNG (default ./{RESULTS_DIR}, which must exist)",
    )
    p.add_argument("--dry-run", action="store_true", help="only trace and lower every function")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    args = p.parse_args(argv)

    def split(text):
        return tuple(v for v in text.split(",") if v) if text else None

    impls, modes, dtypes = split(args.impl), split(args.mode), split(args.dtype)
    for name, values, allowed in (
        ("implementation", impls, IMPLS),
        ("mode", modes, MODES),
        ("dtype", dtypes, DTYPES),
    ):
        for v in values or ():
            if v not in allowed:
                p.error(f"unknown {name} {v!r}, expected some of {', '.join(allowed)}")
    out = None
    if not args.no_save:
        out = Path(args.out) if args.out is not None else RESULTS_DIR
        if args.out is None and not out.is_dir():
            p.error(
                f"./{RESULTS_DIR} does not exist in {Path.cwd()}: run from a dlref checkout "
                f"or pass --out DIR (or --no-save)"
            )
    record = run_suite(
        args.suite,
        impls=impls,
        dtypes=dtypes,
        modes=modes,
        batch=args.batch,
        samples=args.samples,
        sample_ms=args.sample_ms,
        statistic=args.statistic,
        clock=args.clock,
        dry_run=args.dry_run,
        progress=not args.no_progress,
    )
    print(format_table(record))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{args.suite}{'_dryrun' if args.dry_run else ''}_{record['platform']}"
        (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
        if not args.dry_run:
            plot(record, out / f"{stem}.png")
        print(f"wrote {out / stem}.json" + ("" if args.dry_run else " and .png"))
    # `not <=`: a NaN error (a NaN in either output, dlref.testing.rel_err) is a failure too
    failed = [r for r in record["results"] if not r.get("rel_error", 0) <= 5e-2]
    return 1 if failed else 0
