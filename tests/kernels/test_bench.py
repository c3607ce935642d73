"""The benchmark harness: it runs, writes JSON and a PNG, and builds the GPU suite on a CPU."""

from __future__ import annotations

import json

import pytest

from dlref.kernels import bench


def test_cpu_suite_runs_and_writes_results(tmp_path, capsys):
    argv = ["--batch", "1", "--impl", "im2col,xla", "--mode", "fwd", "--samples", "1",
            "--sample-ms", "1", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert bench.cli_main(argv) == 0
    table = capsys.readouterr().out
    assert "TFLOP/s" in table and "x XLA" in table
    record = json.loads((tmp_path / "cpu_cpu.json").read_text())
    assert (tmp_path / "cpu_cpu.png").stat().st_size > 0
    assert {"device", "jax_version", "date", "results"} <= set(record)
    rows = record["results"]
    assert len(rows) == 2 * len(bench.cpu_suite())
    for r in rows:
        assert r["time_ms"] > 0 and r["rel_error"] < 1e-5 and r["dtype"] == "float32"
        if r["impl"] == "xla":
            assert r["ratio_to_xla"] == 1.0


def test_resnet50_suite_lowers_pallas_for_cuda_on_a_cpu(tmp_path):
    argv = ["--suite", "resnet50", "--impl", "pallas", "--dtype", "bfloat16", "--dry-run",
            "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert bench.cli_main(argv) == 0
    record = json.loads((tmp_path / "resnet50_dryrun_cpu.json").read_text())
    assert record["dry_run"] and record["results"][0]["x_shape"] == [128, 224, 224, 3]
    rows = record["results"]
    assert len(rows) == 2 * len(bench.resnet50_suite())
    for r in rows:
        assert "skipped" not in r, r
        # forward: one kernel; forward + backward: forward, input- and weight-gradient kernels
        assert r["triton_calls"] == (1 if r["mode"] == "fwd" else 3)


def test_layer_flops():
    # ResNet-50 stem: 112*112*64 outputs x 7*7*3 MACs = 118,013,952 MACs per image
    # (the figure torchvision-based profilers report for conv1).
    stem = bench.resnet50_suite(batch=1)[0]
    assert stem.flops() == 2 * 118_013_952


@pytest.mark.parametrize("argv", [["--impl", "cudnn"], ["--mode", "bwd"], ["--suite", "vgg"]])
def test_bad_arguments(argv):
    with pytest.raises(SystemExit):
        bench.cli_main(argv)
