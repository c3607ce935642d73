"""Shared fixtures: a seeded key (its seed printed so a failure replays), float64, hypothesis."""

from __future__ import annotations

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles. JAX compiles on first call, so deadlines are off; print_blob prints the
# @reproduce_failure line that replays a failure. "ci" is the default (2-core CI, the whole
# suite under 15 minutes) and is derandomized: every run draws the same examples, so a red run
# replays exactly. "thorough" draws 10x the examples from a random seed (hypothesis prints it
# on failure; keep what it finds as an @example).
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=20, derandomize=True, database=None, **_common)
settings.register_profile("thorough", max_examples=200, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None, help="seed for the `key` fixture")


@pytest.fixture
def seed(request) -> int:
    """The seed of the `key` fixture: --seed, else a hash of the test's node id (stable)."""
    s = request.config.getoption("--seed")
    if s is None:
        s = _stable_hash(request.node.nodeid)
    print(f"[dlref] key seed = {s}  (replay with --seed {s})")
    return s


def _stable_hash(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode()) % (2**31)


@pytest.fixture
def key(seed) -> jax.Array:
    """A `jax.random` key seeded per test."""
    return jax.random.key(seed)


@pytest.fixture
def x64():
    """Run the test with float64 enabled."""
    with jax.enable_x64(True):
        yield
