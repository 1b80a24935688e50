"""One frozen dataclass per config section: what a step receives.

The fields mirror `config.schema.yaml` key for key, with no defaults of their own: the schema is
the only place defaults live, and `latentage.config.build` fills them in, validates, and names
the bad key (tests/test_config.py walks the schema and checks every field, type and default).
Closed objects of the schema become nested dataclasses; per-resolution tables become dicts with
integer keys; arrays become tuples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RsnaSettings:
    images: str
    labels: str
    id_column: str | None
    age_column: str | None
    sex_column: str | None


@dataclass(frozen=True)
class PhantomSettings:
    n: int
    size: int
    ages: str


@dataclass(frozen=True)
class DataSettings:
    source: str
    rsna: RsnaSettings
    phantom: PhantomSettings
    max_res: int
    test_size: float
    min_image_size: int
    on_bad_image: str
    balance: str
    balance_max_weight: float


@dataclass(frozen=True)
class ScheduleSettings:
    lod_training_kimg: float
    lod_transition_kimg: float
    total_kimg: float
    minibatch_base: int
    minibatch: dict[int, int]
    max_minibatch_per_gpu: dict[int, int]
    lrate: float
    lrate_dict: dict[int, float]
    tick_kimg_base: float
    tick_kimg: dict[int, float]


@dataclass(frozen=True)
class AugmentSettings:
    enabled: bool
    target: float
    speed_kimg: float
    initial_p: float
    translate: float
    scale_std: float
    rotate: float
    brightness_std: float
    contrast_std: float


@dataclass(frozen=True)
class GanSettings:
    max_res: int | None
    latent_size: int
    fmap_base: int
    fmap_max: int
    mbstd_group_size: int
    normalize_latents: bool
    pixelnorm_epsilon: float
    schedule: ScheduleSettings
    minibatch_repeats: int
    wgan_lambda: float
    wgan_target: float
    drift: float
    adam_beta1: float
    adam_beta2: float
    adam_eps: float
    ema_beta: float
    snapshot_kimg: float
    checkpoint_kimg: float
    grid_size: int
    max_abs_loss: float
    max_restores: int
    fade_stretch: float
    precision: str
    channels_last: bool
    compile: bool
    augment: AugmentSettings
    conditional: bool


@dataclass(frozen=True)
class CnnAugmentSettings:
    rotate: float
    scale: float
    shift: float
    brightness: float
    contrast: float
    hflip: bool
    noise: float
    blur: float


@dataclass(frozen=True)
class SecondOpinionSettings:
    n: int
    backbone: str | None


@dataclass(frozen=True)
class CnnSettings:
    backbone: str
    pretrained: bool
    weights: str | None
    allow_download: bool
    input_size: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_schedule: str
    loss: str
    sex_weight: float
    val_fraction: float
    patience: int
    second_opinion: SecondOpinionSettings
    augment: CnnAugmentSettings
    precision: str


@dataclass(frozen=True)
class LatentSettings:
    n: int
    shards: int
    batch_size: int
    truncation: float | None


@dataclass(frozen=True)
class MetricCounts:
    fid: int
    is_: int
    ms_ssim: int
    swd: int
    domain_fd: int

    def __getitem__(self, name: str) -> int:
        return getattr(self, "is_" if name == "is" else name)


@dataclass(frozen=True)
class NeighbourSettings:
    queries: int
    k: int
    res: int | None


@dataclass(frozen=True)
class MetricsSettings:
    enabled: tuple[str, ...]
    n: MetricCounts
    is_splits: int
    batch_size: int
    inception_weights: str | None
    allow_download: bool
    missing_weights: str
    nearest_neighbours: NeighbourSettings


@dataclass(frozen=True)
class LassoSettings:
    folds: int
    holdout: float
    n_alphas: int
    max_iter: int


@dataclass(frozen=True)
class AgeWalkSettings:
    start_age: tuple[float, ...] | None
    end_age: float | None
    step: float | None
    tolerance: float | None
    frames: int
    interpolation: str
    loess_frac: float
    fps: int


@dataclass(frozen=True)
class AxesSettings:
    ortho_lambda: float
    holdout: float
    edit_n: int
    edit_age_months: float
    edit_sex_logit: float


@dataclass(frozen=True)
class AtlasSettings:
    ages: tuple[float, ...] | None
    sexes: tuple[str, ...] | None
    per_age: int
    steps: int
    tolerance: float


@dataclass(frozen=True)
class ConditionalSettings:
    enabled: bool
    ages: tuple[float, ...]
    per_request: int
    steps: int
    tolerance: float


@dataclass(frozen=True)
class AnalysisSettings:
    batch_size: int
    lasso: LassoSettings
    age_walk: AgeWalkSettings
    axes: AxesSettings
    atlas: AtlasSettings
    conditional: ConditionalSettings


# config section (dotted path in the schema) → its dataclass
SECTIONS = {
    "data": DataSettings,
    "data.rsna": RsnaSettings,
    "data.phantom": PhantomSettings,
    "gan": GanSettings,
    "gan.schedule": ScheduleSettings,
    "gan.augment": AugmentSettings,
    "cnn": CnnSettings,
    "cnn.augment": CnnAugmentSettings,
    "cnn.second_opinion": SecondOpinionSettings,
    "latent": LatentSettings,
    "metrics": MetricsSettings,
    "metrics.n": MetricCounts,
    "metrics.nearest_neighbours": NeighbourSettings,
    "analysis": AnalysisSettings,
    "analysis.lasso": LassoSettings,
    "analysis.age_walk": AgeWalkSettings,
    "analysis.axes": AxesSettings,
    "analysis.atlas": AtlasSettings,
    "analysis.conditional": ConditionalSettings,
}
