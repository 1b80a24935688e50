"""The metric steps on tiny fixtures: real_metrics (references, floors), snapshot_metrics,
gather_metrics, metrics_figures, nearest_neighbours. FID/IS run through the real loading code
with a weights file the tests generate (random values: never real FID numbers)."""


import numpy as np
import pandas as pd
import pytest
import torch
from conftest import quiet
from PIL import Image

from latentage.cnn.predict import BoneAgePredictor
from latentage.config import build
from latentage.errors import InputError
from latentage.metrics import inception as inc
from latentage.metrics.frechet import frechet_distance_features
from latentage.metrics.gather_metrics import gather_metrics
from latentage.metrics.measure import real_order
from latentage.metrics.metrics_figures import metrics_figures
from latentage.metrics.nearest_neighbours import nearest_neighbours, search
from latentage.metrics.real_metrics import real_metrics
from latentage.metrics.snapshot_metrics import snapshot_metrics

# 40 reals: SWD (6) and FID (12) fit twice (matched floors); domain FD (30) does not
N = {"fid": 12, "is": 10, "ms_ssim": 8, "swd": 6, "domain_fd": 30}


def _settings(**kw):
    return build("metrics", {"n": N, "is_splits": 2, "batch_size": 8, "allow_download": False,
                             **kw})


@pytest.fixture(scope="module")
def real(smooth_reals, tiny_cnn, inception_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    summary = real_metrics(reals=smooth_reals, cnn=tiny_cnn, json_out=root / "real.json",
                           stats_out=root / "real_stats.npz",
                           settings=_settings(inception_weights=str(inception_file)), seed=1,
                           log=quiet)
    return root, summary


def _cnn_features(cnn, images):
    return BoneAgePredictor.from_checkpoint(cnn).predict_uint8(images, features=True)["features"]


def test_real_metrics_references_and_matched_floors(real, smooth_reals, tiny_cnn):
    root, summary = real
    assert not summary["skipped"]
    assert {"fid", "is_mean", "is_std", "ms_ssim", "swd_32", "swd_16", "swd_avg",
            "domain_fd"} <= set(summary["values"])
    with np.load(root / "real_stats.npz") as st:
        assert st["fid_mu"].shape == (2048,) and st["domain_fd_sigma"].shape == (512, 512)
        assert st["swd_desc"].shape == (6, 2, 128, 49) and int(st["resolution"]) == 32
        mu = st["domain_fd_mu"]
    # the domain FD reference is the mean CNN feature of the first 30 shuffled reals
    images = np.load(smooth_reals)
    order = real_order(len(images), 1)
    feats = _cnn_features(tiny_cnn, images[order])
    np.testing.assert_allclose(mu, feats[:30].mean(axis=0), rtol=1e-5, atol=1e-6)
    # FID's floor is measured: the first 12 shuffled reals against the next 12
    fid = summary["floors"]["fid"]
    assert fid["matched"] and (fid["n_fake"], fid["n_real"]) == (12, 12)
    assert summary["floors"]["swd"]["matched"]


def test_a_floor_the_reals_cannot_match_is_extrapolated_from_measured_points(
        real, smooth_reals, tiny_cnn):
    """Domain FD at n = 30 of 40 reals: measured between disjoint halves of 20, 10 and 5, fitted
    with d + c·(1/m1 + 1/m2) and evaluated at the snapshots' 30 generated vs 30 real."""
    _, summary = real
    floor = summary["floors"]["domain_fd"]
    assert not floor["matched"] and floor["points"]["sizes"] == [20, 10, 5]
    images = np.load(smooth_reals)
    feats = _cnn_features(tiny_cnn, images[real_order(len(images), 1)])
    for h, point in zip([20, 10, 5], floor["points"]["values"], strict=True):
        assert point["domain_fd"] == pytest.approx(
            frechet_distance_features(feats[:h], feats[h:2 * h]), rel=1e-6)
    slope, intercept = np.polyfit(1 / np.array([20, 10, 5]),
                                  [p["domain_fd"] for p in floor["points"]["values"]], 1)
    assert floor["values"]["domain_fd"] == pytest.approx(intercept + slope * (1 / 30), rel=1e-6)
    assert summary["values"]["domain_fd"] == floor["values"]["domain_fd"]


def test_snapshot_metrics_measure_the_snapshot_against_the_references(real, tiny_generator,
                                                                      tiny_cnn, inception_file,
                                                                      tmp_path):
    root, _ = real
    s = _settings(inception_weights=str(inception_file))
    out = snapshot_metrics(snapshot=tiny_generator / "000001.pt",
                           real_stats=root / "real_stats.npz", cnn=tiny_cnn,
                           json_out=tmp_path / "s1.json", settings=s, seed=1, log=quiet)
    assert out["resolution"] == 16 and out["evaluated_at"] == 32
    assert out["images"] == {"fid": 12, "is": 10, "ms_ssim": 8, "swd": 6, "domain_fd": 30}
    assert set(out["values"]) >= {"fid", "is_mean", "ms_ssim", "swd_avg", "domain_fd"}
    again = snapshot_metrics(snapshot=tiny_generator / "000001.pt",
                             real_stats=root / "real_stats.npz", cnn=tiny_cnn,
                             json_out=tmp_path / "s1b.json", settings=s, seed=1, log=quiet)
    assert again["values"] == out["values"]  # one seed, the same numbers
    # the domain FD is the distance between the generated images' CNN features and the
    # reference statistics (real_stats.npz) — recomputed here from the snapshot itself
    from latentage.gan.checkpoint import load_generator
    from latentage.metrics.frechet import frechet_distance, gaussian_stats
    from latentage.metrics.measure import fake_batches

    G, meta = load_generator(tiny_generator / "000001.pt")
    fakes = torch.cat(list(fake_batches(G, meta, 30, 32, 1, 8, "cpu")))
    feats = BoneAgePredictor.from_checkpoint(tiny_cnn)(fakes, features=True,
                                                       value_range=(0, 255))["features"]
    with np.load(root / "real_stats.npz") as st:
        expected = frechet_distance(*gaussian_stats(feats.double().numpy()), st["domain_fd_mu"],
                                    st["domain_fd_sigma"])
    assert out["values"]["domain_fd"] == pytest.approx(expected, rel=1e-6)


def test_without_weights_fid_and_is_stop_or_are_skipped_with_a_notice(
        smooth_reals, tiny_generator, tiny_cnn, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(inc.MissingWeights):
        real_metrics(reals=smooth_reals, cnn=tiny_cnn, json_out=tmp_path / "r.json",
                     stats_out=tmp_path / "r.npz", settings=_settings(), seed=1, log=quiet)
    assert not (tmp_path / "r.json").exists()
    logged = []
    s = _settings(missing_weights="skip")
    real = real_metrics(reals=smooth_reals, cnn=tiny_cnn, json_out=tmp_path / "r.json",
                        stats_out=tmp_path / "r.npz", settings=s, seed=1, log=logged.append)
    assert set(real["skipped"]) == {"fid", "is"} and "fid" not in real["values"]
    assert any("NOTICE: FID, IS skipped" in line for line in logged)
    jsons = []
    for k in (1, 2):
        jsons.append(tmp_path / f"{k}.json")
        out = snapshot_metrics(snapshot=tiny_generator / f"00000{k}.pt",
                               real_stats=tmp_path / "r.npz", cnn=tiny_cnn, json_out=jsons[-1],
                               settings=s, seed=1, log=quiet)
        assert "fid" not in out["values"] and set(out["skipped"]) == {"fid", "is"}
    table = gather_metrics(snapshots=jsons[::-1], table=tmp_path / "metrics.tsv", log=quiet)
    assert list(table.kimg) == [1.0, 2.0] and list(table.resolution) == [16, 32]
    assert (table.skipped == "fid,is").all()
    read = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert {"ms_ssim", "swd_32", "swd_16", "swd_avg", "domain_fd"} <= set(read.columns)
    metrics_figures(table=tmp_path / "metrics.tsv", real=tmp_path / "r.json",
                    fig2a=tmp_path / "a.png", fig2b=tmp_path / "b.png")
    for png in ("a.png", "b.png"):
        with Image.open(tmp_path / png) as im:
            assert im.width > 600 and np.asarray(im.convert("L")).std() > 10


def test_gather_rejects_a_broken_snapshot_file(tmp_path):
    bad = tmp_path / "000002.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="000002.json: not a snapshot-metrics result"):
        gather_metrics(snapshots=[bad], table=tmp_path / "m.tsv")


def test_snapshot_metrics_need_the_references_they_measure_against(real, tiny_generator,
                                                                   tiny_cnn, tmp_path):
    root, _ = real
    with np.load(root / "real_stats.npz") as st:
        arrays = {k: st[k] for k in st.files if not k.startswith("swd_")}
    np.savez(tmp_path / "no_swd.npz", **arrays)
    with pytest.raises(InputError, match="no reference for swd"):
        snapshot_metrics(snapshot=tiny_generator / "000002.pt", real_stats=tmp_path / "no_swd.npz",
                         cnn=tiny_cnn, json_out=tmp_path / "x.json",
                         settings=_settings(enabled=["swd"]), seed=1, log=quiet)


# ---------------------------------------------------------------- nearest neighbours


def test_a_real_training_image_finds_itself_first(smooth_reals, tiny_cnn):
    """Queries and reals reach the CNN the same way, so a memorised training image would be
    found: each real image used as a query is its own nearest neighbour, at distance 0, by
    pixels at a lower resolution and by CNN features."""
    reals = np.load(smooth_reals)
    pixels = torch.nn.functional.avg_pool2d(torch.from_numpy(reals).float()[:, None], 2)
    pixel_reals = np.rint(pixels[:, 0].numpy()).astype(np.uint8)  # the 16² pyramid level
    queries = reals[[3, 17, 29]]
    found = search(queries, pixel_reals, reals, BoneAgePredictor.from_checkpoint(tiny_cnn), 3)
    for by in ("pixel", "cnn_features"):
        idx, dist = found[by]
        assert list(idx[:, 0]) == [3, 17, 29], by
        assert dist[:, 0] == pytest.approx(0, abs=1e-3), by


def test_nearest_neighbours_step_writes_table_and_grids(tiny_generator, tiny_cnn, smooth_reals,
                                                        tmp_path):
    reals = np.load(smooth_reals)
    rng = np.random.default_rng(3)
    pd.DataFrame({"id": [f"r{i}" for i in range(len(reals))],
                  "boneage": rng.uniform(12, 200, len(reals))}).to_parquet(
        tmp_path / "labels.parquet")
    np.save(tmp_path / "short.npy", reals[:-1])

    def run(pixel_reals):
        return nearest_neighbours(
            generator=tiny_generator / "000002.pt", cnn=tiny_cnn, pixel_reals=pixel_reals,
            feature_reals=smooth_reals, real_labels=tmp_path / "labels.parquet",
            table=tmp_path / "nn.parquet", pixel_figure=tmp_path / "px.png",
            feature_figure=tmp_path / "ft.png",
            settings=build("metrics.nearest_neighbours", {"queries": 3, "k": 2, "res": 32}),
            seed=1, log=quiet)

    with pytest.raises(InputError, match="short.npy.*disagree on the number of images"):
        run(tmp_path / "short.npy")
    table = run(smooth_reals)
    assert len(table) == 3 * 2 * 2 and set(table["by"]) == {"pixel", "cnn_features"}
    for _, group in table.groupby(["query", "by"]):
        assert list(group["rank"]) == [1, 2] and group["distance"].is_monotonic_increasing
    for png in ("px.png", "ft.png"):
        with Image.open(tmp_path / png) as im:
            assert im.size[0] > 200 and im.size[1] > 200
    assert pd.read_parquet(tmp_path / "nn.parquet").equals(table)
    assert set(table.real_id) <= {f"r{i}" for i in range(len(reals))}


def test_phase_bands_keep_every_snapshot_on_the_axis():
    # demo-shaped run: snapshots at 12, 24, 36 and the final 46 kimg; before the fix the axis
    # ended where autoscaling stood when the bands were drawn (24.5 kimg)
    import pandas as pd

    from latentage.metrics.metrics_figures import _phase_ticks
    from latentage.plots import pyplot

    plt = pyplot()
    table = pd.DataFrame({"kimg": [12, 24, 36, 46], "resolution": [8, 32, 64, 64]})
    fig, ax = plt.subplots()
    ax.plot(table.kimg[:2], [1, 2])
    _phase_ticks(ax, table)
    ax.plot(table.kimg, [1, 2, 3, 4])
    lo, hi = ax.get_xlim()
    plt.close(fig)
    assert lo == 0 and hi >= 46
