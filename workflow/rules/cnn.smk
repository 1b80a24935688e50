# The bone-age CNN: training, then evaluation with predictions of the real images; a second
# CNN from another random start reads the same generated hands (cnn.second_opinion).


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
        balance=BALANCE,
        seed=config["seed"],
    shell:
        "latentage train-cnn --images {input.images:q} --labels {input.labels:q}"
        " --model {output.model:q} --history {output.history:q}"
        " --settings {params.settings:q} {resources.speed:q} {params.balance}"
        " --seed {params.seed} --threads {threads} > {log:q} 2>&1"


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
        truth="--labels-are-truth" if config["data"]["source"] == "phantom" else "",
    shell:
        "latentage evaluate-cnn --model {input.model:q}"
        " --train-images {input.train_images:q} --test-images {input.test_images:q}"
        " --train-labels {input.train_labels:q} --test-labels {input.test_labels:q}"
        " --train-predictions {output.train_predictions:q}"
        " --test-predictions {output.test_predictions:q} --eval-json {output.eval:q}"
        " --figure {output.figure:q} {params.truth} --settings {params.settings:q}"
        " {resources.speed:q} > {log:q} 2>&1"


rule train_second_cnn:
    """The second-opinion CNN: trained as train_cnn, from its own seed stream (another
    validation split, initialisation, order and augmentation) and cnn.second_opinion.backbone.
    Reads: as train_cnn. Writes: second/model.pt, second/history.jsonl."""
    input:
        images=f"results/data/train/res{CNN_RES}.npy",
        labels="results/data/train/labels.parquet",
    output:
        model="results/cnn/second/model.pt",
        history="results/cnn/second/history.jsonl",
    log:
        "logs/cnn/train_second_cnn.log",
    benchmark:
        "benchmarks/cnn/train_second_cnn.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["cnn"],
    params:
        settings=SECOND_CNN_SETTINGS,
        balance=BALANCE,
        seed=SECOND_CNN_SEED,
    shell:
        "latentage train-cnn --images {input.images:q} --labels {input.labels:q}"
        " --model {output.model:q} --history {output.history:q}"
        " --settings {params.settings:q} {resources.speed:q} {params.balance}"
        " --seed {params.seed} --threads {threads} > {log:q} 2>&1"


rule cnn_agreement:
    """Both CNNs read the first cnn.second_opinion.n labelled generated hands and the real test
    images: agreement (mean difference, concordance, Bland-Altman limits, sex agreement) beside
    each CNN's error against the truth on real images.
    Reads: the final G_ema, both CNNs, latent labels and z, test images. Writes: agreement.json,
    agreement.parquet (per generated hand), the figure."""
    input:
        generator=final_generator(),
        first="results/cnn/model.pt",
        second="results/cnn/second/model.pt",
        labels="results/latent/labels.parquet",
        z="results/latent/z.npy",
        test_images=f"results/data/test/res{CNN_RES}.npy",
        test_labels="results/data/test/labels.parquet",
    output:
        json="results/cnn/agreement.json",
        table="results/cnn/agreement.parquet",
        figure=report(
            "results/figures/cnn_agreement.png",
            caption="../report/cnn_agreement.rst",
            category="Bone-age CNN",
        ),
    log:
        "logs/cnn/cnn_agreement.log",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        settings=settings("cnn.second_opinion"),
    shell:
        "latentage cnn-agreement --generator {input.generator:q} --first {input.first:q}"
        " --second {input.second:q} --labels {input.labels:q} --z {input.z:q}"
        " --test-images {input.test_images:q} --test-labels {input.test_labels:q}"
        " --json {output.json:q} --table {output.table:q} --figure {output.figure:q}"
        " --settings {params.settings:q} > {log:q} 2>&1"
