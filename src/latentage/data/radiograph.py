"""The phantom radiograph: a hand model (hand_model.py) projected to an X-ray image.

Bones are rendered as X-ray path lengths through hollow tubes (bright cortex, darker medulla)
or ellipsoids, so the usual radiographic look — cortex brighter than medulla — comes from the
projection itself. Everything that is not age or sex — rotation, framing, exposure, gamma,
heel effect, noise, blur, a burned-in "L" marker, film edges — is drawn independently of age,
so a model that reads age from these images must read the skeleton.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from latentage.data.hand_model import Capsule, HandModel, growth


@dataclass
class Nuisance:
    rotation: float  # degrees
    hand_fill: float  # hand length / image size
    cx: float
    cy: float  # wrist centre, fraction of size
    background: float
    white: float
    gain: float
    gamma: float
    heel: float
    heel_dir: float
    noise: float
    blur: float
    marker: tuple  # (x, y, size, angle) fractions
    frame: tuple | None  # (left, top, right, bottom, level) or None


def sample_nuisance(rng: np.random.Generator) -> Nuisance:
    frame = None
    if rng.random() < 0.35:
        sides = rng.uniform(0.0, 0.09, 4) * (rng.random(4) < 0.6)
        frame = (*sides.tolist(), float(rng.uniform(0.55, 0.95)))
    corner = rng.integers(4)
    mx = rng.uniform(0.05, 0.2) if corner % 2 == 0 else rng.uniform(0.72, 0.88)
    my = rng.uniform(0.04, 0.2) if corner < 2 else rng.uniform(0.7, 0.86)
    return Nuisance(
        rotation=float(rng.uniform(-20, 20)),
        hand_fill=float(rng.uniform(0.9, 1.1)),
        cx=float(rng.uniform(0.42, 0.58)),
        cy=float(rng.uniform(0.70, 0.80)),
        background=float(rng.uniform(0.02, 0.30)),
        white=float(rng.uniform(0.85, 1.0)),
        gain=float(rng.uniform(0.8, 1.25)),
        gamma=float(rng.uniform(0.75, 1.35)),
        heel=float(rng.uniform(-0.15, 0.15)),
        heel_dir=float(rng.uniform(0, 2 * math.pi)),
        noise=float(rng.uniform(0.004, 0.025)),
        blur=float(rng.uniform(0.3, 1.0)),
        marker=(float(mx), float(my), float(rng.uniform(0.05, 0.08)),
                float(rng.uniform(-15, 15))),
        frame=frame,
    )


class _Frame:
    """Maps hand-frame coordinates to pixels (x right, y down)."""

    def __init__(self, size, scale_px, cx, cy, rotation_deg):
        self.size, self.s = size, scale_px
        self.c = np.array([cx * size, cy * size])
        t = math.radians(rotation_deg)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.theta = t

    def point(self, p):
        x, y = p
        return self.c + self.s * np.array([self.cos * x - self.sin * y,
                                           -(self.sin * x + self.cos * y)])


def _grid(x0, x1, y0, y1):
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return xs.astype(np.float32) + 0.5, ys.astype(np.float32) + 0.5


def _part_thickness(part, fr: _Frame, xs, ys):
    """Path length (hand units) through one primitive over pixel grid xs, ys."""
    if isinstance(part, Capsule):
        a, b = fr.point(part.a), fr.point(part.b)
        ab = b - a
        den = float(ab @ ab) or 1e-12
        t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / den, 0.0, 1.0)
        dx, dy = xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1])
        d2 = (dx * dx + dy * dy) / (fr.s * fr.s)
        r, ri = part.r, part.r * (1.0 - part.cortex)
        outer = 2.0 * np.sqrt(np.maximum(r * r - d2, 0.0))
        inner = 2.0 * np.sqrt(np.maximum(ri * ri - d2, 0.0))
        return outer, inner
    c = fr.point(part.c)
    ang = part.angle + fr.theta
    along = np.array([math.sin(ang), -math.cos(ang)])  # pixel-space direction of "along"
    across = np.array([-along[1], along[0]])
    px, py = xs - c[0], ys - c[1]
    qa = (px * across[0] + py * across[1]) / (part.across * fr.s)
    ql = (px * along[0] + py * along[1]) / (part.along * fr.s)
    q2 = qa * qa + ql * ql
    depth = min(part.across, part.along)
    k = 1.0 - part.cortex
    outer = 2.0 * depth * np.sqrt(np.maximum(1.0 - q2, 0.0))
    inner = 2.0 * depth * k * np.sqrt(np.maximum(1.0 - q2 / (k * k), 0.0))
    return outer, inner


def _bbox(part, fr: _Frame, pad=1.5):
    if isinstance(part, Capsule):
        pts = [fr.point(part.a), fr.point(part.b)]
        r = part.r * fr.s
    else:
        pts = [fr.point(part.c)]
        r = max(part.across, part.along) * fr.s
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return (int(math.floor(min(xs) - r - pad)), int(math.ceil(max(xs) + r + pad)),
            int(math.floor(min(ys) - r - pad)), int(math.ceil(max(ys) + r + pad)))


MU_CORTEX, MU_MEDULLA, MU_SOFT = 30.0, 8.0, 4.6


def _render_bones(bones, fr: _Frame, size: int) -> np.ndarray:
    att = np.zeros((size, size), np.float32)
    for bone in bones:
        boxes = [_bbox(p, fr) for p in bone.parts]
        x0 = max(min(b[0] for b in boxes), 0)
        x1 = min(max(b[1] for b in boxes), size)
        y0 = max(min(b[2] for b in boxes), 0)
        y1 = min(max(b[3] for b in boxes), size)
        if x0 >= x1 or y0 >= y1:
            continue
        xs, ys = _grid(x0, x1, y0, y1)
        best = None
        for part in bone.parts:  # parts of one bone merge (max), bones add up
            outer, inner = _part_thickness(part, fr, xs, ys)
            a = MU_CORTEX * (outer - inner) + MU_MEDULLA * inner
            best = a if best is None else np.maximum(best, a)
        att[y0:y1, x0:x1] += best
    return att


def _render_soft(soft, fr: _Frame, size: int, factor: int = 4) -> np.ndarray:
    """Soft tissue is smooth: render at 1/factor resolution and upsample."""
    small = max(size // factor, min(size, 96))
    sub = _Frame(small, fr.s * small / size, fr.c[0] / size, fr.c[1] / size, 0.0)
    sub.cos, sub.sin, sub.theta = fr.cos, fr.sin, fr.theta
    xs, ys = _grid(0, small, 0, small)
    t = np.zeros((small, small), np.float32)
    for part in soft:
        outer, _ = _part_thickness(part, sub, xs, ys)
        t = np.maximum(t, np.minimum(outer, 0.11))  # a hand is flatter than it is wide
    t = ndimage.gaussian_filter(t, 0.8, mode="nearest")  # skin edges are soft, not stepped
    return ndimage.zoom(t, size / small, order=1, mode="nearest", grid_mode=True)[:size, :size]


def _draw_marker(img: np.ndarray, nz: Nuisance, rng: np.random.Generator) -> None:
    """Burn in a lead 'L' side marker (bright) at its place."""
    size = img.shape[0]
    mx, my, ms, ang = nz.marker
    h = ms * size
    w = 0.62 * h
    sw = max(0.2 * h, 1.0)
    poly = np.array([(0, 0), (sw, 0), (sw, h - sw), (w, h - sw), (w, h), (0, h)], float)
    poly -= (w / 2, h / 2)
    t = math.radians(ang)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    poly = poly @ rot.T + (mx * size, my * size)
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in poly], fill=255)
    mask = np.asarray(canvas, np.float32) / 255.0
    level = rng.uniform(0.88, 1.0)
    img *= 1.0 - mask
    img += mask * level


def scale_px(model: HandModel, nz: Nuisance, size: int) -> float:
    """Pixels per hand-frame unit: the hand grows with maturity, framing varies."""
    t = model.truth
    return size * nz.hand_fill * (0.48 + 0.20 * growth(t["maturity_years"], t["male"]))


def render(model: HandModel, nz: Nuisance, size: int, rng: np.random.Generator) -> np.ndarray:
    """The radiograph as uint8, size × size."""
    scale = scale_px(model, nz, size)
    fr = _Frame(size, scale, nz.cx, nz.cy, nz.rotation)
    att = _render_bones(model.bones, fr, size)
    att += MU_SOFT * _render_soft(model.soft, fr, size)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    heel = 1.0 + nz.heel * (xs * math.cos(nz.heel_dir) + ys * math.sin(nz.heel_dir)) * 2
    img = 1.0 - np.exp(-nz.gain * heel * att)
    img = nz.background + (nz.white - nz.background) * img
    if nz.frame is not None:
        left, top, right, bottom, level = nz.frame
        inside = ((xs + 0.5 >= left) & (xs + 0.5 <= 1 - right)
                  & (ys + 0.5 >= top) & (ys + 0.5 <= 1 - bottom))
        img = np.where(inside, img, np.maximum(img, level))
    _draw_marker(img, nz, rng)
    img = np.clip(img, 0.0, 1.0) ** nz.gamma
    img = ndimage.gaussian_filter(img, nz.blur * size / 256.0, mode="nearest")
    img += rng.normal(0.0, nz.noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
