"""The benchmark harness: it runs, writes JSON and a PNG, and builds the GPU suite on a CPU."""

from __future__ import annotations

import json

import pytest

from dlref.kernels import bench


def test_cpu_suite_runs_and_writes_results(tmp_path, capsys):
    flags = "--batch 1 --impl im2col,xla,auto --mode fwd --samples 1 --sample-ms 1"
    argv = [*flags.split(), "--no-progress", "--out", str(tmp_path)]
    assert bench.cli_main(argv) == 0
    table = capsys.readouterr().out
    assert "TFLOP/s" in table and "x XLA" in table
    assert "note: auto = the fastest implementation known to be correct" in table
    record = json.loads((tmp_path / "cpu_cpu.json").read_text())
    assert (tmp_path / "cpu_cpu.png").stat().st_size > 0
    assert {"device", "jax_version", "date", "results"} <= set(record)
    rows = record["results"]
    assert len(rows) == 3 * len(bench.cpu_suite())
    for r in rows:
        assert r["time_ms"] > 0 and r["rel_error"] < 1e-5 and r["dtype"] == "float32"
        if r["impl"] == "xla":
            assert r["ratio_to_xla"] == 1.0
    # auto's choices on the CPU suite (dlref.convolution.auto_impl): XLA for the stem and the
    # 3x3 convs, one matmul for the 1x1, the per-tap reference for the depthwise conv
    choices = {r["layer"]: r["auto_choice"] for r in rows if r["impl"] == "auto"}
    assert list(choices.values()) == ["xla", "xla", "xla", "im2col", "reference"]
    assert f"auto={choices['dw 3x3, 32, 32']}" in table


def test_resnet50_suite_lowers_pallas_for_cuda_on_a_cpu(tmp_path):
    flags = "--suite resnet50 --impl pallas --dtype bfloat16 --dry-run --no-progress"
    argv = [*flags.split(), "--out", str(tmp_path)]
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


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--impl", "cudnn"], "unknown implementation 'cudnn'"),
        (["--mode", "bwd"], "unknown mode 'bwd'"),
        (["--suite", "vgg"], "invalid choice: 'vgg'"),
        (["--dtype", "nosuch"], "unknown dtype 'nosuch'"),
        (["--dry-run", "--batch", "-2"], "expected a positive integer, got -2"),
        (["--batch", "two"], "expected a positive integer, got 'two'"),
        (["--samples", "0"], "expected a positive integer, got 0"),
        (["--sample-ms", "-1"], "expected a positive number, got -1.0"),
        (["--statistic", "mean"], "invalid choice: 'mean'"),
    ],
)
def test_bad_arguments_are_one_line_errors_with_status_2(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.cli_main([*argv, "--no-save"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dlref bench: error: ") and match in err[-1]
    assert not any("Traceback" in line for line in err)


def test_default_output_is_the_working_directorys_bench_results(tmp_path, monkeypatch, capsys):
    # Nothing is written inside the installed package: without --out the results go to
    # ./bench/results, which must exist.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        bench.cli_main(["--impl", "xla", "--batch", "1"])
    assert exc.value.code == 2
    assert "./bench/results does not exist" in capsys.readouterr().err
    (tmp_path / "bench" / "results").mkdir(parents=True)
    argv = "--impl xla --batch 1 --mode fwd --samples 1 --sample-ms 1 --no-progress".split()
    assert bench.cli_main(argv) == 0
    assert (tmp_path / "bench" / "results" / "cpu_cpu.json").exists()
