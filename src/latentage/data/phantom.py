"""Phantom hand radiographs with known ground truth.

A left hand seen PA (thumb on the image's right), drawn from a small anatomical model whose
maturity follows a Greulich–Pyle-like timeline (../shared/notes/hand-radiographs.md):
carpal centres appear one by one, epiphyses appear as dots, widen into caps, and fuse with
their shafts in puberty; bones lengthen and thicken. Girls mature about 15 % earlier at every
milestone; boys' bones grow more robust from puberty and their ring finger is relatively
longer (2D:4D), so sex — needed to turn maturity into bone age — can be seen. Everything
that is not age or sex — rotation, finger spread, framing, exposure, noise, blur, a
burned-in "L" marker, film edges — is drawn independently of age, so a model that reads age
from these images must read the skeleton.

Geometry lives in a *hand frame*: unit = adult hand length (wrist to middle fingertip),
origin at the wrist centre, +y towards the fingers, +x towards the thumb. Bones are rendered
as X-ray path lengths through hollow tubes (bright cortex, darker medulla) or ellipsoids, so
the usual radiographic look — cortex brighter than medulla — comes from the projection itself.

Every image is a pure function of (seed, index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

# RSNA 2017 training labels: images per year of bone age 0..19 (hand-radiographs.md).
RSNA_YEAR_COUNTS = np.array(
    [13, 78, 175, 231, 304, 531, 739, 877, 896, 444, 1210, 1665, 1400, 1947, 1002, 581, 209, 216,
     74, 19],
    dtype=float,
)
MALE_FRACTION = 0.542
FEMALE_TEMPO = 1 / 0.87  # girls reach each milestone at ~0.87 of the boys' age

# Ossification onset (years, boys) of the eight carpals; hand frame centre, adult semi-axes
# (across, along) and orientation (degrees from +y towards +x).
CARPALS = {
    "capitate": ((0.005, 0.115), (0.030, 0.048), 0.0, 0.25),
    "hamate": ((-0.055, 0.125), (0.028, 0.042), -10.0, 0.35),
    "triquetrum": ((-0.072, 0.058), (0.026, 0.021), 20.0, 2.5),
    "lunate": ((-0.017, 0.046), (0.025, 0.023), 0.0, 3.5),
    "trapezium": ((0.098, 0.113), (0.025, 0.023), 30.0, 5.0),
    "trapezoid": ((0.057, 0.142), (0.020, 0.021), 0.0, 5.5),
    "scaphoid": ((0.058, 0.060), (0.034, 0.019), 40.0, 5.5),
    "pisiform": ((-0.090, 0.088), (0.014, 0.014), 0.0, 9.5),
}

# Rays: metacarpal base (hand frame), angle from +y (deg, + towards thumb), lengths of
# metacarpal and phalanges (proximal, [middle,] distal), shaft radii of each bone.
RAYS = {
    1: ((0.118, 0.150), 38.0, (0.20, 0.16, 0.12), (0.024, 0.022, 0.018)),
    2: ((0.060, 0.190), 7.0, (0.36, 0.21, 0.12, 0.085), (0.022, 0.021, 0.017, 0.014)),
    3: ((0.005, 0.196), 0.0, (0.34, 0.24, 0.15, 0.095), (0.022, 0.022, 0.018, 0.014)),
    4: ((-0.050, 0.181), -6.0, (0.31, 0.225, 0.14, 0.095), (0.019, 0.020, 0.017, 0.014)),
    5: ((-0.095, 0.160), -13.0, (0.28, 0.17, 0.095, 0.08), (0.018, 0.018, 0.015, 0.013)),
}
# How far each finger's phalanges deviate from its metacarpal per unit of spread (deg).
FINGER_SPREAD = {1: 10.0, 2: 6.0, 3: 0.0, 4: -6.0, 5: -12.0}

# Epiphyses (boys): onset and fusion ages in years.
EPI_METACARPAL = (2.0, 16.5)
EPI_PHALANX = {"proximal": (1.5, 16.0), "middle": (2.5, 16.5), "distal": (2.0, 14.5)}
EPI_RADIUS = (1.0, 17.5)
EPI_ULNA = (6.0, 17.0)
SESAMOID_ONSET = 13.0


# --------------------------------------------------------------------------- labels
def sample_label(rng: np.random.Generator) -> tuple[float, bool]:
    """Bone age (months) and sex drawn like the RSNA training labels."""
    male = bool(rng.random() < MALE_FRACTION)
    year = rng.choice(len(RSNA_YEAR_COUNTS), p=RSNA_YEAR_COUNTS / RSNA_YEAR_COUNTS.sum())
    months = (year + rng.random()) * 12.0
    months *= 1.06 if male else 0.93  # RSNA: male mean 135, female 118 months
    return float(np.clip(round(months), 1, 228)), male


# --------------------------------------------------------------------------- maturity
def ossification(m: float, onset: float, tau: float = 3.0) -> float:
    """Size fraction (0 = not yet ossified, → 1 = adult) of a centre at maturity m."""
    return 0.0 if m <= onset else 1.0 - math.exp(-(m - onset) / tau)


def fusion(m: float, age: float) -> float:
    """0 = open growth plate, 1 = fused; smooth over ~2 years around `age`."""
    t = min(max((m - (age - 1.5)) / 2.0, 0.0), 1.0)
    return t * t * (3 - 2 * t)


def maturity_years(boneage_months: float, male: bool) -> float:
    """Boy-equivalent skeletal maturity: the age on the boys' milestone timeline."""
    years = boneage_months / 12.0
    return years if male else years * FEMALE_TEMPO


def growth(m: float, male: bool) -> float:
    """Hand length relative to an adult male hand."""
    adult = 1.0 if male else 0.92
    return adult * (0.42 + 0.58 * (1.0 - math.exp(-m / 6.0)))


# --------------------------------------------------------------------------- primitives
@dataclass
class Capsule:
    """A tube from a to b (hand frame) of radius r with cortex fraction `cortex`."""

    a: tuple[float, float]
    b: tuple[float, float]
    r: float
    cortex: float = 0.35


@dataclass
class Ellipse:
    """An ellipsoid of semi-axes (across, along); `angle` rotates `along` off +y."""

    c: tuple[float, float]
    across: float
    along: float
    angle: float  # radians
    cortex: float = 0.2


@dataclass
class Bone:
    name: str
    parts: list = field(default_factory=list)


def _unit(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([math.sin(a), math.cos(a)])


def _long_bone(name, start, u, length, radius, epi_at, epi_times, m, wf, epi_len=None):
    """Shaft with flared ends plus an epiphysis at `epi_at` ('base' | 'head').

    `epi_len` is the length of the epiphysis' slot when mature (default 14 % of the bone)."""
    u = np.asarray(u, float)
    start = np.asarray(start, float)
    r = radius * wf
    angle = math.atan2(u[0], u[1])
    s = ossification(m, epi_times[0])
    f = fusion(m, epi_times[1])
    h_full = 0.14 * length if epi_len is None else epi_len
    gap = 0.5 * h_full * (1.0 - 0.55 * s) * (1.0 - f)
    slot = h_full + gap
    if epi_at == "base":
        shaft_a, shaft_b = start + u * slot, start + u * length
        epi_c = start + u * (h_full / 2)
        flare_c, end_c = shaft_a + u * r * 0.5, shaft_b - u * r * 0.45
    else:
        shaft_a, shaft_b = start, start + u * (length - slot)
        epi_c = start + u * (length - h_full / 2)
        flare_c, end_c = shaft_b - u * r * 0.5, shaft_a + u * r * 0.45
    bone = Bone(name)
    bone.parts.append(Capsule(tuple(shaft_a), tuple(shaft_b), r, cortex=0.28 + 0.12 * wf))
    bone.parts.append(Ellipse(tuple(flare_c), r * 1.35, r * 0.9, angle, 0.18))
    bone.parts.append(Ellipse(tuple(end_c), r * 1.3, r * 0.85, angle, 0.18))
    if s > 0:
        cap = r * 1.3
        across = cap * s
        along = min(h_full / 2 * (1.0 + 0.15 * f), max(across, 1e-4))
        bone.parts.append(Ellipse(tuple(epi_c), max(across, 1e-4), along, angle, 0.15))
    return bone, start + u * length, (s, f)


@dataclass
class HandModel:
    bones: list
    soft: list  # (Capsule | Ellipse) with thickness caps, rendered at low resolution
    truth: dict


def build_hand(boneage_months: float, male: bool, rng: np.random.Generator) -> HandModel:
    """The skeleton and soft tissue of one hand in the hand frame."""
    m = maturity_years(boneage_months, male)
    wf = 0.78 + 0.22 * (1.0 - math.exp(-m / 6.0))  # relative bone width
    # sexual dimorphism, as in real hands: boys' bones grow more robust from puberty on, and
    # the ring finger is relatively longer in boys, the index finger in girls (2D:4D ratio)
    if male:
        wf *= 1.0 + 0.10 * min(max((m - 9.0) / 7.0, 0.0), 1.0)
    digit = {2: 1.0 if male else 1.035, 4: 1.035 if male else 1.0}
    joint = 0.010 + 0.022 * math.exp(-m / 4.0)  # cartilage between bones
    spread = rng.uniform(0.2, 1.6)
    thumb_abduction = rng.uniform(-8.0, 10.0)
    bones, soft = [], []
    truth = {"maturity_years": m, "male": male, "spread": spread}

    n_carpals = 0
    for name, (c, (a1, a2), ang, onset) in CARPALS.items():
        s = ossification(m, onset, tau=3.5)
        if s <= 0:
            continue
        n_carpals += 1
        size = 0.15 + 0.85 * s
        rr = math.sqrt(a1 * a2)
        bones.append(Bone(name, [Ellipse(c, size * (rr + (a1 - rr) * s),
                                         size * (rr + (a2 - rr) * s),
                                         math.radians(ang), cortex=0.18)]))
    truth["n_carpals"] = n_carpals

    # Forearm: radius (thumb side) and ulna, distal epiphyses towards the carpals.
    for name, x, y0, rad, epi, h in (("radius", 0.045, 0.0, 0.030, EPI_RADIUS, 0.032),
                                     ("ulna", -0.068, -0.012, 0.020, EPI_ULNA, 0.026)):
        bone, _, (s, f) = _long_bone(name, (x, y0), (0.0, -1.0), 1.6, rad, "base", epi, m, wf,
                                     epi_len=h)
        # the radius' distal epiphysis and metaphysis are much wider than its shaft
        if name == "radius":
            for p in bone.parts[1:]:
                p.across *= 1.35
            flare = bone.parts[1]  # a gradual metaphyseal flare, not a knob
            bone.parts.append(Ellipse((flare.c[0], flare.c[1] - rad * 1.6), rad * wf * 1.2,
                                      rad * wf * 2.2, 0.0, 0.25))
        bones.append(bone)
        truth[f"{name}_epiphysis"] = round(s, 4)
        truth[f"{name}_fusion"] = round(f, 4)

    fusions = []
    for k, (base, mc_angle, lengths, radii) in RAYS.items():
        u_mc = _unit(mc_angle + (thumb_abduction if k == 1 else 0.0))
        epi_at = "base" if k == 1 else "head"
        mc, tip, _ = _long_bone(f"mc{k}", base, u_mc, lengths[0], radii[0], epi_at,
                                EPI_METACARPAL, m, wf)
        bones.append(mc)
        names = ["proximal", "distal"] if k == 1 else ["proximal", "middle", "distal"]
        angle = mc_angle + (thumb_abduction if k == 1 else 0.0) + spread * FINGER_SPREAD[k]
        pos = tip + joint * u_mc
        finger_path = [np.asarray(base, float), pos]
        for name, length, radius in zip(names, lengths[1:], radii[1:], strict=True):
            length *= digit.get(k, 1.0)
            angle += rng.normal(0.0, 2.0)  # slight flexion differences between joints
            u = _unit(angle)
            bone, end, (_, f) = _long_bone(f"{name}{k}", pos, u, length, radius, "base",
                                           EPI_PHALANX[name], m, wf)
            if name == "distal":  # the tuft
                bone.parts.append(Ellipse(tuple(end - u * radius * 0.5), radius * wf * 1.25,
                                          radius * wf * 0.7, math.atan2(u[0], u[1]), 0.25))
            bones.append(bone)
            fusions.append(f)
            pos = end + joint * u
            finger_path.append(end)
        # soft tissue of the finger: a pad around the phalanges, past the tip
        pad = (radii[1] * 2.1 + 0.004) * (1.0 + 0.25 * math.exp(-m / 5.0))
        tip_pt = finger_path[-1] + 0.025 * _unit(angle)
        soft.append(Capsule(tuple(finger_path[1]), tuple(tip_pt), pad, cortex=0.0))
        soft.append(Capsule(tuple(finger_path[0]), tuple(finger_path[1]), pad * 1.35, 0.0))
    truth["phalanx_fusion_mean"] = round(float(np.mean(fusions)), 4)
    truth["sesamoid"] = m > SESAMOID_ONSET
    if m > SESAMOID_ONSET:
        base, mc_angle, lengths, radii = RAYS[1]
        u = _unit(mc_angle + thumb_abduction)
        c = np.asarray(base) + u * (lengths[0] * 0.97) + np.array([-u[1], u[0]]) * 0.022
        s = ossification(m, SESAMOID_ONSET, 1.5)
        bones.append(Bone("sesamoid", [Ellipse(tuple(c), 0.010 * s + 0.003,
                                                0.010 * s + 0.003, 0.0, 0.3)]))

    # palm, thenar eminence, wrist and forearm
    soft.append(Ellipse((-0.01, 0.33), 0.15, 0.19, 0.0))
    soft.append(Capsule((0.10, 0.08), (0.17, 0.30), 0.065, 0.0))
    soft.append(Capsule((-0.012, 0.10), (-0.012, -0.1), 0.135, 0.0))
    soft.append(Capsule((-0.012, -0.1), (-0.02, -1.6), 0.14, 0.0))
    return HandModel(bones, soft, truth)


# --------------------------------------------------------------------------- rendering
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


def _scale_px(model: HandModel, nz: Nuisance, size: int) -> float:
    """Pixels per hand-frame unit: the hand grows with maturity, framing varies."""
    t = model.truth
    return size * nz.hand_fill * (0.48 + 0.20 * growth(t["maturity_years"], t["male"]))


def render(model: HandModel, nz: Nuisance, size: int, rng: np.random.Generator) -> np.ndarray:
    """The radiograph as uint8, size × size."""
    scale = _scale_px(model, nz, size)
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


def make_phantom(seed: int, index: int, size: int = 256, boneage: float | None = None,
                 male: bool | None = None):
    """Image (uint8 size×size), bone age (months), male, ground-truth record.

    `boneage`/`male` override the sampled label (the nuisance stays that of (seed, index))."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    drawn_age, drawn_male = sample_label(rng)
    boneage = drawn_age if boneage is None else float(boneage)
    male = drawn_male if male is None else bool(male)
    model = build_hand(boneage, male, rng)
    nz = sample_nuisance(rng)
    image = render(model, nz, size, rng)
    scale = _scale_px(model, nz, size)
    truth = {
        **model.truth,
        "rotation": nz.rotation,
        "wrist_x": nz.cx * size,
        "wrist_y": nz.cy * size,
        "scale_px": scale,
        "background": nz.background,
        "gamma": nz.gamma,
        "noise": nz.noise,
        "has_frame": nz.frame is not None,
    }
    return image, boneage, male, truth
