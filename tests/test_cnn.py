"""The bone-age CNN: weights loading, both heads, checkpoints, evaluation, prediction API.

Pretrained weights cannot be downloaded here, so these tests write their own weight files
(random, with the real key layout of the backbone) and load them through the real code path
— an explicit file, then timm's cache location — and check the offline error message.
"""

import json

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from conftest import prepare_folder, quiet

from latentage.cnn.data import augment
from latentage.cnn.evaluate_cnn import evaluate_cnn
from latentage.cnn.model import BoneAgeNet, load_model, save_model
from latentage.cnn.predict import BoneAgePredictor
from latentage.cnn.train_cnn import train_cnn
from latentage.cnn.weights import create_backbone, expected_cache_file
from latentage.config import build, from_json
from latentage.errors import ConfigError, InputError

SMALL = {"backbone": "resnet10t", "pretrained": False, "input_size": 32, "epochs": 2,
         "batch_size": 16, "patience": 5}


@pytest.fixture(scope="module")
def data(phantom_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn_data")
    prepare_folder(phantom_set, out, 32, test_size=10)
    return out


def _train(data, out, **over):
    return train_cnn(images=data / "train/res32.npy", labels=data / "train/labels.parquet",
                     model=out / "model.pt", history=out / "history.jsonl",
                     settings=build("cnn", {**SMALL, **over}), seed=1, log=quiet)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    return out, _train(data, out)


def test_explicit_weights_file_is_loaded_and_rgb_filters_summed_to_gray(tmp_path):
    torch.manual_seed(0)
    rgb = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    path = tmp_path / "resnet10t_imagenet.pth"
    torch.save(rgb.state_dict(), path)
    gray = create_backbone("resnet10t", pretrained=True, weights=str(path), in_chans=1)
    first = next(k for k, v in rgb.state_dict().items() if v.ndim == 4)
    torch.testing.assert_close(gray.state_dict()[first],
                               rgb.state_dict()[first].sum(dim=1, keepdim=True))
    for key, value in rgb.state_dict().items():
        if key != first:
            assert torch.equal(gray.state_dict()[key], value), key


def test_weights_found_in_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = expected_cache_file("legacy_xception")
    assert cached == tmp_path / "hub/checkpoints/xception-43020ad28.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    rgb = timm.create_model("legacy_xception", pretrained=False)
    torch.save(rgb.state_dict(), cached)
    gray = create_backbone("legacy_xception", pretrained=True, allow_download=False)
    assert gray.num_features == 2048
    key = "block1.rep.0.conv1.weight"
    assert torch.equal(gray.state_dict()[key], rgb.state_dict()[key])


def test_missing_weights_offline_say_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError) as err:
        create_backbone("legacy_xception", pretrained=True, allow_download=False)
    msg = str(err.value)
    assert str(tmp_path / "hub/checkpoints/xception-43020ad28.pth") in msg
    assert "xception-43020ad28.pth" in msg and "cnn.weights" in msg
    assert "cnn.pretrained: false" in msg
    with pytest.raises(InputError, match=r"config key cnn.weights: .*nope.pth does not exist"):
        create_backbone("resnet10t", pretrained=True, weights=str(tmp_path / "nope.pth"))
    with pytest.raises(InputError, match="cnn.backbone: 'resnet_nonexistent' is not a timm"):
        create_backbone("resnet_nonexistent", pretrained=False)


def test_both_heads_train_and_the_best_epoch_is_kept(trained):
    out, summary = trained
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert summary["val_mae"] == min(h["val_mae_months"] for h in history)
    state = torch.load(out / "model.pt", weights_only=True)
    assert {"age_head.weight", "sex_head.weight"} <= set(state["model"])
    assert state["meta"]["backbone"] == "resnet10t" and state["meta"]["input_size"] == 32
    # the sex head is trained: its loss gradient reaches the weights
    model = load_model(out / "model.pt")
    model.train()
    x = torch.rand(4, 1, 32, 32)
    age, sex, feats = model(model.prepare(x))
    torch.nn.functional.binary_cross_entropy_with_logits(sex, torch.ones(4)).backward()
    assert model.sex_head.weight.grad.abs().sum() > 0
    assert model.age_head.weight.grad is None or model.age_head.weight.grad.abs().sum() == 0
    assert feats.shape == (4, 512)


def test_training_is_deterministic_on_cpu(data, trained, tmp_path):
    out, _ = trained
    _train(data, tmp_path)
    a = torch.load(out / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "model.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_checkpoint_round_trip_and_mismatch_errors(trained, tmp_path):
    out, _ = trained
    model = load_model(out / "model.pt")
    save_model(model, tmp_path / "copy.pt")
    again = load_model(tmp_path / "copy.pt")
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(model.prepare(x)), again(again.prepare(x)), strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(InputError, match=r"trained with backbone 'resnet10t' but cnn.backbone "
                                         r"is 'legacy_xception'"):
        load_model(out / "model.pt", expect={"backbone": "legacy_xception"})
    with pytest.raises(InputError, match="input_size 32 but cnn.input_size is 299"):
        load_model(out / "model.pt", expect={"input_size": 299})
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a latentage CNN checkpoint"):
        load_model(tmp_path / "bad.pt")


def test_prediction_api_on_generated_tensors(trained, data):
    out, _ = trained
    predictor = BoneAgePredictor.from_checkpoint(out / "model.pt", "cpu", batch_size=3)
    fakes = torch.rand(7, 1, 16, 16) * 2 - 1  # generator output range, a smaller resolution
    res = predictor(fakes, features=True)
    assert res["age"].shape == (7,) and res["male_prob"].shape == (7,)
    assert res["features"].shape == (7, predictor.feature_dim)
    assert ((res["male_prob"] >= 0) & (res["male_prob"] <= 1)).all()
    big = BoneAgePredictor.from_checkpoint(out / "model.pt", "cpu", batch_size=64)(fakes)
    torch.testing.assert_close(res["age"], big["age"], atol=1e-4, rtol=1e-5)
    # the same images as uint8 in [0, 255] give the same answers
    images = np.load(data / "test/res32.npy")
    as_uint8 = predictor.predict_uint8(images)
    as_float = predictor(torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1)
    np.testing.assert_allclose(as_uint8["age"], as_float["age"].numpy(), atol=1e-3)


def test_evaluate_cnn_writes_eval_predictions_and_figure(trained, data, tmp_path):
    out, _ = trained
    fig = tmp_path / "fig.png"
    report = evaluate_cnn(model=out / "model.pt", train_images=data / "train/res32.npy",
                          test_images=data / "test/res32.npy",
                          train_labels=data / "train/labels.parquet",
                          test_labels=data / "test/labels.parquet",
                          eval_json=tmp_path / "eval.json",
                          train_predictions=tmp_path / "p_train.parquet",
                          test_predictions=tmp_path / "p_test.parquet", figure=fig,
                          settings=build("cnn", SMALL), log=quiet)
    on_disk = json.loads((tmp_path / "eval.json").read_text())
    assert on_disk["train"]["n"] == 50 and on_disk["test"]["n"] == 10
    predictor = BoneAgePredictor.from_checkpoint(out / "model.pt")
    for split in ("train", "test"):
        r = on_disk[split]
        pred = pd.read_parquet(tmp_path / f"p_{split}.parquet")
        labels = pd.read_parquet(data / split / "labels.parquet")
        assert list(pred.id) == list(labels.id)
        # the predictions are the CNN's on those images, and the MAEs follow from them
        direct = predictor.predict_uint8(np.load(data / split / "res32.npy"))
        np.testing.assert_allclose(pred.pred_age, direct["age"], rtol=1e-6)
        mae = float((pred.pred_age - pred.boneage).abs().mean())
        assert r["mae_months"] == pytest.approx(mae)
        years = np.floor(pred.boneage / 12).astype(int)
        for year, b in r["mae_by_year"].items():
            sel = years == int(year)
            assert b["n"] == sel.sum()
            assert b["mae"] == pytest.approx(float((pred.pred_age - pred.boneage)[sel].abs().mean()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json", "fig.png",
                                                          "p_test.parquet", "p_train.parquet"]
    assert report["feature_dim"] == 512 and fig.stat().st_size > 10_000
    with pytest.raises(InputError, match="trained with backbone 'resnet10t' but cnn.backbone"):
        evaluate_cnn(model=out / "model.pt", train_images=data / "train/res32.npy",
                     test_images=data / "test/res32.npy",
                     train_labels=data / "train/labels.parquet",
                     test_labels=data / "test/labels.parquet", eval_json=tmp_path / "e.json",
                     train_predictions=tmp_path / "a.parquet",
                     test_predictions=tmp_path / "b.parquet", figure=tmp_path / "f.png",
                     settings=build("cnn", {**SMALL, "backbone": "legacy_xception"}), log=quiet)


def test_augmentation_keeps_range_and_does_not_flip_by_default():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 1, 32, 32)
    x[:, :, :, :8] = 1.0  # a bright left edge
    y = augment(x, gen, rotate=0, scale=0, shift=0, brightness=0, contrast=0, hflip=False)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    z = augment(x, gen, rotate=10, scale=0.1, shift=0.05, brightness=0.1, contrast=0.15,
                hflip=False)
    assert z.min() >= 0 and z.max() <= 1
    assert (z[:, :, :, :4].mean() > z[:, :, :, -4:].mean())  # still bright on the left


def _without_and_with(x, key: str, value: float, **extra):
    """augment(x) with the other transforms on, without `key` and with key=value (same seed);
    checks that key=0 gives exactly the output without it and that key=value is reproducible."""
    kw = dict(rotate=10, scale=0.1, shift=0.05, brightness=0.1, contrast=0.15, hflip=False,
              **extra)
    plain = augment(x, torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(augment(x, torch.Generator().manual_seed(3), **kw, **{key: 0.0}),
                               plain, atol=0, rtol=0)
    on = augment(x, torch.Generator().manual_seed(3), **kw, **{key: value})
    torch.testing.assert_close(augment(x, torch.Generator().manual_seed(3), **kw, **{key: value}),
                               on, atol=0, rtol=0)
    return plain, on


def test_noise_augmentation_adds_per_image_noise_and_leaves_the_other_draws_alone():
    """cnn.augment.noise: zero-mean Gaussian noise whose sd is drawn per image from
    [0, noise]; with noise 0 the output (and every other draw) is what it was without it."""
    x = torch.full((64, 1, 32, 32), 0.5)
    plain, noisy = _without_and_with(x, "noise", 0.1)
    residual = (noisy - plain).flatten(1)
    sd = residual.std(dim=1)
    assert residual.mean().abs() < 0.002
    assert sd.max() <= 0.1 * 1.1 and sd.min() < 0.02 and sd.max() > 0.08  # spread over [0, 0.1]
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_blur_augmentation_matches_torchvision_and_leaves_the_other_draws_alone():
    """cnn.augment.blur: each image blurred by a Gaussian of its own σ, drawn from [0, blur];
    away from the edges the same as torchvision's gaussian_blur of that σ (edges replicated
    here, reflected there); with blur 0 every draw (the noise's too) is what it was."""
    import torchvision.transforms.functional as TF

    from latentage.cnn.data import gaussian_blur

    x = torch.rand(3, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0, 0.7, 1.5])
    y = gaussian_blur(x, sigma)
    torch.testing.assert_close(y[0], x[0], atol=1e-6, rtol=0)
    for i in (1, 2):
        ref = TF.gaussian_blur(x[i:i + 1], 2 * 5 + 1, float(sigma[i]))
        torch.testing.assert_close(y[i, :, 6:-6, 6:-6], ref[0, :, 6:-6, 6:-6], atol=1e-5, rtol=0)
    assert y[2].std() < 0.5 * x[2].std()  # σ 1.5 px smooths uniform noise
    plain, blurred = _without_and_with(x, "blur", 1.0, noise=0.05)
    assert not torch.equal(blurred, plain) and blurred.min() >= 0 and blurred.max() <= 1


def test_unknown_settings_are_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown config key cnn\.backbon"):
        from_json("cnn", json.dumps({"backbon": "x"}))


def test_model_meta_normalisation_comes_from_the_backbone():
    model = BoneAgeNet.build("resnet10t", 64, False, None, False, 120.0, 40.0)
    assert model.meta.mean == pytest.approx(np.mean([0.485, 0.456, 0.406]))
    assert model.months(torch.tensor([0.0, 1.0])).tolist() == [120.0, 160.0]


# ------------------------------------------------------------------ the second opinion


def test_agreement_statistics_on_hand_computed_values():
    """Two readers 3 months apart on four images: difference, bias, limits, Pearson r and
    Lin's concordance checked against the definitions worked by hand."""
    from latentage.cnn.cnn_agreement import agreement

    a = np.array([60.0, 90.0, 120.0, 150.0])
    b = a + np.array([2.0, 4.0, 2.0, 4.0])                 # second reads 3 ± 1 months older
    out = agreement(a, b, [0.9, 0.2, 0.8, 0.1], [0.7, 0.4, 0.3, 0.2])
    assert out["mean_abs_difference_months"] == pytest.approx(3.0)
    assert out["bias_months"] == pytest.approx(3.0)
    sd = np.std([2.0, 4.0, 2.0, 4.0], ddof=1)               # 1.1547
    assert out["limits_of_agreement_months"] == pytest.approx([3 - 1.96 * sd, 3 + 1.96 * sd])
    # Lin: 2·s_ab / (s_a² + s_b² + (ā − b̄)²), population moments
    s_ab = np.mean((a - a.mean()) * (b - b.mean()))
    ccc = 2 * s_ab / (a.var() + b.var() + 9.0)
    assert out["concordance"] == pytest.approx(ccc) and out["concordance"] < out["pearson_r"]
    # sexes: the readers agree on images 1, 2 and 4 (male, female, female)
    assert out["sex_agreement"] == pytest.approx(0.75)
    assert out["sex_kappa"] == pytest.approx(0.5)  # po 0.75, pe 0.5 → (0.75 − 0.5)/0.5
    same = agreement(a, a, [0.9] * 4, [0.8] * 4)
    assert same["concordance"] == pytest.approx(1.0) and same["sex_kappa"] is None


def test_cnn_agreement_step_reads_the_labelled_latents_with_the_second_cnn(
        trained, data, tiny_generator, tmp_path):
    from latentage.cnn.cnn_agreement import cnn_agreement
    from latentage.gan.checkpoint import load_generator
    from latentage.latent.label_shard import label_range

    out, _ = trained
    first = BoneAgePredictor.from_checkpoint(out / "model.pt")
    G, _ = load_generator(tiny_generator / "000002.pt")
    labels, z = label_range(G, first, seed=3, start=0, stop=24, batch_size=8, resolution=32)
    labels.to_parquet(tmp_path / "labels.parquet")
    np.save(tmp_path / "z.npy", z)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    train_cnn(images=data / "train/res32.npy", labels=data / "train/labels.parquet",
              model=second_dir / "model.pt", history=second_dir / "history.jsonl",
              settings=build("cnn", SMALL), seed=2, log=quiet)  # another random start
    report = cnn_agreement(generator=tiny_generator / "000002.pt", first=out / "model.pt",
                           second=second_dir / "model.pt", labels=tmp_path / "labels.parquet",
                           z=tmp_path / "z.npy", test_images=data / "test/res32.npy",
                           test_labels=data / "test/labels.parquet",
                           out_json=tmp_path / "agreement.json", table=tmp_path / "t.parquet",
                           figure=tmp_path / "a.png", n=20, batch_size=8,  # not a multiple
                           log=quiet)
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert list(table.idx) == list(range(20))
    np.testing.assert_allclose(table.age_first, labels.age[:20])
    # the second CNN's readings are its own predictions on G's images of those latents
    second = BoneAgePredictor.from_checkpoint(second_dir / "model.pt")
    with torch.no_grad():
        direct = second(G(torch.from_numpy(z[:20]), 32))
    np.testing.assert_allclose(table.age_second, direct["age"].numpy(), rtol=1e-5)
    assert report["generated"]["n"] == 20 and report["real_test"]["n"] == 10
    real = pd.read_parquet(data / "test/labels.parquet")
    pred = first.predict_uint8(np.load(data / "test/res32.npy"))
    assert report["real_test"]["first_vs_truth"]["mae_months"] == pytest.approx(
        float(np.abs(pred["age"] - real.boneage).mean()), rel=1e-5)
    assert json.loads((tmp_path / "agreement.json").read_text()) == report
    with pytest.raises(InputError, match="at least cnn.second_opinion.n = 30"):
        cnn_agreement(generator=tiny_generator / "000002.pt", first=out / "model.pt",
                      second=second_dir / "model.pt", labels=tmp_path / "labels.parquet",
                      z=tmp_path / "z.npy", test_images=data / "test/res32.npy",
                      test_labels=data / "test/labels.parquet", out_json=tmp_path / "x.json",
                      table=tmp_path / "x.parquet", figure=tmp_path / "x.png", n=30, log=quiet)
