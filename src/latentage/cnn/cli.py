"""The CNN's steps: train-cnn, evaluate-cnn and cnn-agreement (registered by latentage.cli)."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_balance_arguments, add_settings_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("train-cnn", help="train the bone-age CNN (age and sex heads)")
    p.add_argument("--images", type=Path, required=True, help="prepared train/res{R}.npy")
    p.add_argument("--labels", type=Path, required=True, help="train labels.parquet")
    p.add_argument("--model", type=Path, required=True, help="output model.pt")
    p.add_argument("--history", type=Path, required=True, help="output history.jsonl")
    add_settings_argument(p, "cnn")
    add_balance_arguments(p)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0 = torch's default; the rule passes its threads)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate-cnn", help="MAE per split and age bin, sex AUC, predictions")
    p.add_argument("--model", type=Path, required=True, help="model.pt from train-cnn")
    for split in ("train", "test"):
        p.add_argument(f"--{split}-images", type=Path, required=True,
                       help=f"prepared {split}/res{{R}}.npy at the CNN's resolution")
        p.add_argument(f"--{split}-labels", type=Path, required=True,
                       help=f"{split} labels.parquet")
        p.add_argument(f"--{split}-predictions", type=Path, required=True,
                       help=f"output: predictions of the {split} images (.parquet)")
    p.add_argument("--eval-json", type=Path, required=True, help="output eval.json")
    p.add_argument("--figure", type=Path, required=True, help="output figure PNG")
    p.add_argument("--labels-are-truth", action="store_true",
                   help="the labels are the images' true ages (phantoms), not a rater's reading")
    add_settings_argument(p, "cnn")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("cnn-agreement",
                       help="a second CNN reads the same generated hands and real test images")
    p.add_argument("--generator", type=Path, required=True, help="the final phase checkpoint")
    p.add_argument("--first", type=Path, required=True, help="the labelling CNN's model.pt")
    p.add_argument("--second", type=Path, required=True, help="the second CNN's model.pt")
    p.add_argument("--labels", type=Path, required=True, help="latent labels.parquet")
    p.add_argument("--z", type=Path, required=True, help="latent z.npy")
    p.add_argument("--test-images", type=Path, required=True,
                   help="prepared test/res{R}.npy at the CNN's resolution")
    p.add_argument("--test-labels", type=Path, required=True, help="test labels.parquet")
    p.add_argument("--json", type=Path, required=True, help="output agreement.json")
    p.add_argument("--table", type=Path, required=True,
                   help="output: both CNNs' readings per generated hand (.parquet)")
    p.add_argument("--figure", type=Path, required=True, help="output figure PNG")
    add_settings_argument(p, "cnn.second_opinion")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=_agreement)


def _train(args) -> None:
    from latentage.cnn.train_cnn import train_cnn
    from latentage.config import from_json

    train_cnn(images=args.images, labels=args.labels, model=args.model, history=args.history,
              settings=from_json("cnn", *args.settings), seed=args.seed, threads=args.threads,
              balance=args.balance, balance_max_weight=args.balance_max_weight)


def _evaluate(args) -> None:
    from latentage.cnn.evaluate_cnn import evaluate_cnn
    from latentage.config import from_json

    evaluate_cnn(model=args.model, train_images=args.train_images,
                 test_images=args.test_images, train_labels=args.train_labels,
                 test_labels=args.test_labels, eval_json=args.eval_json,
                 train_predictions=args.train_predictions,
                 test_predictions=args.test_predictions, figure=args.figure,
                 settings=from_json("cnn", *args.settings),
                 labels_are_truth=args.labels_are_truth)


def _agreement(args) -> None:
    from latentage.cnn.cnn_agreement import cnn_agreement
    from latentage.config import from_json

    opinion = from_json("cnn.second_opinion", *args.settings)
    cnn_agreement(generator=args.generator, first=args.first, second=args.second,
                  labels=args.labels, z=args.z, test_images=args.test_images,
                  test_labels=args.test_labels, out_json=args.json, table=args.table,
                  figure=args.figure, n=opinion.n, batch_size=args.batch_size)
