"""The age_walk step: the study's walk (Fig 3b and the "ageing hand" video).

Chain: start from a latent whose hand the CNN puts in the start range (e.g. 3–4 years); then
repeatedly take the nearest latent (L2 in z) of the labelled pool whose predicted age is about
`step` older, until the end age. Interpolate between consecutive chain points (linear or slerp,
`frames` each), render every frame with G_ema, let the CNN age every frame, fit a LOESS trend.
A second walk moves straight along the LASSO direction (z + α·w) over the same age range.
Spearman's ρ between frame index and CNN age says how monotone each walk is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from latentage import seeds
from latentage.errors import InputError
from latentage.io import atomic_path, save_figure, write_json, write_parquet
from latentage.plots import pyplot


def resolve_walk(s, age: np.ndarray):
    """AgeWalkSettings with every age the config leaves null taken from the ages the CNN gives
    generated hands: start around the 5th percentile, end at the 95th, six steps between,
    tolerance a quarter of a step. Explicit values win."""
    p = np.percentile(age, [2.5, 5, 7.5, 95])
    start = tuple(s.start_age) if s.start_age is not None else (float(p[0]), float(p[2]))
    end = float(s.end_age) if s.end_age is not None else float(p[3])
    step = float(s.step) if s.step is not None else max((end - np.mean(start)) / 6, 1e-3)
    tol = float(s.tolerance) if s.tolerance is not None else step / 4
    return replace(s, start_age=start, end_age=end, step=step, tolerance=tol)


def build_chain(z: np.ndarray, age: np.ndarray, s, seed: int) -> list[int]:
    """Latent indices of the chain for AgeWalkSettings `s`."""
    lo, hi = s.start_age
    start = np.flatnonzero((age >= lo) & (age <= hi))
    if not len(start):
        raise InputError(f"no labelled latent is predicted between {lo:g} and {hi:g} months "
                         f"(predicted ages span {age.min():.0f}–{age.max():.0f}); change config "
                         f"key analysis.age_walk.start_age")
    rng = seeds.rng(seed, "age_walk")
    chain = [int(rng.choice(start))]
    used = np.zeros(len(z), bool)
    used[chain[0]] = True
    while age[chain[-1]] + s.step <= s.end_age + s.tolerance:
        target = age[chain[-1]] + s.step
        # about `step` older, and at least half a step older: the chain always moves on
        older = age >= age[chain[-1]] + 0.5 * s.step
        for widen in (1, 2, 3):
            cand = np.flatnonzero((np.abs(age - target) <= s.tolerance * widen) & older & ~used)
            if len(cand):
                break
        else:
            break
        d = ((z[cand] - z[chain[-1]]) ** 2).sum(axis=1)
        nxt = int(cand[np.argmin(d)])
        chain.append(nxt)
        used[nxt] = True
    if len(chain) < 2:
        raise InputError(f"the age walk found no latent about {s.step:g} months older than "
                         f"{age[chain[0]]:.0f} months; lower analysis.age_walk.step or raise "
                         f"its tolerance")
    return chain


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(a @ b / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return a[None] + t[:, None] * (b - a)[None]
    so = np.sin(omega)
    return (np.sin((1 - t) * omega)[:, None] * a[None] + np.sin(t * omega)[:, None] * b[None]) / so


def interpolate(points: np.ndarray, frames: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Latents along the chain (`frames` per segment, the last point included) and, per frame,
    whether it is a chain point."""
    out, key = [], []
    t = np.arange(frames) / frames
    for a, b in zip(points[:-1], points[1:], strict=True):
        seg = slerp(a, b, t) if how == "slerp" else a[None] + t[:, None] * (b - a)[None]
        out.append(seg)
        key += [True] + [False] * (frames - 1)
    out.append(points[-1:])
    key.append(True)
    return np.concatenate(out).astype(np.float32), np.array(key)


def lasso_path(z0: np.ndarray, coef: np.ndarray, intercept: float, ages: np.ndarray) -> np.ndarray:
    """z0 + α_t·w with α_t chosen so the LASSO predicts ages[t]."""
    w = np.asarray(coef, np.float64)
    norm2 = float(w @ w)
    if norm2 == 0:
        raise InputError("the LASSO kept no coefficient: there is no age direction to walk")
    alpha = (ages - (z0 @ w + intercept)) / norm2
    return (z0[None] + alpha[:, None] * w[None]).astype(np.float32)


def loess(x: np.ndarray, y: np.ndarray, frac: float) -> np.ndarray:
    from statsmodels.nonparametric.smoothers_lowess import lowess

    return lowess(y, x, frac=frac, return_sorted=False)


def spearman(y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(y)), y).statistic)


def run_walks(z, age, coef, intercept, predict, s, seed: int) -> dict:
    """Both walks: latents, CNN ages, sex probabilities, LOESS, ρ. `predict(z) → (age, male)`."""
    chain = build_chain(z, age, s, seed)
    frames_z, key = interpolate(z[chain], s.frames, s.interpolation)
    f_age, f_male = predict(frames_z)
    lasso_z = lasso_path(z[chain[0]], coef, intercept,
                         np.linspace(age[chain[0]], age[chain[-1]], len(frames_z)))
    l_age, l_male = predict(lasso_z)
    idx = np.arange(len(frames_z), dtype=float)
    return {"chain": chain, "chain_ages": age[chain], "key": key,
            "walks": {"chain": {"z": frames_z, "age": f_age, "male_prob": f_male,
                                "loess": loess(idx, f_age, s.loess_frac), "rho": spearman(f_age)},
                      "lasso": {"z": lasso_z, "age": l_age, "male_prob": l_male,
                                "loess": loess(idx, l_age, s.loess_frac), "rho": spearman(l_age)}}}


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


@dataclass(frozen=True)
class WalkOutputs:
    """Every file the age_walk step writes, as its rule names them."""
    chain_video: Path     # MP4 of the nearest-latent chain
    chain_gif: Path       # the same as a GIF
    lasso_video: Path     # MP4 of the straight walk along the LASSO direction
    summary: Path         # walk.json
    frames: Path          # frames.parquet: CNN age, male probability, LOESS per frame
    frames_dir: Path      # folder: one PNG per frame, {walk}_{frame:04d}.png
    chain_latents: Path   # .npy
    lasso_latents: Path   # .npy
    figure: Path          # Fig 3b


def age_walk(*, generator, cnn, z, labels, lasso_json, lasso_coef, outputs: WalkOutputs,
             settings, seed: int, batch_size: int = 64, log=print) -> dict:
    """The age_walk step for AgeWalkSettings `settings`."""
    from PIL import Image

    from latentage.analysis.models import Models, read_pool
    from latentage.gan.images import to_uint8

    zs, age, _ = read_pool(z, labels)
    coef = np.load(lasso_coef)
    intercept = json.loads(Path(lasso_json).read_text())["intercept"]
    models = Models.load(generator, cnn, batch_size)
    settings = resolve_walk(settings, age)
    log(f"age-walk: from {settings.start_age[0]:.1f}–{settings.start_age[1]:.1f} to "
        f"{settings.end_age:.1f} months in steps of {settings.step:.2f} ± {settings.tolerance:.2f}")
    result = run_walks(zs, age, coef, intercept, models.predict, settings, seed)
    frames_dir = Path(outputs.frames_dir)
    frames_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, w in result["walks"].items():
        images = to_uint8(models.render(w["z"]))
        label = "nearest-latent chain" if name == "chain" else "LASSO direction"
        video = _video_frames(images, w["age"], label)
        write_videos(video, getattr(outputs, f"{name}_video"),
                     outputs.chain_gif if name == "chain" else None, settings.fps)
        for i, img in enumerate(images):
            with atomic_path(frames_dir / f"{name}_{i:04d}.png", suffix=".png") as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
        for i in range(len(images)):
            rows.append({"walk": name, "frame": i, "age": float(w["age"][i]),
                         "male_prob": float(w["male_prob"][i]), "loess": float(w["loess"][i]),
                         "key": bool(result["key"][i]) if name == "chain" else False})
        with atomic_path(getattr(outputs, f"{name}_latents"), suffix=".npy") as tmp:
            np.save(tmp, w["z"])
    write_parquet(outputs.frames, pd.DataFrame(rows))
    summary = {"chain": [int(i) for i in result["chain"]],
               "chain_ages": [float(a) for a in result["chain_ages"]],
               "settings": {"start_age": list(settings.start_age), "end_age": settings.end_age,
                            "step": settings.step, "tolerance": settings.tolerance},
               "frames_per_segment": settings.frames, "interpolation": settings.interpolation,
               "frames": int(len(result["key"])),
               "spearman_rho": {k: w["rho"] for k, w in result["walks"].items()},
               "age_range": {k: [float(w["age"].min()), float(w["age"].max())]
                             for k, w in result["walks"].items()}}
    write_json(outputs.summary, summary)
    walk_figure(result, outputs.figure)
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
