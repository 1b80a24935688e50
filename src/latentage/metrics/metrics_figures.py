"""The metrics_figures step, the study's Fig 2: (a) MS-SSIM, IS, FID and domain FD over
training with the real images' values as red dashed lines (for distances: the real-vs-real
floor at the snapshots' sample sizes, real_metrics.py); (b) SWD per Laplacian level with their
average in blue."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from latentage.io import save_figure
from latentage.plots import pyplot

PANELS = [("ms_ssim", "MS-SSIM (generated pairs)", "ms_ssim"),
          ("is_mean", "Inception Score", "is"),
          ("fid", "FID (Inception features)", "fid"),
          ("domain_fd", "Domain FD (bone-age CNN features)", "domain_fd")]


def _phase_ticks(ax, table: pd.DataFrame) -> None:
    """Shade alternate growth phases and name their resolution, so a reader sees where the
    network grew. A phase's band runs from the previous phase's last snapshot to its own."""
    left = 0.0
    for i, (res, part) in enumerate(table.groupby("resolution", sort=True)):
        right = float(part.kimg.max())
        if i % 2:
            ax.axvspan(left, right, color="0.92", zorder=0, lw=0)
        ax.text((left + right) / 2, 1.0, f"{res}²", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7, color="0.35")
        left = right
    # the whole run, whatever was plotted first (set_xlim(left=0) alone froze the right edge
    # where autoscaling stood, cutting off later snapshots)
    ax.set_xlim(0, float(table.kimg.max()) * 1.02)


def _floor_label(real: dict, name: str) -> str:
    floor = real.get("floors", {}).get(name)
    if floor is None:
        return "real images"
    how = "measured" if floor["matched"] else "extrapolated"
    return f"real vs real at n = {floor['n_fake']:,} ({how})"


def metrics_figures(*, table, real, fig2a, fig2b) -> None:
    """Fig 2a and 2b from the gathered `table` (metrics.tsv) and `real` (real.json)."""
    frame = pd.read_csv(table, sep="\t")
    reference = json.loads(Path(real).read_text())
    skipped = {**reference.get("skipped", {})}
    for s in frame.get("skipped", pd.Series(dtype=str)).dropna():
        for name in str(s).split(","):
            if name:
                skipped.setdefault(name, "weights absent")
    _fig2a(frame, reference, skipped, fig2a)
    _fig2b(frame, reference, skipped, fig2b)


def _fig2a(table, real, skipped, out_png) -> None:
    plt = pyplot()
    rv = real["values"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (col, title, name) in zip(axes.flat, PANELS, strict=True):
        ax.set_title(title, fontsize=10, pad=12)
        ax.set_xlabel("kimg (thousands of real images shown to D)")
        if col not in table or table[col].isna().all():
            why = skipped.get(name, "not enabled (metrics.enabled)").split(". ")[0]
            ax.text(0.5, 0.5, f"{name.upper()} skipped:\n" + _wrap(why)
                    + "\n\nreal.json and logs/metrics/ say which file to provide", ha="center",
                    va="center", fontsize=8, transform=ax.transAxes, color="0.3")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        _phase_ticks(ax, table)
        ax.plot(table.kimg, table[col], "o-", color="k", ms=3, lw=1, label="generated")
        if col == "is_mean" and "is_std" in table:
            ax.fill_between(table.kimg, table[col] - table.is_std, table[col] + table.is_std,
                            color="0.6", alpha=0.4, lw=0)
        if col in rv:
            label = _floor_label(real, name) if col in ("fid", "domain_fd") else "real images"
            ax.axhline(rv[col], color="red", ls="--", lw=1.2, label=label)
        if col in ("fid", "domain_fd"):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle("GAN metrics over training (G_ema snapshots; bands: growth phases, labelled "
                 "by resolution)", fontsize=11)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)


def _fig2b(table, real, skipped, out_png) -> None:
    plt = pyplot()
    rv = real["values"]
    levels = sorted((int(c.split("_")[1]) for c in table if c.startswith("swd_")
                     and c != "swd_avg"), reverse=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    if not levels:
        ax.text(0.5, 0.5, "SWD skipped: " + skipped.get("swd", "not enabled (metrics.enabled)"),
                ha="center", va="center", transform=ax.transAxes)
    else:
        _phase_ticks(ax, table)
        cmap = plt.get_cmap("Greens")
        for i, lv in enumerate(levels):
            shade = 0.9 - 0.55 * i / max(1, len(levels) - 1)
            ax.plot(table.kimg, table[f"swd_{lv}"], "-", lw=1.2, color=cmap(shade),
                    label=f"SWD {lv}×{lv}")
        ax.plot(table.kimg, table["swd_avg"], "o-", color="tab:blue", lw=2.2, ms=3,
                label="average")
        if "swd_avg" in rv:
            ax.axhline(rv["swd_avg"], color="red", ls="--", lw=1.2,
                       label=_floor_label(real, "swd") + ", average")
        ax.set_yscale("log")
        ax.set_xlabel("kimg (thousands of real images shown to D)")
        ax.set_ylabel("SWD ×10³")
        ax.legend(fontsize=8, ncol=2)
    ax.set_title("Sliced Wasserstein distance per Laplacian-pyramid level", fontsize=11, pad=14)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)


def _wrap(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:8])



