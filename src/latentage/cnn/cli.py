"""The CNN's CLI steps: train-cnn and evaluate-cnn (registered by latentage.cli)."""

from __future__ import annotations

import json
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("train-cnn", help="train the bone-age CNN (age and sex heads)")
    p.add_argument("--images", type=Path, required=True, help="prepared train res{R}.npy")
    p.add_argument("--labels", type=Path, required=True, help="train labels.parquet")
    p.add_argument("--out", type=Path, required=True, help="output model.pt")
    p.add_argument("--history", type=Path, required=True, help="output history.jsonl")
    p.add_argument("--settings", required=True, help="the config's cnn section as JSON")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate-cnn", help="MAE per split and age bin, sex AUC, features")
    p.add_argument("--model", type=Path, required=True, help="model.pt from train-cnn")
    p.add_argument("--data", type=Path, required=True, help="prepared data folder")
    p.add_argument("--res", type=int, required=True, help="which prepared resolution to read")
    p.add_argument("--out", type=Path, required=True, help="output folder (results/cnn)")
    p.add_argument("--figure", type=Path, required=True, help="output figure PNG")
    p.add_argument("--settings", help="the cnn section as JSON, to check the checkpoint")
    p.set_defaults(func=_evaluate)


def _train(args) -> None:
    from latentage.cnn.train import CnnOptions, train_cnn

    opts = CnnOptions.from_settings(json.loads(args.settings))
    train_cnn(args.images, args.labels, args.out, args.history, opts, args.seed)


def _evaluate(args) -> None:
    from latentage.cnn.evaluate import evaluate_cnn

    expect = None
    if args.settings:
        cfg = json.loads(args.settings)
        expect = {"backbone": cfg.get("backbone"), "input_size": cfg.get("input_size")}
    evaluate_cnn(args.model, args.data, args.res, args.out, args.figure, expect=expect)
