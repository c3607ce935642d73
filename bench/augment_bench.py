"""Benchmark: dlref.augment.augment_batch against dm-pix under vmap and a per-image Python loop.

    .venv/bin/python bench/augment_bench.py [--quick]

A six-transform policy (random flip, random rotation of up to 15° with constant fill, random
saturation, random contrast, random brightness, Gaussian noise) on 256 images of 32×32×3 and of
224×224×3, float32, on the default JAX device (the CPU here). Three ways:

* ``dlref``: ``augment_batch(key, images, POLICY)``, one jitted call, vmap over split keys,
  and the same with ``batch_size=1`` (``lax.map`` over the images inside one jitted call);
* ``dm-pix vmap``: the same transforms written with dm-pix (``random_flip_left_right``,
  ``rotate``, ``random_saturation``, ``random_contrast``, ``random_brightness``, plus
  ``jax.random.normal``), jitted, vmapped over split keys;
* ``python loop``: ``augment_batch`` on one ``(H, W, C)`` image (compiled once), called in a
  Python loop over the images. For 224×224 only ``LOOP_IMAGES_224`` images are looped and the
  time is scaled to 256 (the loop's cost is linear in the number of images).

Every function is compiled and run once before timing (warm-up); the reported time is the
median of ``SAMPLES`` runs, each ended by ``block_until_ready``. Results go to
``bench/results/augment_<device>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib
import platform
import statistics
import time

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

from dlref.augment import Transform, augment_batch

MAX_ANGLE = math.radians(15)
POLICY = (
    Transform("flip_left_right", p=0.5),
    Transform("rotate", p=1.0, args=(MAX_ANGLE,)),
    Transform("saturation", p=1.0, args=(0.7, 1.3)),
    Transform("contrast", p=1.0, args=(0.8, 1.2)),
    Transform("brightness", p=1.0, args=(0.1,)),
    Transform("gaussian_noise", p=1.0, args=(0.03,)),
)
N = 256
LOOP_IMAGES_224 = 32


def _pix_one(key, image):
    k = jax.random.split(key, 6)
    x = pix.random_flip_left_right(k[0], image)
    angle = jax.random.uniform(k[1], (), image.dtype, -MAX_ANGLE, MAX_ANGLE)
    x = pix.rotate(x, angle, mode="constant", cval=0.0)
    x = pix.random_saturation(k[2], x, 0.7, 1.3)
    x = pix.random_contrast(k[3], x, 0.8, 1.2)
    x = pix.random_brightness(k[4], x, 0.1)
    sigma = jax.random.uniform(k[5], (), image.dtype, 0.0, 0.03)
    x = x + sigma * jax.random.normal(jax.random.fold_in(k[5], 1), x.shape, x.dtype)
    return jnp.clip(x, 0.0, 1.0)


@jax.jit
def pix_batch(key, images):
    return jax.vmap(_pix_one)(jax.random.split(key, images.shape[0]), images)


def dlref_batch(key, images):
    return augment_batch(key, images, POLICY)


def dlref_batch_map(key, images):
    return augment_batch(key, images, POLICY, batch_size=1)


def python_loop(key, images):
    keys = jax.random.split(key, images.shape[0])
    return [augment_batch(k, im, POLICY) for k, im in zip(keys, images, strict=True)]


def _median_time(fn, *args, samples):
    jax.block_until_ready(fn(*args))  # warm-up (compiles)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32×32 only, 3 samples")
    args = parser.parse_args()
    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    sizes = [32] if args.quick else [32, 224]
    rows = []
    for hw in sizes:
        samples = 3 if (args.quick or hw == 224) else 7
        images = jnp.asarray(rng.random((N, hw, hw, 3)), jnp.float32)
        t_dlref, _ = _median_time(dlref_batch, key, images, samples=samples)
        t_map, _ = _median_time(dlref_batch_map, key, images, samples=samples)
        t_pix, _ = _median_time(pix_batch, key, images, samples=samples)
        n_loop = N if hw == 32 else LOOP_IMAGES_224
        t_loop, _ = _median_time(python_loop, key, images[:n_loop], samples=samples)
        t_loop_scaled = t_loop * N / n_loop
        row = {
            "shape": [N, hw, hw, 3],
            "samples": samples,
            "dlref_augment_batch_s": t_dlref,
            "dlref_augment_batch_lax_map_s": t_map,
            "dm_pix_vmap_s": t_pix,
            "python_loop_s": t_loop_scaled,
            "python_loop_images_timed": n_loop,
            "python_loop_scaled_to": N,
            "dlref_images_per_s": N / t_dlref,
            "speedup_vs_dm_pix": t_pix / t_dlref,
            "speedup_vs_loop": t_loop_scaled / t_dlref,
        }
        rows.append(row)
        print(
            f"{N}×{hw}×{hw}×3: dlref vmap {t_dlref * 1e3:8.1f} ms  "
            f"dlref lax.map {t_map * 1e3:8.1f} ms  dm-pix vmap {t_pix * 1e3:8.1f} ms  "
            f"python loop {t_loop_scaled * 1e3:8.1f} ms"
            + (f" (timed on {n_loop}, scaled)" if n_loop != N else "")
        )
    device = jax.devices()[0]
    out = {
        "benchmark": "augment_batch, six-transform policy",
        "policy": [{"name": t.name, "p": t.p, "args": list(t.args)} for t in POLICY],
        "device": f"{device.platform}: {device.device_kind}",
        "cpu": platform.processor() or platform.machine(),
        "jax_version": jax.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "dtype": "float32",
        "timing": "median of samples after one warm-up call, block_until_ready",
        "results": rows,
    }
    path = pathlib.Path(__file__).parent / "results" / f"augment_{device.platform}.json"
    if not args.quick:
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
