# The bone-age CNN: training, then evaluation with predictions of the real images.


rule train_cnn:
    """Transfer-learning bone-age regressor with a sex head (the study: Xception).
    Reads: train/res{CNN_RES}.npy and train labels. Writes: model.pt, history.jsonl."""
    input:
        images=f"results/data/train/res{CNN_RES}.npy",
        labels="results/data/train/labels.parquet",
    output:
        model="results/cnn/model.pt",
        history="results/cnn/history.jsonl",
    log:
        "logs/cnn/train_cnn.log",
    benchmark:
        "benchmarks/cnn/train_cnn.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["cnn"],
    params:
        settings=settings("cnn"),
        seed=config["seed"],
    shell:
        "latentage train-cnn --images {input.images:q} --labels {input.labels:q}"
        " --model {output.model:q} --history {output.history:q}"
        " --settings {params.settings:q} {resources.speed:q} --seed {params.seed}"
        " --threads {threads} > {log:q} 2>&1"


rule evaluate_cnn:
    """MAE per split and yearly age bin, sex accuracy and AUC, per-image predictions.
    Reads: model.pt, both splits at CNN_RES with labels. Writes: eval.json, predictions per
    split, the evaluation figure."""
    input:
        model="results/cnn/model.pt",
        train_images=f"results/data/train/res{CNN_RES}.npy",
        test_images=f"results/data/test/res{CNN_RES}.npy",
        train_labels="results/data/train/labels.parquet",
        test_labels="results/data/test/labels.parquet",
    output:
        eval="results/cnn/eval.json",
        train_predictions="results/cnn/predictions_train.parquet",
        test_predictions="results/cnn/predictions_test.parquet",
        figure=report(
            "results/figures/cnn_eval.png",
            caption="../report/cnn_eval.rst",
            category="Bone-age CNN",
        ),
    log:
        "logs/cnn/evaluate_cnn.log",
    benchmark:
        "benchmarks/cnn/evaluate_cnn.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["cnn"],
    params:
        settings=settings("cnn"),
    shell:
        "latentage evaluate-cnn --model {input.model:q}"
        " --train-images {input.train_images:q} --test-images {input.test_images:q}"
        " --train-labels {input.train_labels:q} --test-labels {input.test_labels:q}"
        " --train-predictions {output.train_predictions:q}"
        " --test-predictions {output.test_predictions:q} --eval-json {output.eval:q}"
        " --figure {output.figure:q} --settings {params.settings:q} {resources.speed:q}"
        " > {log:q} 2>&1"
