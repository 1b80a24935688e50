"""The settings contract, from config.yaml to the step.

`config.schema.yaml` (beside this module) is the only place defaults live. One function,
`build(section, raw)`, turns a config section into its frozen dataclass (latentage.settings):
it fills the schema's defaults, validates, and names the bad key (``config key gan.foo: …``).
The workflow validates the whole config at parse time with `validate_config` and
`check_config`; each rule then passes its section to its step as JSON (`step_settings`), split
into the keys that change a result (rule params: editing one reruns the rule) and the keys that
only change speed (threads, precision, checkpoint cadence: editing one reruns nothing). A step
run by hand takes the same JSON, or none for the defaults.

The helpers the Snakefile layer needs (the resolution list, the resolutions the CNN and the
nearest-neighbour check read, the snapshot names, the package-version check) live here, once.
"""

from __future__ import annotations

import copy
import functools
import json
import keyword
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from latentage import settings as S
from latentage.errors import ConfigError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

# Keys that change only speed or bookkeeping, never a result: kept out of the rules' params, so
# editing them reruns nothing. Everything else in a section changes what its rule writes.
RUNTIME_KEYS = {
    # precision and per-GPU caps change rounding, not the model (the global minibatch is kept
    # by gradient accumulation); the guard's policy and the cadence of progress files and grids
    # change no weights (a fade the guard stretched is recorded in the checkpoint)
    "gan": {"checkpoint_kimg", "precision", "channels_last", "compile", "grid_size",
            "max_abs_loss", "max_restores", "fade_stretch", "schedule.max_minibatch_per_gpu"},
    "cnn": {"precision", "allow_download"},
    "latent": {"batch_size"},
    "metrics": {"batch_size", "allow_download"},
    "analysis": {"batch_size"},
}

# Sub-sections (and keys) that rules of their own read: left out of their parent section's
# JSON, so editing them reruns only those rules. data.balance*: the training samplers'
# (balance_flags: train_phase, train_cnn), not prepare's.
OWN_RULES = {
    "data": ("balance", "balance_max_weight"),
    "cnn": ("second_opinion",),
    "metrics": ("nearest_neighbours",),
    "analysis": ("lasso", "age_walk", "axes", "atlas", "conditional"),
}


# ------------------------------------------------------------------------------- the schema
@functools.cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def subschema(section: str) -> dict:
    node = schema()
    for part in section.split("."):
        try:
            node = node["properties"][part]
        except KeyError:
            raise ConfigError(f"no config section {section!r}") from None
    return node


def _key(prefix: str, path) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in path]
    return ".".join(parts) or "(top level)"


def _describe(error, prefix: str = "") -> str:
    where = _key(prefix, error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"{where}.{k}" if where != "(top level)" else k for k in extra)
        return f"unknown config key {keys} (allowed under {where}: {', '.join(allowed)})"
    return f"config key {where}: {error.message}"


def _validate(instance, node: dict, prefix: str) -> None:
    errors = sorted(Draft202012Validator(node).iter_errors(instance),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [_describe(e, prefix) for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ConfigError("invalid config: " + "; ".join(lines) + more)


def validate_config(config: dict) -> None:
    """Check a whole config against the schema; the first problems name their keys."""
    _validate(config, schema(), "")


def with_defaults(node: dict, value):
    """`value` with the schema's defaults filled in wherever a key is missing (recursively, as
    Snakemake's validate(set_default=True) does)."""
    if node.get("type") == "object" and isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, sub in node["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = with_defaults(sub, out[key])
        return out
    return value


# ------------------------------------------------------------------------------- sections
def _field_key(name: str) -> str:
    """Dataclass field → schema key (fields of Python keywords carry a trailing underscore)."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def _convert(tp, value, where: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, where)
    if is_dataclass(tp):
        return _to_dataclass(tp, value, where)
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        return {key_t(k): _convert(val_t, v, where) for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(tp)
        inner = args[0]
        return tuple(_convert(inner, v, where) for v in value)
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    return value


def _to_dataclass(cls, values: dict, where: str):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        key = _field_key(f.name)
        if key not in values:
            raise ConfigError(f"config key {where}.{key} is missing (and has no default)")
        kwargs[f.name] = _convert(hints[f.name], values[key], f"{where}.{key}")
    return cls(**kwargs)


def build(section: str, raw: dict | None = None):
    """The frozen settings of `section` (e.g. "gan", "analysis.lasso") from `raw`: schema
    defaults filled in, validated, bad keys named."""
    cls = S.SECTIONS.get(section)
    if cls is None:
        raise ConfigError(f"no settings class for config section {section!r}")
    node = subschema(section)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config key {section}: expected a mapping, got {type(raw).__name__}")
    values = with_defaults(node, dict(raw or {}))
    _validate(values, node, section)
    return _to_dataclass(cls, values, section)


def from_json(section: str, *texts: str):
    """`build` from one or more JSON objects, merged left to right (the step CLIs' --settings)."""
    raw: dict = {}
    for text in texts:
        try:
            part = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--settings for {section}: not JSON ({exc})") from None
        if not isinstance(part, dict):
            raise ConfigError(f"--settings for {section}: expected a JSON object")
        raw = _merge(raw, part)
    return build(section, raw)


def add_balance_arguments(p) -> None:
    """data.balance and data.balance_max_weight, for the training samplers (train-phase,
    train-cnn); the rules pass them with `balance_flags`."""
    p.add_argument("--balance", choices=("none", "age"), default="none",
                   help="data.balance: none, or age (inverse yearly-bin frequency weights)")
    p.add_argument("--balance-max-weight", type=float, default=5.0,
                   help="data.balance_max_weight")


def balance_flags(config: dict) -> str:
    """The training samplers' flags for the config's data.balance keys."""
    data = config["data"]  # validated: the schema's defaults are filled in
    return f"--balance {data['balance']} --balance-max-weight {data['balance_max_weight']}"


def add_settings_argument(parser, section: str) -> None:
    """`--settings JSON [JSON ...]`: the step's config section (merged left to right)."""
    parser.add_argument(
        "--settings", nargs="+", default=["{}"], metavar="JSON",
        help=f"the config's {section} section as JSON, in one or more parts merged left to right "
             f"(the workflow passes the keys that change results, then the speed-only keys); "
             f"missing keys take the schema's defaults")


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def as_dict(obj) -> dict:
    """Settings back to the schema's plain form (JSON-ready)."""
    if is_dataclass(obj):
        return {_field_key(f.name): as_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [as_dict(v) for v in obj]
    return obj


def _split(section: str, values: dict) -> tuple[dict, dict]:
    runtime = RUNTIME_KEYS.get(section.split(".")[0], set())
    result, speed = {}, {}
    for key, value in values.items():
        nested = {k.split(".", 1)[1] for k in runtime if k.startswith(f"{key}.")}
        if key in runtime:
            speed[key] = value
        elif nested and isinstance(value, dict):
            result[key] = {k: v for k, v in value.items() if k not in nested}
            speed[key] = {k: v for k, v in value.items() if k in nested}
        else:
            result[key] = value
    return result, speed


def step_settings(config: dict, section: str) -> tuple[str, str]:
    """A section as its rule passes it: (keys that change results, speed-only keys), each as
    JSON with sorted keys. The first goes in the rule's params, the second only in the shell."""
    values = copy.deepcopy(_lookup(config, section))
    for sub in OWN_RULES.get(section, ()):
        values.pop(sub, None)
    if section == "gan":
        values["max_res"] = gan_max_res(config)
    if section == "metrics.nearest_neighbours":
        values["res"] = nn_resolution(config)
    result, speed = _split(section, values)
    return (json.dumps(result, sort_keys=True, default=str),
            json.dumps(speed, sort_keys=True, default=str))


def conditional_gan_settings(config: dict) -> str:
    """The conditional GAN of the comparison (analysis.conditional): the main GAN's result keys
    with gan.conditional true (JSON for the params of its phases)."""
    result = json.loads(step_settings(config, "gan")[0])
    result["conditional"] = True
    return json.dumps(result, sort_keys=True)


def phase_settings(result: str, speed: str, res: int, max_res: int) -> tuple[str, str]:
    """A growth phase's (params, speed) JSON from its GAN's: a phase below max_res gets
    schedule.total_kimg with the speed-only keys, so that editing it (to train longer or
    shorter) reruns the last phase only — where the others end does not depend on it (and
    settings_digest leaves it out, so their checkpoints still seed the last phase)."""
    if res >= max_res:
        return result, speed
    result, speed = json.loads(result), json.loads(speed)
    total = result["schedule"].pop("total_kimg")
    speed.setdefault("schedule", {})["total_kimg"] = total
    return json.dumps(result), json.dumps(speed)  # in step_settings' (sorted) order


def second_cnn_settings(config: dict) -> str:
    """The second-opinion CNN's settings: the first CNN's result keys with its own backbone
    (JSON for its rule's params)."""
    result = json.loads(step_settings(config, "cnn")[0])
    backbone = config["cnn"]["second_opinion"]["backbone"]
    if backbone:
        result["backbone"] = backbone
    return json.dumps(result, sort_keys=True)


def second_cnn_seed(config: dict) -> int:
    """The second CNN's base seed: its own stream of the config's seed, so each of its draws
    (validation split, initialisation, order, augmentation) differs from the first CNN's."""
    from latentage import seeds

    return seeds.integer(config["seed"], "cnn.second_opinion")


def result_digest(settings, section: str) -> str:
    """Hash of the keys of `settings` that change results (e.g. stored in checkpoints)."""
    import hashlib

    result, _ = _split(section, as_dict(settings))
    return hashlib.sha256(json.dumps(result, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _lookup(config: dict, section: str):
    node = config
    for part in section.split("."):
        node = node[part]
    return node


# ------------------------------------------------------------------------------- derived values
def resolutions(max_res: int) -> list[int]:
    """Every power of two from 4 to max_res: the prepared pyramid and the growth phases."""
    if max_res < 4 or max_res & (max_res - 1):
        raise ConfigError(f"resolution {max_res} is not a power of two ≥ 4")
    return [2**k for k in range(2, max_res.bit_length())]


def gan_max_res(config: dict) -> int:
    return config["gan"]["max_res"] or config["data"]["max_res"]


def cnn_resolution(config: dict) -> int:
    """The prepared resolution the CNN reads: the smallest at least as large as its input, or
    the largest there is."""
    prepared = resolutions(config["data"]["max_res"])
    size = config["cnn"]["input_size"]
    return min([r for r in prepared if r >= size] or [prepared[-1]])


def nn_resolution(config: dict) -> int:
    """Resolution of the pixel nearest-neighbour search: the configured one, else the GAN's
    final resolution capped at 256 (beyond that, pixel distances say little more)."""
    return config["metrics"]["nearest_neighbours"]["res"] or min(gan_max_res(config), 256)


def snapshot_resolutions(config: dict) -> dict[str, int]:
    """Snapshot name → resolution of the growth phase that writes it, in training order."""
    from latentage.gan.schedule import Schedule, snapshot_name

    gan = build("gan", {**config["gan"], "max_res": gan_max_res(config)})
    sched = Schedule.from_settings(gan)
    return {snapshot_name(k): r for r in resolutions(gan.max_res)
            for k in sched.snapshot_kimgs(r, gan.snapshot_kimg)}


def check_package_version(minimum: str) -> None:
    """Stop with an actionable message when the installed package is older than the workflow."""
    from packaging.version import Version

    from latentage import __version__

    if Version(__version__) < Version(minimum):
        raise ConfigError(f"this workflow needs latentage >= {minimum}, found {__version__}; run "
                          f"`make install` (or pip install -e .)")


# ------------------------------------------------------------------------------- semantic checks
def check_config(config: dict) -> None:
    """The checks a schema cannot express; `config` has its defaults filled in."""
    data = config["data"]
    if data["source"] == "phantom":
        size = data["phantom"]["size"]
        if size < data["max_res"]:
            raise ConfigError(f"config key data.phantom.size ({size}) is below data.max_res "
                              f"({data['max_res']}): phantoms would be upsampled")
        if size < data["min_image_size"]:
            raise ConfigError(f"config key data.phantom.size ({size}) is below "
                              f"data.min_image_size ({data['min_image_size']}): every phantom "
                              f"would be rejected")
    test_size = data["test_size"]
    if test_size >= 1 and test_size != int(test_size):
        raise ConfigError(f"config key data.test_size ({test_size}) must be a whole count "
                          f"(>= 1) or a fraction (< 1)")
    second = config.get("cnn", {}).get("second_opinion", {}).get("n", 0)
    if second and "latent" in config and second > config["latent"]["n"]:
        raise ConfigError(f"config key cnn.second_opinion.n ({second}) exceeds latent.n "
                          f"({config['latent']['n']}): the second CNN reads labelled latents")
    if "gan" in config:
        _check_gan(config)
        if "metrics" in config:
            _check_metrics(config)
    _check_conditional(config)


def _check_conditional(config: dict) -> None:
    compare = config.get("analysis", {}).get("conditional", {})
    if not compare.get("enabled"):
        return
    if config.get("gan", {}).get("conditional"):
        raise ConfigError("config key analysis.conditional.enabled: the comparison steers the "
                          "main, unconditional GAN and trains a conditional one beside it; set "
                          "gan.conditional: false")
    enabled = config.get("metrics", {}).get("enabled", ())
    if "domain_fd" not in enabled:
        raise ConfigError("config key analysis.conditional.enabled: the comparison reports the "
                          "domain FD; add domain_fd to metrics.enabled")


def _check_gan(config: dict) -> None:
    from latentage.gan.schedule import Schedule

    res = gan_max_res(config)
    if res > config["data"]["max_res"]:
        raise ConfigError(f"config key gan.max_res ({res}) is above data.max_res "
                          f"({config['data']['max_res']}): no prepared images at that size")
    gan = build("gan", {**config["gan"], "max_res": res})
    sched = Schedule.from_settings(gan)
    try:
        sched.validate()
    except ValueError as exc:
        raise ConfigError(f"config key gan.schedule.total_kimg: {exc}") from None
    for key in ("snapshot_kimg", "checkpoint_kimg"):
        if getattr(gan, key) > gan.schedule.total_kimg:
            raise ConfigError(f"config key gan.{key} ({getattr(gan, key)}) exceeds "
                              f"gan.schedule.total_kimg")


def _check_metrics(config: dict) -> None:
    metrics = config["metrics"]
    res = metrics["nearest_neighbours"]["res"]
    top = gan_max_res(config)
    if res is not None and (res > top or res & (res - 1) or res < 4):
        raise ConfigError(f"config key metrics.nearest_neighbours.res ({res}) must be a power of "
                          f"two from 4 to the GAN's final resolution {top}")
    if metrics["batch_size"] % 2:
        raise ConfigError(f"config key metrics.batch_size ({metrics['batch_size']}) must be even "
                          f"(MS-SSIM compares consecutive pairs)")
