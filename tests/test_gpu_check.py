"""`latentage gpu-check` and the benchmarks run the code that ships: at toy sizes on the CPU
here (the GPU figures in the README come from a GPU)."""

import json
import subprocess

import pytest
from conftest import BIN, quiet

from latentage import bench
from latentage.errors import LatentageError
from latentage.gpu_check import gpu_check


def test_gpu_check_runs_every_section_at_toy_sizes(tmp_path):
    report = gpu_check(tmp_path / "gpu-check.json", tmp_path / "work", quick=True,
                       allow_cpu=True, log=quiet)
    on_disk = json.loads((tmp_path / "gpu-check.json").read_text())
    assert on_disk["sections"].keys() == {"a_training", "b_resume", "c_bench_train", "d_label",
                                          "e_metrics"}
    assert all(s["ok"] for s in on_disk["sections"].values()), on_disk
    training = report["sections"]["a_training"]
    assert {"fp32", "bf16"} <= set(training) and training["fp32"]["restores"] == 0
    assert training["fp32"]["img_per_s"] > 0
    assert report["sections"]["b_resume"]["resumed"]
    assert report["sections"]["e_metrics"]["swd"]["values"]["swd_avg"] > 0


def test_gpu_check_needs_a_gpu_unless_told(tmp_path):
    with pytest.raises(LatentageError, match="gpu-check needs a GPU"):
        gpu_check(tmp_path / "x.json", tmp_path / "w", quick=True, log=quiet)


def test_bench_train_times_train_step(monkeypatch):
    """The benchmark runs latentage.gan.train.train_step itself: 2 warm-up + the timed steps."""
    import latentage.gan.train as train

    calls = []
    real = train.train_step

    def counting(*args, **kw):
        calls.append(kw["nimg"])
        return real(*args, **kw)

    monkeypatch.setattr(train, "train_step", counting)
    (result,) = bench.bench_train([8], 4, 8, 32, 8, 3, "fp32", False, log=quiet)
    assert calls == [0, 4, 8, 12, 16]
    assert result["img_per_s"] > 0 and result["res"] == 8


def test_bench_train_takes_a_minibatch_per_resolution(tmp_path):
    """`--batch` gives one minibatch for every resolution or one each (gpu-validate.sh sweeps
    4² … 1024² at the study's per-GPU minibatch); `--json` keeps the figures."""
    out = tmp_path / "bench.json"
    subprocess.run([str(BIN / "latentage"), "bench", "train", "--res", "4", "8", "--batch", "6",
                    "2", "--latent", "8", "--fmap-base", "32", "--fmap-max", "8", "--steps", "1",
                    "--json", str(out)], check=True, capture_output=True, text=True)
    rows = json.loads(out.read_text())
    assert [(r["res"], r["batch"]) for r in rows] == [(4, 6), (8, 2)]
    assert [r["batch"] for r in bench.bench_train([4, 8], [3], 8, 32, 8, 1, "fp32", False,
                                                  log=quiet)] == [3, 3]
    with pytest.raises(LatentageError, match="3 minibatch sizes for 2 resolutions"):
        bench.bench_train([4, 8], [1, 2, 3], 8, 32, 8, 1, "fp32", False, log=quiet)
