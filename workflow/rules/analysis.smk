# Latent-space analysis: LASSO (Fig 3a), the age walk (Fig 3b, video), orthogonal age/sex
# axes and the age-steered atlas, all from the labelled latents.


rule lasso:
    """CNN-predicted age regressed on z: LassoCV (K-fold), held-out check, OLS/ridge beside."""
    input:
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
    output:
        json="results/analysis/lasso.json",
        coef="results/analysis/lasso_coef.npy",
        figure=report(
            "results/figures/fig3a_lasso.png",
            caption="../report/fig3a_lasso.rst",
            category="Latent space",
        ),
    log:
        "logs/analysis/lasso.log",
    benchmark:
        "benchmarks/analysis/lasso.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        lasso=config["analysis"]["lasso"],
        seed=config["seed"],
    shell:
        "latentage lasso --z {input.z:q} --labels {input.labels:q} --seed {params.seed}"
        " --folds {params.lasso[folds]} --holdout {params.lasso[holdout]}"
        " --n-alphas {params.lasso[n_alphas]} --max-iter {params.lasso[max_iter]}"
        " --jobs {threads} --out-json {output.json:q} --out-coef {output.coef:q}"
        " --figure {output.figure:q} > {log:q} 2>&1"


rule age_walk:
    """The ageing hand: a nearest-latent chain from the start age, interpolated, rendered and
    aged by the CNN; a second walk along the LASSO direction; MP4, GIF and Fig 3b."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
        lasso_json="results/analysis/lasso.json",
        lasso_coef="results/analysis/lasso_coef.npy",
    output:
        video="results/analysis/age_walk/chain_walk.mp4",
        gif="results/analysis/age_walk/chain_walk.gif",
        lasso_video="results/analysis/age_walk/lasso_walk.mp4",
        summary="results/analysis/age_walk/walk.json",
        frames="results/analysis/age_walk/frames.parquet",
        frame_dir=directory("results/analysis/age_walk/frames"),
        latents=expand(
            "results/analysis/age_walk/{walk}_latents.npy", walk=["chain", "lasso"]
        ),
        figure=report(
            "results/figures/fig3b_age_walk.png",
            caption="../report/fig3b_age_walk.rst",
            category="Latent space",
        ),
    log:
        "logs/analysis/age_walk.log",
    benchmark:
        "benchmarks/analysis/age_walk.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        walk=config["analysis"]["age_walk"],
        batch_size=config["analysis"]["batch_size"],
        seed=config["seed"],
        out=lambda wildcards, output: Path(output.summary).parent,
    shell:
        "latentage age-walk --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --seed {params.seed}"
        " --batch-size {params.batch_size} --lasso-json {input.lasso_json:q}"
        " --lasso-coef {input.lasso_coef:q}"
        " --start-age {params.walk[start_age][0]} {params.walk[start_age][1]}"
        " --end-age {params.walk[end_age]} --step {params.walk[step]}"
        " --tolerance {params.walk[tolerance]} --frames {params.walk[frames]}"
        " --interpolation {params.walk[interpolation]}"
        " --loess-frac {params.walk[loess_frac]} --fps {params.walk[fps]}"
        " --out-dir {params.out:q} --figure {output.figure:q} > {log:q} 2>&1"


rule attribute_axes:
    """Age and sex directions: OLS, orthogonality-penalised (Pham Van et al.), and age
    projected off sex; cosine table and CNN-measured edit test."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
    output:
        json="results/analysis/axes.json",
        npz="results/analysis/axes.npz",
        table="results/analysis/axes_edits.csv",
        figure=report(
            "results/figures/attribute_edits.png",
            caption="../report/attribute_edits.rst",
            category="Latent space",
        ),
    log:
        "logs/analysis/attribute_axes.log",
    benchmark:
        "benchmarks/analysis/attribute_axes.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        axes=config["analysis"]["axes"],
        batch_size=config["analysis"]["batch_size"],
        seed=config["seed"],
    shell:
        "latentage attribute-axes --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --seed {params.seed}"
        " --batch-size {params.batch_size} --lam {params.axes[lambda]}"
        " --edit-n {params.axes[edit_n]} --edit-age-months {params.axes[edit_age_months]}"
        " --edit-sex-logit {params.axes[edit_sex_logit]} --out-json {output.json:q}"
        " --out-npz {output.npz:q} --out-table {output.table:q}"
        " --figure {output.figure:q} > {log:q} 2>&1"


rule atlas:
    """Hands of requested bone ages and sex, steered along the age axis orthogonal to sex."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
        axes="results/analysis/axes.npz",
    output:
        table="results/analysis/atlas/atlas.csv",
        summary="results/analysis/atlas/atlas.json",
        sheets=atlas_sheets(),
        figure=report(
            "results/figures/atlas.png",
            caption="../report/atlas.rst",
            category="Latent space",
        ),
    log:
        "logs/analysis/atlas.log",
    benchmark:
        "benchmarks/analysis/atlas.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        atlas=config["analysis"]["atlas"],
        ages=" ".join(f"{a:g}" for a in config["analysis"]["atlas"]["ages"]),
        sexes=" ".join(config["analysis"]["atlas"]["sexes"]),
        batch_size=config["analysis"]["batch_size"],
        seed=config["seed"],
        out=lambda wildcards, output: Path(output.table).parent,
    shell:
        "latentage atlas --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --axes {input.axes:q}"
        " --seed {params.seed} --batch-size {params.batch_size} --ages {params.ages}"
        " --sexes {params.sexes} --per-age {params.atlas[per_age]}"
        " --steps {params.atlas[steps]} --tolerance {params.atlas[tolerance]}"
        " --out-dir {params.out:q} --figure {output.figure:q} > {log:q} 2>&1"
