"""The set-up tooling a newcomer relies on: finding Python >= 3.12, CI calling `make test`."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIND = ROOT / "scripts" / "find-python.sh"


def _find(env_python: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHON", None)
    if env_python is not None:
        env["PYTHON"] = env_python
    return subprocess.run(["sh", str(FIND)], capture_output=True, text=True, env=env)


def test_find_python_honours_override():
    got = _find(sys.executable)
    assert got.returncode == 0, got.stderr
    assert os.path.samefile(got.stdout.strip(), sys.executable)


def test_find_python_rejects_old_or_missing_override(tmp_path):
    fake = tmp_path / "python-old"
    fake.write_text("#!/bin/sh\nexit 1\n")  # behaves like an interpreter < 3.12 for the probe
    fake.chmod(0o755)
    got = _find(str(fake))
    assert got.returncode == 1
    assert "is not a Python >= 3.12" in got.stderr


def test_find_python_default_search_finds_a_new_enough_python():
    got = _find(None)
    assert got.returncode == 0, got.stderr
    version = subprocess.run(
        [got.stdout.strip(), "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "True"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make demo" in readme
