# Shared helpers for all workflow files: config validation, wildcard constraints, the
# resolution list and named input functions. Rules live in the other .smk files.
import json
from pathlib import Path

from snakemake.utils import validate

import latentage
from latentage.config import check_config, gan_max_res, gan_settings, validate_config

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
# the CNN reads the smallest prepared resolution at least as large as its input
CNN_RES = min(
    [r for r in RESOLUTIONS if r >= config["cnn"]["input_size"]] or [RESOLUTIONS[-1]]
)


scattergather:
    label=config["latent"]["shards"],


wildcard_constraints:
    split="|".join(SPLITS),
    res="|".join(str(r) for r in RESOLUTIONS),


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
    """One process per GPU of the job (torchrun, NCCL); a single process without GPUs."""
    gpus = int(getattr(resources, "gpu", 0) or 0)
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node {gpus} -m latentage"
    return "latentage"


def final_generator():
    """G_ema at the end of the last growth phase."""
    return f"results/gan/res{GAN_RESOLUTIONS[-1]}/checkpoint.pt"


def truncation_flag(wildcards):
    tau = config["latent"]["truncation"]
    return "" if tau is None else f"--truncation {tau}"


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
    if config["data"]["source"] == "phantom":
        targets.append("results/data/phantom_sheet.png")
    return targets
