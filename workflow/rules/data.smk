# Data: the built-in phantom set, and preparation of any RSNA-format folder.


rule phantom:
    """Phantom hand radiographs with known ground truth, in RSNA format.
    Writes: results/phantom/images/{id}.png, labels.csv (id,boneage,male), truth.csv."""
    output:
        images=directory("results/phantom/images"),
        labels="results/phantom/labels.csv",
        truth="results/phantom/truth.csv",
    log:
        "logs/data/phantom.log",
    benchmark:
        "benchmarks/data/phantom.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        speed=RUNTIME["data.phantom"],
    params:
        settings=settings("data.phantom"),
        seed=config["seed"],
    shell:
        "latentage phantom --images {output.images:q} --labels {output.labels:q}"
        " --truth {output.truth:q} --settings {params.settings:q} {resources.speed:q}"
        " --seed {params.seed} --workers {threads} > {log:q} 2>&1"


rule phantom_sheet:
    """A contact sheet of phantoms ordered by age, for a person to look at.
    Reads: the phantom images and labels. Writes: results/data/phantom_sheet.png."""
    input:
        images="results/phantom/images",
        labels="results/phantom/labels.csv",
    output:
        report(
            "results/data/phantom_sheet.png",
            caption="../report/phantom_sheet.rst",
            category="Data",
        ),
    log:
        "logs/data/phantom_sheet.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "latentage phantom-sheet --images {input.images:q} --labels {input.labels:q}"
        " --out {output:q} > {log:q} 2>&1"


rule prepare:
    """Validate labels and images; grayscale, pad to square, resize to every power of two
    up to max_res; split train/test stratified by age.
    Reads: the labelled folder and CSV. Writes: per split, res{R}.npy for every R and
    labels.parquet; results/data/prepare.json (counts, skipped rows with reasons)."""
    input:
        unpack(raw_dataset),
    output:
        train_images=prepared("train"),
        test_images=prepared("test"),
        train_labels="results/data/train/labels.parquet",
        test_labels="results/data/test/labels.parquet",
        summary="results/data/prepare.json",
    log:
        "logs/data/prepare.log",
    benchmark:
        "benchmarks/data/prepare.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        speed=RUNTIME["data"],
    params:
        settings=settings("data"),
        seed=config["seed"],
    shell:
        "latentage prepare --images {input.images:q} --labels {input.labels:q}"
        " --train-images {output.train_images:q} --test-images {output.test_images:q}"
        " --train-labels {output.train_labels:q} --test-labels {output.test_labels:q}"
        " --summary {output.summary:q} --settings {params.settings:q} {resources.speed:q}"
        " --seed {params.seed} --workers {threads} > {log:q} 2>&1"
