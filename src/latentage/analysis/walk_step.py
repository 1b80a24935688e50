"""The age_walk step: both walks rendered, the frames, the MP4/GIF videos and Fig 3b."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from latentage.analysis.walk import WalkSettings, run_walks
from latentage.io import atomic_path, save_figure, write_json, write_parquet
from latentage.plots import pyplot


def _video_frames(images_u8: np.ndarray, ages: np.ndarray, label: str) -> list[np.ndarray]:
    """Frames at ≥ 256 px (a multiple of 16, for H.264) with the CNN age written on them."""
    from PIL import Image, ImageDraw

    res = images_u8.shape[1]
    side = max(256, res)
    side += (-side) % 16
    out = []
    for img, a in zip(images_u8, ages, strict=True):
        im = Image.fromarray(img).resize((side, side), Image.NEAREST if res < side else
                                         Image.LANCZOS).convert("RGB")
        draw = ImageDraw.Draw(im)
        text = f"{label}  CNN age {a / 12:4.1f} y"
        draw.rectangle([0, 0, side, 18], fill=(0, 0, 0))
        draw.text((4, 3), text, fill=(255, 230, 0))
        out.append(np.asarray(im))
    return out


def write_videos(frames: list[np.ndarray], mp4, gif, fps: int) -> None:
    import imageio.v2 as imageio

    with atomic_path(mp4, suffix=".mp4") as tmp:
        imageio.mimwrite(tmp, frames, fps=fps, codec="libx264", quality=8, macro_block_size=16,
                         format="FFMPEG")
    if gif is not None:
        with atomic_path(gif, suffix=".gif") as tmp:
            imageio.mimwrite(tmp, frames, format="GIF", duration=1000.0 / fps, loop=0)


def age_walk_step(generator, cnn, z_path, labels_path, lasso_json, lasso_coef, out_dir,
                  out_figure, settings: WalkSettings, seed: int, batch_size: int = 64,
                  log=print) -> dict:
    from PIL import Image

    from latentage.analysis.models import Models, read_pool
    from latentage.gan.images import to_uint8

    z, age, _ = read_pool(z_path, labels_path)
    coef = np.load(lasso_coef)
    intercept = json.loads(Path(lasso_json).read_text())["intercept"]
    models = Models.load(generator, cnn, batch_size)
    result = run_walks(z, age, coef, intercept, models.predict, settings, seed)
    out_dir = Path(out_dir)
    frames_dir = out_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, w in result["walks"].items():
        images = to_uint8(models.render(w["z"]))
        label = "nearest-latent chain" if name == "chain" else "LASSO direction"
        video = _video_frames(images, w["age"], label)
        write_videos(video, out_dir / f"{name}_walk.mp4",
                     out_dir / f"{name}_walk.gif" if name == "chain" else None, settings.fps)
        for i, img in enumerate(images):
            with atomic_path(frames_dir / f"{name}_{i:04d}.png", suffix=".png") as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
        for i in range(len(images)):
            rows.append({"walk": name, "frame": i, "age": float(w["age"][i]),
                         "male_prob": float(w["male_prob"][i]), "loess": float(w["loess"][i]),
                         "key": bool(result["key"][i]) if name == "chain" else False})
        with atomic_path(out_dir / f"{name}_latents.npy", suffix=".npy") as tmp:
            np.save(tmp, w["z"])
    write_parquet(out_dir / "frames.parquet", pd.DataFrame(rows))
    summary = {"chain": [int(i) for i in result["chain"]],
               "chain_ages": [float(a) for a in result["chain_ages"]],
               "frames_per_segment": settings.frames, "interpolation": settings.interpolation,
               "frames": int(len(result["key"])),
               "spearman_rho": {k: w["rho"] for k, w in result["walks"].items()},
               "age_range": {k: [float(w["age"].min()), float(w["age"].max())]
                             for k, w in result["walks"].items()}}
    write_json(out_dir / "walk.json", summary)
    walk_figure(result, out_figure)
    log(f"age-walk: chain of {len(result['chain'])} latents at predicted "
        f"{', '.join(f'{a / 12:.1f}' for a in result['chain_ages'])} y; {summary['frames']} "
        f"frames; Spearman ρ(frame, CNN age) chain {summary['spearman_rho']['chain']:.3f}, "
        f"LASSO direction {summary['spearman_rho']['lasso']:.3f}")
    return summary


def walk_figure(result: dict, out_png) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    key = result["key"]
    for ax, (name, title) in zip(axes, (("chain", "Nearest-latent chain (the study's walk)"),
                                        ("lasso", "Straight along the LASSO direction")),
                                 strict=True):
        w = result["walks"][name]
        x = np.arange(len(w["age"]))
        ax.plot(x, w["age"] / 12, "o", color="k", ms=2.5, label="frame (CNN age)")
        if name == "chain":
            ax.plot(x[key], w["age"][key] / 12, "o", color="red", ms=6, label="chain latents")
        ax.plot(x, w["loess"] / 12, "-", color="tab:blue", lw=2, label="LOESS")
        ax.set_title(f"{title}: Spearman ρ = {w['rho']:.2f}", fontsize=10)
        ax.set_xlabel("video frame")
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("CNN-predicted bone age (years)")
    fig.suptitle("Ageing hand: CNN-predicted age of each frame of the latent walk", fontsize=11)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
