"""The phantom hand's anatomy: a small model of a left hand seen PA whose maturity follows a
Greulich–Pyle-like timeline (../shared/notes/hand-radiographs.md).

Carpal centres appear one by one, epiphyses appear as dots, widen into caps and fuse with their
shafts in puberty; bones lengthen and thicken. Girls mature about 15 % earlier at every
milestone; boys' bones grow more robust from puberty and their ring finger is relatively
longer (2D:4D), so sex — needed to turn maturity into bone age — can be seen.

Geometry lives in a *hand frame*: unit = adult hand length (wrist to middle fingertip), origin
at the wrist centre, +y towards the fingers, +x towards the thumb. `radiograph.py` projects it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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
AGE_MIXES = ("rsna", "uniform")


def sample_label(rng: np.random.Generator, ages: str = "rsna") -> tuple[float, bool]:
    """Bone age (months) and sex drawn like the RSNA training labels (`ages` "rsna": 72 % of
    them 8–14 years), or with every year of bone age 0–19 equally likely ("uniform"). Both
    draw the same numbers from `rng`, so the rest of a phantom (anatomy, exposure) is the same
    random stream either way."""
    if ages not in AGE_MIXES:
        raise ValueError(f"unknown phantom age mix {ages!r} ({', '.join(AGE_MIXES)})")
    male = bool(rng.random() < MALE_FRACTION)
    weights = RSNA_YEAR_COUNTS if ages == "rsna" else np.ones_like(RSNA_YEAR_COUNTS)
    year = rng.choice(len(weights), p=weights / weights.sum())
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


def _carpals(m: float, bones: list) -> int:
    """The ossified carpals at maturity m; returns how many there are."""
    n = 0
    for name, (c, (a1, a2), ang, onset) in CARPALS.items():
        s = ossification(m, onset, tau=3.5)
        if s <= 0:
            continue
        n += 1
        size = 0.15 + 0.85 * s
        rr = math.sqrt(a1 * a2)
        bones.append(Bone(name, [Ellipse(c, size * (rr + (a1 - rr) * s),
                                         size * (rr + (a2 - rr) * s),
                                         math.radians(ang), cortex=0.18)]))
    return n


def _forearm(m: float, wf: float, bones: list, truth: dict) -> None:
    """Radius (thumb side) and ulna, distal epiphyses towards the carpals."""
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


def _ray(k: int, m: float, wf: float, pose: dict, rng, bones: list, soft: list) -> list:
    """Metacarpal and phalanges of ray k (1 = thumb) and the finger's soft tissue; returns the
    phalanges' fusion states."""
    base, mc_angle, lengths, radii = RAYS[k]
    abduction = pose["thumb_abduction"] if k == 1 else 0.0
    u_mc = _unit(mc_angle + abduction)
    mc, tip, _ = _long_bone(f"mc{k}", base, u_mc, lengths[0], radii[0],
                            "base" if k == 1 else "head", EPI_METACARPAL, m, wf)
    bones.append(mc)
    names = ["proximal", "distal"] if k == 1 else ["proximal", "middle", "distal"]
    angle = mc_angle + abduction + pose["spread"] * FINGER_SPREAD[k]
    pos = tip + pose["joint"] * u_mc
    path, fusions = [np.asarray(base, float), pos], []
    for name, length, radius in zip(names, lengths[1:], radii[1:], strict=True):
        length *= pose["digit"].get(k, 1.0)
        angle += rng.normal(0.0, 2.0)  # slight flexion differences between joints
        u = _unit(angle)
        bone, end, (_, f) = _long_bone(f"{name}{k}", pos, u, length, radius, "base",
                                       EPI_PHALANX[name], m, wf)
        if name == "distal":  # the tuft
            bone.parts.append(Ellipse(tuple(end - u * radius * 0.5), radius * wf * 1.25,
                                      radius * wf * 0.7, math.atan2(u[0], u[1]), 0.25))
        bones.append(bone)
        fusions.append(f)
        pos = end + pose["joint"] * u
        path.append(end)
    # soft tissue of the finger: a pad around the phalanges, past the tip
    pad = (radii[1] * 2.1 + 0.004) * (1.0 + 0.25 * math.exp(-m / 5.0))
    tip_pt = path[-1] + 0.025 * _unit(angle)
    soft.append(Capsule(tuple(path[1]), tuple(tip_pt), pad, cortex=0.0))
    soft.append(Capsule(tuple(path[0]), tuple(path[1]), pad * 1.35, 0.0))
    return fusions


def _sesamoid(m: float, thumb_abduction: float, bones: list) -> None:
    base, mc_angle, lengths, _ = RAYS[1]
    u = _unit(mc_angle + thumb_abduction)
    c = np.asarray(base) + u * (lengths[0] * 0.97) + np.array([-u[1], u[0]]) * 0.022
    s = ossification(m, SESAMOID_ONSET, 1.5)
    bones.append(Bone("sesamoid", [Ellipse(tuple(c), 0.010 * s + 0.003,
                                            0.010 * s + 0.003, 0.0, 0.3)]))


def build_hand(boneage_months: float, male: bool, rng: np.random.Generator) -> HandModel:
    """The skeleton and soft tissue of one hand in the hand frame."""
    m = maturity_years(boneage_months, male)
    wf = 0.78 + 0.22 * (1.0 - math.exp(-m / 6.0))  # relative bone width
    # sexual dimorphism, as in real hands: boys' bones grow more robust from puberty on, and
    # the ring finger is relatively longer in boys, the index finger in girls (2D:4D ratio)
    if male:
        wf *= 1.0 + 0.10 * min(max((m - 9.0) / 7.0, 0.0), 1.0)
    pose = {"digit": {2: 1.0 if male else 1.035, 4: 1.035 if male else 1.0},
            "joint": 0.010 + 0.022 * math.exp(-m / 4.0),  # cartilage between bones
            "spread": rng.uniform(0.2, 1.6), "thumb_abduction": rng.uniform(-8.0, 10.0)}
    bones, soft = [], []
    truth = {"maturity_years": m, "male": male, "spread": pose["spread"]}
    truth["n_carpals"] = _carpals(m, bones)
    _forearm(m, wf, bones, truth)
    fusions = [f for k in RAYS for f in _ray(k, m, wf, pose, rng, bones, soft)]
    truth["phalanx_fusion_mean"] = round(float(np.mean(fusions)), 4)
    truth["sesamoid"] = m > SESAMOID_ONSET
    if m > SESAMOID_ONSET:
        _sesamoid(m, pose["thumb_abduction"], bones)
    # palm, thenar eminence, wrist and forearm
    soft.append(Ellipse((-0.01, 0.33), 0.15, 0.19, 0.0))
    soft.append(Capsule((0.10, 0.08), (0.17, 0.30), 0.065, 0.0))
    soft.append(Capsule((-0.012, 0.10), (-0.012, -0.1), 0.135, 0.0))
    soft.append(Capsule((-0.012, -0.1), (-0.02, -1.6), 0.14, 0.0))
    return HandModel(bones, soft, truth)
