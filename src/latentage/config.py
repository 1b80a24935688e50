"""Config validation whose messages name the key at fault.

`validate_config` checks a config against workflow/schemas/config.schema.yaml (JSON Schema
draft 2020-12) and reports the first problems as ``config key data.max_res: …``; Snakemake's
own `validate` then fills in defaults. `check_config` adds the checks a schema cannot express.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from latentage.errors import ConfigError


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = _key(error.absolute_path)
        keys = ", ".join(f"{where}.{k}" if error.absolute_path else k for k in extra)
        return f"unknown config key {keys} (allowed under {where}: {', '.join(allowed)})"
    return f"config key {_key(error.absolute_path)}: {error.message}"


def validate_config(config: dict, schema_path) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [_describe(e) for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ConfigError("invalid config: " + "; ".join(lines) + more)


def check_config(config: dict) -> None:
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
    if "gan" in config:
        check_gan(config)
    if "metrics" in config and "gan" in config:
        check_metrics(config)


def gan_max_res(config: dict) -> int:
    return config["gan"]["max_res"] or config["data"]["max_res"]


def gan_settings(config: dict) -> dict:
    """The gan section as the train-phase step takes it (max_res resolved)."""
    settings = dict(config["gan"])
    settings["max_res"] = gan_max_res(config)
    return settings


def snapshot_resolutions(config: dict) -> dict[str, int]:
    """Snapshot name → resolution of the growth phase that writes it, in training order."""
    from latentage.gan.schedule import Schedule, snapshot_name

    res = gan_max_res(config)
    sched = Schedule(res, **config["gan"]["schedule"])
    every = config["gan"]["snapshot_kimg"]
    return {snapshot_name(k): r for r in (2**i for i in range(2, res.bit_length()))
            for k in sched.snapshot_kimgs(r, every)}


def metric_settings(config: dict) -> dict:
    """What the metric jobs read (the nearest-neighbour knobs do not rerun them)."""
    return {k: v for k, v in config["metrics"].items() if k != "nearest_neighbours"}


def check_metrics(config: dict) -> None:
    metrics = config["metrics"]
    res = metrics["nearest_neighbours"]["res"]
    if res is not None and (res > gan_max_res(config) or res & (res - 1) or res < 4):
        raise ConfigError(f"config key metrics.nearest_neighbours.res ({res}) must be a power of "
                          f"two from 4 to the GAN's final resolution {gan_max_res(config)}")
    if metrics["batch_size"] % 2:
        raise ConfigError(f"config key metrics.batch_size ({metrics['batch_size']}) must be even "
                          f"(MS-SSIM compares consecutive pairs)")


def check_gan(config: dict) -> None:
    from latentage.gan.schedule import Schedule

    gan = config["gan"]
    res = gan_max_res(config)
    if res > config["data"]["max_res"]:
        raise ConfigError(f"config key gan.max_res ({res}) is above data.max_res "
                          f"({config['data']['max_res']}): no prepared images at that size")
    sched = Schedule(res, **gan["schedule"])
    try:
        sched.validate()
    except ValueError as exc:
        raise ConfigError(f"config key gan.schedule.total_kimg: {exc}") from None
    for key in ("snapshot_kimg", "checkpoint_kimg"):
        if gan[key] > gan["schedule"]["total_kimg"]:
            raise ConfigError(f"config key gan.{key} ({gan[key]}) exceeds "
                              f"gan.schedule.total_kimg")
