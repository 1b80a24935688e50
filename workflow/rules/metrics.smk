# GAN metrics over training (Fig 2) and the nearest-neighbour check.


rule real_metrics:
    """What every snapshot is compared with, computed once: the real images' feature
    statistics and SWD neighbourhoods, their IS and MS-SSIM, and the real-vs-real floors.
    Reads: train/res{GAN_MAX_RES}.npy, model.pt, the Inception weights if configured.
    Writes: real.json, real_stats.npz."""
    input:
        reals=f"results/data/train/res{GAN_MAX_RES}.npy",
        cnn="results/cnn/model.pt",
        weights=inception_weights(),
    output:
        json="results/metrics/real.json",
        stats="results/metrics/real_stats.npz",
    log:
        "logs/metrics/real_metrics.log",
    benchmark:
        "benchmarks/metrics/real_metrics.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["metrics"],
    params:
        settings=settings("metrics"),
        seed=config["seed"],
    shell:
        "latentage real-metrics --reals {input.reals:q} --cnn {input.cnn:q}"
        " --json {output.json:q} --stats {output.stats:q}"
        " --settings {params.settings:q} {resources.speed:q} --seed {params.seed}"
        " > {log:q} 2>&1"


rule snapshot_metrics:
    """FID, IS, MS-SSIM, SWD and domain FD of one G_ema snapshot.
    Reads: snapshots/{kimg}.pt of its growth phase, real_stats.npz, model.pt, the Inception
    weights if configured. Writes: results/metrics/snapshots/{kimg}.json."""
    input:
        snapshots=snapshot_dir,
        stats="results/metrics/real_stats.npz",
        cnn="results/cnn/model.pt",
        weights=inception_weights(),
    output:
        "results/metrics/snapshots/{kimg}.json",
    log:
        "logs/metrics/snapshot_metrics_{kimg}.log",
    benchmark:
        "benchmarks/metrics/snapshot_metrics_{kimg}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["metrics"],
    params:
        settings=settings("metrics"),
        seed=config["seed"],
    shell:
        "latentage snapshot-metrics --snapshot {input.snapshots:q}/{wildcards.kimg}.pt"
        " --real-stats {input.stats:q} --cnn {input.cnn:q} --json {output:q}"
        " --settings {params.settings:q} {resources.speed:q} --seed {params.seed}"
        " > {log:q} 2>&1"


rule gather_metrics:
    """Every snapshot's metrics in one table, in training order.
    Reads: every snapshot's JSON. Writes: metrics.tsv."""
    input:
        snapshot_metric_files(),
    output:
        "results/metrics/metrics.tsv",
    log:
        "logs/metrics/gather_metrics.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "latentage gather-metrics --snapshots {input:q} --table {output:q} > {log:q} 2>&1"


rule metrics_figures:
    """Fig 2a (MS-SSIM, IS, FID, domain FD) and Fig 2b (SWD per level) over training.
    Reads: metrics.tsv, real.json. Writes: the two figures."""
    input:
        table="results/metrics/metrics.tsv",
        real="results/metrics/real.json",
    output:
        fig2a=report(
            "results/figures/fig2a_metrics.png",
            caption="../report/fig2a_metrics.rst",
            category="GAN metrics",
        ),
        fig2b=report(
            "results/figures/fig2b_swd.png",
            caption="../report/fig2b_swd.rst",
            category="GAN metrics",
        ),
    log:
        "logs/metrics/metrics_figures.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "latentage metrics-figures --table {input.table:q} --real {input.real:q}"
        " --fig2a {output.fig2a:q} --fig2b {output.fig2b:q} > {log:q} 2>&1"


rule nearest_neighbours:
    """Nearest real training images of generated hands by pixel and by CNN-feature distance.
    Reads: the final generator, model.pt, train/res{NN_RES}.npy (pixels),
    train/res{GAN_MAX_RES}.npy (features, as the generated images), train labels.
    Writes: nearest_neighbours.parquet and a figure per distance."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        pixel_reals=f"results/data/train/res{NN_RES}.npy",
        feature_reals=f"results/data/train/res{GAN_MAX_RES}.npy",
        labels="results/data/train/labels.parquet",
    output:
        table="results/metrics/nearest_neighbours.parquet",
        pixel=report(
            "results/figures/nn_pixel.png",
            caption="../report/nn_pixel.rst",
            category="GAN metrics",
        ),
        features=report(
            "results/figures/nn_features.png",
            caption="../report/nn_features.rst",
            category="GAN metrics",
        ),
    log:
        "logs/metrics/nearest_neighbours.log",
    benchmark:
        "benchmarks/metrics/nearest_neighbours.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["metrics.nearest_neighbours"],
    params:
        settings=settings("metrics.nearest_neighbours"),
        seed=config["seed"],
    shell:
        "latentage nearest-neighbours --generator {input.generator:q} --cnn {input.cnn:q}"
        " --pixel-reals {input.pixel_reals:q} --feature-reals {input.feature_reals:q}"
        " --real-labels {input.labels:q} --table {output.table:q}"
        " --pixel-figure {output.pixel:q} --feature-figure {output.features:q}"
        " --settings {params.settings:q} {resources.speed:q}"
        " --seed {params.seed} > {log:q} 2>&1"
