# GAN metrics over training (Fig 2) and the nearest-neighbour check.


rule real_metrics:
    """Real-image statistics (Inception and CNN features) and real-vs-real reference values."""
    input:
        reals=f"results/data/train/res{GAN_MAX_RES}.npy",
        cnn="results/cnn/model.pt",
        weights=inception_weights(),
    output:
        json="results/metrics/real.json",
        stats="results/metrics/real_stats.npz",
    log:
        "logs/metrics/real.log",
    benchmark:
        "benchmarks/metrics/real.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        settings=METRIC_SETTINGS,
        settings_json=json.dumps(METRIC_SETTINGS),
        seed=config["seed"],
    shell:
        "latentage real-metrics --reals {input.reals:q} --cnn {input.cnn:q}"
        " --settings {params.settings_json:q} --seed {params.seed}"
        " --out-json {output.json:q} --out-stats {output.stats:q} > {log:q} 2>&1"


rule snapshot_metrics:
    """FID, IS, MS-SSIM, SWD and domain FD of one G_ema snapshot."""
    input:
        snapshots=snapshot_dir,
        reals=f"results/data/train/res{GAN_MAX_RES}.npy",
        stats="results/metrics/real_stats.npz",
        cnn="results/cnn/model.pt",
        weights=inception_weights(),
    output:
        "results/metrics/snapshots/{kimg}.json",
    log:
        "logs/metrics/snapshot_{kimg}.log",
    benchmark:
        "benchmarks/metrics/snapshot_{kimg}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        settings=METRIC_SETTINGS,
        settings_json=json.dumps(METRIC_SETTINGS),
        seed=config["seed"],
    shell:
        "latentage snapshot-metrics --snapshot {input.snapshots:q}/{wildcards.kimg}.pt"
        " --reals {input.reals:q} --real-stats {input.stats:q} --cnn {input.cnn:q}"
        " --settings {params.settings_json:q} --seed {params.seed} --out {output:q}"
        " > {log:q} 2>&1"


rule gather_metrics:
    """Every snapshot's metrics in one table, in training order."""
    input:
        snapshot_metric_files(),
    output:
        "results/metrics/metrics.tsv",
    log:
        "logs/metrics/gather.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "latentage gather-metrics --snapshots {input:q} --out {output:q} > {log:q} 2>&1"


rule metrics_figures:
    """Fig 2a (MS-SSIM, IS, FID, domain FD) and Fig 2b (SWD per level) over training."""
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
        "logs/metrics/figures.log",
    conda:
        "../../envs/torch.yaml"
    shell:
        "latentage metrics-figures --table {input.table:q} --real {input.real:q}"
        " --out-a {output.fig2a:q} --out-b {output.fig2b:q} > {log:q} 2>&1"


rule nearest_neighbours:
    """Nearest real training images of generated hands by pixel and by CNN-feature distance."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        reals=f"results/data/train/res{NN_RES}.npy",
        features="results/cnn/features_train.npy",
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
    params:
        nn=config["metrics"]["nearest_neighbours"],
        res=NN_RES,
        seed=config["seed"],
    shell:
        "latentage nearest-neighbours --generator {input.generator:q} --cnn {input.cnn:q}"
        " --reals {input.reals:q} --real-features {input.features:q}"
        " --real-labels {input.labels:q} --queries {params.nn[queries]}"
        " --k {params.nn[k]} --res {params.res} --seed {params.seed}"
        " --out-table {output.table:q} --out-pixel {output.pixel:q}"
        " --out-features {output.features:q} > {log:q} 2>&1"
