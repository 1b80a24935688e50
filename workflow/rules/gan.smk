# The progressive-growing GAN: one job per growth phase, then the study's Fig 1a/1b.


rule train_phase:
    """Phase R: fade into R (except 4²), then stabilise at R, from phase R/2's checkpoint.
    Resumes mid-phase from results/{gan}/res{R}/.progress after a time limit or a crash.
    {gan} is `gan` (the study's GAN) or `gan_conditional` (the conditional PGGAN of the
    comparison, analysis.conditional). Reads: train/res{R}.npy and the train labels (the
    conditional GAN's labels, data.balance's ages), phase R/2's checkpoint. Writes: the phase
    checkpoint (G, D, G_ema, optimisers, loss scalers, ADA's p, progress), stats.jsonl,
    fakes.png, ticks/{kimg}.png, snapshots/{kimg}.pt (G_ema, names known to the DAG)."""
    input:
        data="results/data/train/res{res}.npy",
        labels="results/data/train/labels.parquet",
        prev=prev_checkpoint,
    output:
        checkpoint=protected("results/{gan}/res{res}/checkpoint.pt"),
        stats="results/{gan}/res{res}/stats.jsonl",
        fakes="results/{gan}/res{res}/fakes.png",
        ticks=directory("results/{gan}/res{res}/ticks"),
        snapshots=directory("results/{gan}/res{res}/snapshots"),
    log:
        "logs/{gan}/res{res}.log",
    benchmark:
        "benchmarks/{gan}/res{res}.tsv"
    # the growth phases are the DAG's longest chain: when fewer cores than ready jobs are free
    # (a laptop, CI, `make demo`), start the next phase before other work (the CNNs, metrics)
    priority: 10
    # A phase stopped at its SLURM time limit (SIGTERM: progress saved) resumes on the next
    # attempt; a phase that diverged refuses at once (diverged.json), so spare attempts cost
    # little. runtime × (retries + 1) must cover the phase (README, time limits).
    retries: retries(10)
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        speed=gan_speed,
    params:
        settings=gan_settings,
        balance=BALANCE,
        seed=config["seed"],
        launcher=launcher,
        prev=prev_flag,
        progress="results/{gan}/res{res}/.progress",
    shell:
        "{params.launcher} train-phase --res {wildcards.res} --data {input.data:q}"
        " --labels {input.labels:q} {params.balance} {params.prev}"
        " --checkpoint {output.checkpoint:q} --stats {output.stats:q}"
        " --fakes {output.fakes:q} --ticks {output.ticks:q}"
        " --snapshots {output.snapshots:q} --progress {params.progress:q}"
        " --settings {params.settings:q} {resources.speed:q} --seed {params.seed}"
        " >> {log:q} 2>&1"


rule gan_figures:
    """Fig 1a (one sample per resolution across training) and Fig 1b (final samples).
    Reads: every phase checkpoint. Writes: the two figures."""
    input:
        phase_checkpoints(),
    output:
        growth=report(
            "results/figures/fig1a_growth.png",
            caption="../report/fig1a_growth.rst",
            category="GAN",
        ),
        samples=report(
            "results/figures/fig1b_samples.png",
            caption="../report/fig1b_samples.rst",
            category="GAN",
        ),
    log:
        "logs/gan/gan_figures.log",
    conda:
        "../../envs/torch.yaml"
    params:
        seed=config["seed"],
    shell:
        "latentage gan-figures --checkpoints {input:q} --growth {output.growth:q}"
        " --samples {output.samples:q} --seed {params.seed} > {log:q} 2>&1"
