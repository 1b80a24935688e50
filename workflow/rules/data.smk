# Data: the built-in phantom set, and preparation of any RSNA-format folder.


rule phantom:
    """Phantom hand radiographs with known ground truth, in RSNA format."""
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
    params:
        settings=config["data"]["phantom"],
        seed=config["seed"],
    shell:
        "latentage phantom --images {output.images:q} --labels {output.labels:q}"
        " --truth {output.truth:q} --n {params.settings[n]} --size {params.settings[size]}"
        " --seed {params.seed} --workers {threads} > {log:q} 2>&1"


rule phantom_sheet:
    """A contact sheet of phantoms ordered by age, for a person to look at."""
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
    up to max_res; split train/test stratified by age."""
    input:
        unpack(raw_dataset),
    output:
        images=expand(
            "results/data/{split}/res{res}.npy", split=SPLITS, res=RESOLUTIONS
        ),
        labels=expand("results/data/{split}/labels.parquet", split=SPLITS),
        summary="results/data/prepare.json",
    log:
        "logs/data/prepare.log",
    benchmark:
        "benchmarks/data/prepare.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        settings={k: v for k, v in config["data"].items() if k != "phantom"},
        seed=config["seed"],
        columns=column_flags,
        out=lambda wildcards, output: Path(output.summary).parent,
    shell:
        "latentage prepare --images {input.images:q} --labels {input.labels:q}"
        " --out {params.out:q} --max-res {params.settings[max_res]}"
        " --test-size {params.settings[test_size]} --seed {params.seed}"
        " --min-image-size {params.settings[min_image_size]}"
        " --on-bad-image {params.settings[on_bad_image]} {params.columns}"
        " --workers {threads} > {log:q} 2>&1"
