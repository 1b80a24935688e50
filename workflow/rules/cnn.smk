# The bone-age CNN: training, then evaluation with predictions and real-image features.


rule train_cnn:
    """Transfer-learning bone-age regressor with a sex head (the study: Xception)."""
    input:
        images=f"results/data/train/res{CNN_RES}.npy",
        labels="results/data/train/labels.parquet",
    output:
        model="results/cnn/model.pt",
        history="results/cnn/history.jsonl",
    log:
        "logs/cnn/train.log",
    benchmark:
        "benchmarks/cnn/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        settings=config["cnn"],
        settings_json=json.dumps(config["cnn"]),
        seed=config["seed"],
    shell:
        "latentage train-cnn --images {input.images:q} --labels {input.labels:q}"
        " --out {output.model:q} --history {output.history:q}"
        " --settings {params.settings_json:q} --seed {params.seed} > {log:q} 2>&1"


rule evaluate_cnn:
    """MAE per split and yearly age bin, sex accuracy and AUC, predictions, features."""
    input:
        model="results/cnn/model.pt",
        data=expand("results/data/{split}/res{res}.npy", split=SPLITS, res=[CNN_RES]),
        labels=expand("results/data/{split}/labels.parquet", split=SPLITS),
    output:
        eval="results/cnn/eval.json",
        predictions=expand("results/cnn/predictions_{split}.parquet", split=SPLITS),
        features="results/cnn/features_train.npy",
        figure=report(
            "results/figures/cnn_eval.png",
            caption="../report/cnn_eval.rst",
            category="Bone-age CNN",
        ),
    log:
        "logs/cnn/evaluate.log",
    benchmark:
        "benchmarks/cnn/evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        settings_json=json.dumps(config["cnn"]),
        res=CNN_RES,
        data=lambda wildcards, input: Path(input.labels[0]).parent.parent,
        out=lambda wildcards, output: Path(output.eval).parent,
    shell:
        "latentage evaluate-cnn --model {input.model:q} --data {params.data:q}"
        " --res {params.res} --out {params.out:q} --figure {output.figure:q}"
        " --settings {params.settings_json:q} > {log:q} 2>&1"
