"""`latentage bench small-data` at a tiny size: four runs (two sizes, ADA off/on) through the
shipped steps, and a table whose numbers are the runs' own."""

import json

import pytest
from conftest import quiet

from latentage.bench_small_data import bench_small_data


@pytest.mark.slow
def test_small_data_bench_trains_four_runs_and_reports_their_metrics(tmp_path):
    table = bench_small_data(tmp_path, sizes=(6, 12), n_test=8, max_res=16, kimg=0.05,
                             final_kimg=0.1, speed_kimg=0.05, jobs=2, seed=1, log=quiet)
    assert sorted(zip(table.train_images, table.ada, strict=True)) == \
        [(6, False), (6, True), (12, False), (12, True)]
    for row in table.itertuples():
        run = tmp_path / "runs" / f"n{row.train_images}_ada{int(row.ada)}"
        metrics = json.loads((run / "metrics.json").read_text())["values"]
        assert row.swd_avg == pytest.approx(metrics["swd_avg"], abs=1e-3)
        assert row.domain_fd == pytest.approx(metrics["domain_fd"], abs=1e-3)
        last = json.loads((run / "res16" / "stats.jsonl").read_text().splitlines()[-1])
        assert ("ada_p" in last) == row.ada
        if row.ada:
            assert row.final_p == last["ada_p"]
    assert (tmp_path / "train6" / "res16.npy").stat().st_size < \
        (tmp_path / "train12" / "res16.npy").stat().st_size
    summary = json.loads((tmp_path / "small_data.json").read_text())
    assert len(summary["runs"]) == 4 and summary["held_out_reals"] == 8
    assert (tmp_path / "small_data.png").stat().st_size > 10_000
