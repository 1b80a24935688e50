# Latent-space analysis: LASSO (Fig 3a), the age walk (Fig 3b, video), orthogonal age/sex
# axes and the age-steered atlas, all from the labelled latents.


rule lasso:
    """CNN-predicted age regressed on z: LassoCV (K-fold), held-out check, OLS/ridge beside.
    Reads: z.npy, labels.parquet. Writes: lasso.json, lasso_coef.npy, Fig 3a."""
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
    resources:
        speed=RUNTIME["analysis.lasso"],
    params:
        settings=settings("analysis.lasso"),
        seed=config["seed"],
    shell:
        "latentage lasso --z {input.z:q} --labels {input.labels:q}"
        " --settings {params.settings:q} {resources.speed:q} --seed {params.seed}"
        " --jobs {threads} --json {output.json:q} --coef {output.coef:q}"
        " --figure {output.figure:q} > {log:q} 2>&1"


rule age_walk:
    """The ageing hand: a nearest-latent chain from the start age, interpolated, rendered and
    aged by the CNN; a second walk along the LASSO direction; MP4, GIF and Fig 3b.
    Reads: the final generator, model.pt, the labelled latents, the LASSO fit.
    Writes: both videos and the GIF, walk.json, frames.parquet, a PNG per frame, both walks'
    latents, Fig 3b."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
        lasso_json="results/analysis/lasso.json",
        lasso_coef="results/analysis/lasso_coef.npy",
    output:
        chain_video=report(
            "results/analysis/age_walk/chain_walk.mp4",
            caption="../report/age_walk_video.rst",
            category="Latent space",
        ),
        chain_gif="results/analysis/age_walk/chain_walk.gif",
        lasso_video="results/analysis/age_walk/lasso_walk.mp4",
        summary="results/analysis/age_walk/walk.json",
        frames="results/analysis/age_walk/frames.parquet",
        frames_dir=directory("results/analysis/age_walk/frames"),
        chain_latents="results/analysis/age_walk/chain_latents.npy",
        lasso_latents="results/analysis/age_walk/lasso_latents.npy",
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
    resources:
        speed=RUNTIME["analysis.age_walk"],
        batch_size=config["analysis"]["batch_size"],
    params:
        settings=settings("analysis.age_walk"),
        seed=config["seed"],
    shell:
        "latentage age-walk --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --lasso-json {input.lasso_json:q}"
        " --lasso-coef {input.lasso_coef:q} --chain-video {output.chain_video:q}"
        " --chain-gif {output.chain_gif:q} --lasso-video {output.lasso_video:q}"
        " --summary {output.summary:q} --frames {output.frames:q}"
        " --frames-dir {output.frames_dir:q} --chain-latents {output.chain_latents:q}"
        " --lasso-latents {output.lasso_latents:q} --figure {output.figure:q}"
        " --settings {params.settings:q} {resources.speed:q}"
        " --batch-size {resources.batch_size} --seed {params.seed} > {log:q} 2>&1"


rule attribute_axes:
    """Age and sex directions: OLS, best unit-length columns, orthogonality-penalised (Pham
    Van et al.), and age projected off sex; held-out MSEs, cosines, CNN-measured edit test.
    Reads: the final generator, model.pt, the labelled latents.
    Writes: axes.json, axes.npz, axes_edits.csv, the edit figure."""
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
    resources:
        speed=RUNTIME["analysis.axes"],
        batch_size=config["analysis"]["batch_size"],
    params:
        settings=settings("analysis.axes"),
        seed=config["seed"],
    shell:
        "latentage attribute-axes --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --json {output.json:q}"
        " --npz {output.npz:q} --table {output.table:q} --figure {output.figure:q}"
        " --settings {params.settings:q} {resources.speed:q}"
        " --batch-size {resources.batch_size} --seed {params.seed} > {log:q} 2>&1"


rule atlas:
    """Hands of requested bone ages and sex, steered along the age axis with sex projected out.
    Reads: the final generator, model.pt, the labelled latents, axes.npz.
    Writes: atlas.csv, atlas.json, sheets/atlas_{age}y.png (one per requested age: the
    config's, or four inside the CNN's predicted range), the overview figure."""
    input:
        generator=final_generator(),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
        axes="results/analysis/axes.npz",
    output:
        table="results/analysis/atlas/atlas.csv",
        summary="results/analysis/atlas/atlas.json",
        sheets=directory("results/analysis/atlas/sheets"),
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
    resources:
        speed=RUNTIME["analysis.atlas"],
        batch_size=config["analysis"]["batch_size"],
    params:
        settings=settings("analysis.atlas"),
        seed=config["seed"],
    shell:
        "latentage atlas --generator {input.generator:q} --cnn {input.cnn:q}"
        " --z {input.z:q} --labels {input.labels:q} --axes {input.axes:q}"
        " --table {output.table:q} --summary {output.summary:q} --sheets {output.sheets:q}"
        " --figure {output.figure:q} --settings {params.settings:q}"
        " {resources.speed:q} --batch-size {resources.batch_size}"
        " --seed {params.seed} > {log:q} 2>&1"


rule conditional_comparison:
    """Beyond the study (analysis.conditional): hands of each requested age and sex from the
    conditional PGGAN, and from the main G steered along the atlas's age axis; the CNN's age
    and sex of both, MS-SSIM within each request, domain FD against the reals.
    Reads: both final generators, model.pt, the labelled latents, axes.npz, real_stats.npz.
    Writes: comparison.parquet (every hand), comparison.json (per request and per method),
    the figure and a sample sheet."""
    input:
        generator=final_generator(),
        conditional=final_generator("gan_conditional"),
        cnn="results/cnn/model.pt",
        z="results/latent/z.npy",
        labels="results/latent/labels.parquet",
        axes="results/analysis/axes.npz",
        real_stats="results/metrics/real_stats.npz",
    output:
        table="results/analysis/conditional/comparison.parquet",
        summary="results/analysis/conditional/comparison.json",
        figure=report(
            "results/figures/conditional_comparison.png",
            caption="../report/conditional_comparison.rst",
            category="Beyond the study",
        ),
        samples=report(
            "results/figures/conditional_samples.png",
            caption="../report/conditional_samples.rst",
            category="Beyond the study",
        ),
    log:
        "logs/analysis/conditional_comparison.log",
    benchmark:
        "benchmarks/analysis/conditional_comparison.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=RUNTIME["analysis.conditional"],
        batch_size=config["analysis"]["batch_size"],
    params:
        settings=settings("analysis.conditional"),
        seed=config["seed"],
    shell:
        "latentage conditional-comparison --generator {input.generator:q}"
        " --conditional {input.conditional:q} --cnn {input.cnn:q} --z {input.z:q}"
        " --labels {input.labels:q} --axes {input.axes:q} --real-stats {input.real_stats:q}"
        " --table {output.table:q} --summary {output.summary:q} --figure {output.figure:q}"
        " --samples {output.samples:q} --settings {params.settings:q} {resources.speed:q}"
        " --batch-size {resources.batch_size} --seed {params.seed} > {log:q} 2>&1"


rule summary:
    """The study's four claims with this run's numbers (CNN error, ages of generated hands,
    LASSO R², walk and atlas), as JSON and in sentences.
    Reads: eval.json, latent labels, lasso.json, walk.json, atlas.json, agreement.json (with a
    second CNN). Writes: results/summary.json, results/summary.md."""
    input:
        cnn_eval="results/cnn/eval.json",
        labels="results/latent/labels.parquet",
        lasso="results/analysis/lasso.json",
        walk="results/analysis/age_walk/walk.json",
        atlas="results/analysis/atlas/atlas.json",
        agreement=["results/cnn/agreement.json"] if SECOND_CNN else [],
    output:
        json="results/summary.json",
        md=report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
    log:
        "logs/analysis/summary.log",
    conda:
        "../../envs/torch.yaml"
    params:
        agreement=lambda wildcards, input: (
            f"--agreement {input.agreement[0]}" if input.agreement else ""
        ),
    shell:
        "latentage summary --cnn-eval {input.cnn_eval:q} --labels {input.labels:q}"
        " --lasso {input.lasso:q} --walk {input.walk:q} --atlas {input.atlas:q}"
        " {params.agreement} --json {output.json:q} --md {output.md:q} > {log:q} 2>&1"
