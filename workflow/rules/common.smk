# Shared helpers for all workflow files: config validation, wildcard constraints, the
# resolution list and named input functions. Rules live in the other .smk files.
import json
from pathlib import Path

from snakemake.utils import validate

import latentage
from latentage.config import (
    check_config,
    gan_max_res,
    gan_settings,
    metric_settings,
    snapshot_resolutions,
    validate_config,
)

MIN_PACKAGE_VERSION = "0.1.0"
if tuple(map(int, latentage.__version__.split(".")[:3])) < tuple(
    map(int, MIN_PACKAGE_VERSION.split("."))
):
    raise WorkflowError(
        f"this workflow needs latentage >= {MIN_PACKAGE_VERSION}, found "
        f"{latentage.__version__}; run `make install` (or pip install -e .)"
    )

# Messages that name the key first; then Snakemake's validate fills in the schema's defaults;
# then the checks a schema cannot express.
SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
validate_config(config, SCHEMA)
validate(config, schema="../schemas/config.schema.yaml")
check_config(config)

SPLITS = ["train", "test"]
RESOLUTIONS = [2**k for k in range(2, config["data"]["max_res"].bit_length())]
GAN_RESOLUTIONS = [2**k for k in range(2, gan_max_res(config).bit_length())]
GAN_SETTINGS = gan_settings(config)
GAN_MAX_RES = GAN_RESOLUTIONS[-1]
# snapshot name (kimg) → the growth phase (resolution) that writes it
SNAPSHOTS = snapshot_resolutions(config)
METRIC_SETTINGS = metric_settings(config)
NN_RES = config["metrics"]["nearest_neighbours"]["res"] or GAN_MAX_RES
# the CNN reads the smallest prepared resolution at least as large as its input
CNN_RES = min(
    [r for r in RESOLUTIONS if r >= config["cnn"]["input_size"]] or [RESOLUTIONS[-1]]
)


scattergather:
    label=config["latent"]["shards"],


wildcard_constraints:
    split="|".join(SPLITS),
    res="|".join(str(r) for r in RESOLUTIONS),
    kimg=r"\d{6}(\.\d{3})?",


def raw_dataset(wildcards):
    """The labelled image folder and CSV that `prepare` reads: phantom or the user's."""
    if config["data"]["source"] == "phantom":
        return {
            "images": "results/phantom/images",
            "labels": "results/phantom/labels.csv",
        }
    rsna = config["data"]["rsna"]
    return {"images": rsna["images"], "labels": rsna["labels"]}


def column_flags(wildcards):
    """--id-column/--age-column/--sex-column for the columns the user named."""
    rsna = config["data"]["rsna"]
    flags = []
    for key, flag in (
        ("id_column", "--id-column"),
        ("age_column", "--age-column"),
        ("sex_column", "--sex-column"),
    ):
        if rsna.get(key):
            flags.append(f"{flag} '{rsna[key]}'")
    return " ".join(flags)


def prepared_data():
    return expand(
        "results/data/{split}/res{res}.npy", split=SPLITS, res=RESOLUTIONS
    ) + expand("results/data/{split}/labels.parquet", split=SPLITS)


def prev_checkpoint(wildcards):
    """Phase R starts from phase R/2's checkpoint; the 4×4 phase from fresh networks."""
    res = int(wildcards.res)
    return [] if res == 4 else [f"results/gan/res{res // 2}/checkpoint.pt"]


def prev_flag(wildcards, input):
    return f"--prev {input.prev}" if input.prev else ""


def launcher(wildcards, resources):
    """One process per GPU of the job (torchrun, NCCL) where the GPUs are visible; one
    process otherwise (see latentage/launch.py)."""
    gpus = int(getattr(resources, "gpu", 0) or 0)
    return f"latentage --nproc {gpus}" if gpus > 1 else "latentage"


def final_generator():
    """G_ema at the end of the last growth phase."""
    return f"results/gan/res{GAN_RESOLUTIONS[-1]}/checkpoint.pt"


def truncation_flag(wildcards):
    tau = config["latent"]["truncation"]
    return "" if tau is None else f"--truncation {tau}"


def snapshot_dir(wildcards):
    """The snapshots/ folder of the growth phase that wrote snapshot {kimg}."""
    if wildcards.kimg not in SNAPSHOTS:
        raise WorkflowError(
            f"no G_ema snapshot {wildcards.kimg}; the schedule writes "
            f"{', '.join(SNAPSHOTS)}"
        )
    return f"results/gan/res{SNAPSHOTS[wildcards.kimg]}/snapshots"


def inception_weights():
    """The Inception weights file named in config (an input, so a typo fails early)."""
    path = config["metrics"]["inception_weights"]
    return [path] if path else []


def snapshot_metric_files():
    return expand("results/metrics/snapshots/{kimg}.json", kimg=list(SNAPSHOTS))


def atlas_sheets():
    """One labelled sheet per requested age (years)."""
    ages = config["analysis"]["atlas"]["ages"]
    return [f"results/analysis/atlas/atlas_{a:g}y.png" for a in ages]


def phase_checkpoints():
    return expand("results/gan/res{res}/checkpoint.pt", res=GAN_RESOLUTIONS)


def final_outputs():
    """Everything `snakemake` with no target builds."""
    targets = prepared_data() + ["results/data/prepare.json"]
    targets += phase_checkpoints()
    targets += ["results/figures/fig1a_growth.png", "results/figures/fig1b_samples.png"]
    targets += ["results/cnn/eval.json", "results/figures/cnn_eval.png"]
    targets += ["results/latent/z.npy", "results/latent/labels.parquet"]
    targets += ["results/figures/latent_age_distribution.png"]
    targets += ["results/metrics/metrics.tsv", "results/metrics/real.json"]
    targets += ["results/figures/fig2a_metrics.png", "results/figures/fig2b_swd.png"]
    targets += ["results/metrics/nearest_neighbours.parquet"]
    targets += ["results/figures/nn_pixel.png", "results/figures/nn_features.png"]
    targets += ["results/analysis/lasso.json", "results/figures/fig3a_lasso.png"]
    targets += [
        "results/analysis/age_walk/walk.json",
        "results/figures/fig3b_age_walk.png",
    ]
    targets += ["results/analysis/axes.json", "results/figures/attribute_edits.png"]
    targets += ["results/analysis/atlas/atlas.json", "results/figures/atlas.png"]
    if config["data"]["source"] == "phantom":
        targets.append("results/data/phantom_sheet.png")
    return targets
