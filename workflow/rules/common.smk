# Shared helpers for all workflow files: config validation, wildcard constraints, the lists
# the DAG is built from, and named input functions. Rules live in the other .smk files; the
# logic behind every value here lives in latentage.config (one function each, unit-tested).
import latentage.config as lc
from snakemake.utils import validate

MIN_PACKAGE_VERSION = "0.2.0"
lc.check_package_version(MIN_PACKAGE_VERSION)

# Messages that name the key first; then Snakemake's validate fills in the schema's defaults
# (the schema ships with the package: the steps read their defaults from the same file); then
# the checks a schema cannot express.
lc.validate_config(config)
validate(config, schema=str(lc.SCHEMA_PATH))
lc.check_config(config)

SPLITS = ["train", "test"]
RESOLUTIONS = lc.resolutions(config["data"]["max_res"])
GAN_MAX_RES = lc.gan_max_res(config)
GAN_RESOLUTIONS = lc.resolutions(GAN_MAX_RES)
CNN_RES = lc.cnn_resolution(config)
NN_RES = lc.nn_resolution(config)
# snapshot name (kimg) → the growth phase (resolution) that writes it
SNAPSHOTS = lc.snapshot_resolutions(config)

# Each step gets its config section as JSON, in two parts: the keys that change its results
# (the rule's params: editing one reruns the rule) and the keys that only change speed or
# cadence (RUNTIME, passed as the rule's `speed` resource, which Snakemake does not track:
# editing one reruns nothing).
_SECTIONS = [
    "data",
    "data.phantom",
    "gan",
    "cnn",
    "cnn.second_opinion",
    "latent",
    "metrics",
    "metrics.nearest_neighbours",
    "analysis.lasso",
    "analysis.age_walk",
    "analysis.axes",
    "analysis.atlas",
    "analysis.conditional",
]
_SETTINGS = {s: lc.step_settings(config, s) for s in _SECTIONS}
RUNTIME = {s: parts[1] for s, parts in _SETTINGS.items()}
# the second-opinion CNN: the first's settings with its own backbone and its own seed stream
SECOND_CNN = config["cnn"]["second_opinion"]["n"] > 0
SECOND_CNN_SETTINGS = lc.second_cnn_settings(config)
SECOND_CNN_SEED = lc.second_cnn_seed(config)
# the conditional PGGAN trained beside the main one for the comparison (analysis.conditional)
CONDITIONAL = config["analysis"]["conditional"]["enabled"]
GAN_SETTINGS = {"gan": _SETTINGS["gan"][0]}
if CONDITIONAL:
    GAN_SETTINGS["gan_conditional"] = lc.conditional_gan_settings(config)
BALANCE = lc.balance_flags(config)


def settings(section):
    """The keys of a config section that change a rule's results, as JSON."""
    return _SETTINGS[section][0]


scattergather:
    label=config["latent"]["shards"],


wildcard_constraints:
    split="|".join(SPLITS),
    res="|".join(str(r) for r in RESOLUTIONS),
    gan="gan|gan_conditional",
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


def prepared(split, res=None):
    """The prepared memmaps of a split: every resolution, lowest first, or one."""
    return expand(
        "results/data/{split}/res{res}.npy", split=split, res=res or RESOLUTIONS
    )


def prev_checkpoint(wildcards):
    """Phase R starts from phase R/2's checkpoint; the 4×4 phase from fresh networks."""
    res = int(wildcards.res)
    return [] if res == 4 else [f"results/{wildcards.gan}/res{res // 2}/checkpoint.pt"]


def _phase_settings(wildcards):
    """(params, speed) JSON of growth phase {res} of GAN {gan}."""
    if wildcards.gan not in GAN_SETTINGS:
        raise WorkflowError(
            "results/gan_conditional/ is the comparison's conditional GAN: set config key "
            "analysis.conditional.enabled: true to train it"
        )
    return lc.phase_settings(
        GAN_SETTINGS[wildcards.gan], RUNTIME["gan"], int(wildcards.res), GAN_MAX_RES
    )


def gan_settings(wildcards):
    """Growth phase {res}'s settings of the main GAN, or of the conditional one
    (gan_conditional): only the last phase's include gan.schedule.total_kimg."""
    return _phase_settings(wildcards)[0]


def gan_speed(wildcards):
    """The speed-only keys of growth phase {res} (its `speed` resource, untracked): with
    gan.schedule.total_kimg below the last phase."""
    return _phase_settings(wildcards)[1]


def prev_flag(wildcards, input):
    return f"--prev {input.prev}" if input.prev else ""


def launcher(wildcards, resources):
    """One process per GPU of the job where the GPUs are visible, one process otherwise (see
    latentage/launch.py): torchrun on one node, or SLURM tasks started by srun where the
    profile asks for them (`mpi: "srun"`, the multi-node layout)."""
    gpus = int(getattr(resources, "gpu", 0) or 0)
    if gpus <= 1:
        return "latentage"
    via = " --launcher srun" if getattr(resources, "mpi", None) == "srun" else ""
    return f"latentage --nproc {gpus}{via}"


def retries(n):
    """`n` retries where Snakemake schedules the jobs, none inside a cluster job. A growth
    phase stopped at its time limit must come back as a new SLURM job; the Snakemake inside
    the old job would otherwise restart it in the allocation that is about to end (a rule's
    `retries` overrides the `--retries 0` the executor passes to that process)."""
    return n if workflow.is_main_process else 0


def final_generator(gan="gan"):
    """G_ema at the end of the last growth phase (of the main GAN, or gan_conditional)."""
    return f"results/{gan}/res{GAN_MAX_RES}/checkpoint.pt"


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


def phase_checkpoints():
    return expand("results/gan/res{res}/checkpoint.pt", res=GAN_RESOLUTIONS)


def final_outputs():
    """Everything `snakemake` with no target builds."""
    targets = prepared("train") + prepared("test") + ["results/data/prepare.json"]
    targets += phase_checkpoints()
    targets += ["results/figures/fig1a_growth.png", "results/figures/fig1b_samples.png"]
    targets += ["results/cnn/eval.json", "results/figures/cnn_eval.png"]
    if SECOND_CNN:
        targets += ["results/cnn/agreement.json", "results/figures/cnn_agreement.png"]
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
    targets += ["results/summary.json", "results/summary.md"]
    if CONDITIONAL:
        targets += [
            "results/analysis/conditional/comparison.json",
            "results/figures/conditional_comparison.png",
        ]
    if config["data"]["source"] == "phantom":
        targets.append("results/data/phantom_sheet.png")
    return targets
