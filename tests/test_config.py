"""The settings contract: the schema describes every key and holds every default; each section's
dataclass mirrors it; wrong keys or types fail naming the key; the workflow helpers."""

import copy
import json
import types
import typing
from dataclasses import fields, is_dataclass

import pytest
import yaml

from latentage import config as lc
from latentage import settings as S
from latentage.errors import ConfigError


@pytest.fixture
def full(repo):
    return yaml.safe_load((repo / "config.yaml").read_text())


def _walk(schema, path=""):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}" if path else key)


def test_every_key_has_type_description_and_default():
    for path, node in _walk(lc.schema()):
        if not path:
            continue
        assert "description" in node, path
        assert "default" in node, path
        assert "type" in node or "enum" in node, path
        if node.get("type") == "object":
            # closed records, or maps whose values are typed (e.g. per-resolution tables)
            extra = node.get("additionalProperties")
            assert extra is False or (isinstance(extra, dict) and "propertyNames" in node), path


SCHEMA_TYPES = {int: {"integer"}, float: {"number"}, bool: {"boolean"}, str: {"string"},
                dict: {"object"}, tuple: {"array"}}


def _schema_types(node) -> set:
    t = node.get("type")
    if t is None and "enum" in node:  # an enum of strings
        return {"string"} | ({"null"} if None in node["enum"] else set())
    return set(t) if isinstance(t, list) else {t}


def _python_types(tp) -> set:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_python_types(a) for a in typing.get_args(tp)))
    if tp is type(None):
        return {"null"}
    if is_dataclass(tp):
        return {"object"}
    return SCHEMA_TYPES[origin or tp]


@pytest.mark.parametrize("section", sorted(S.SECTIONS))
def test_each_dataclass_mirrors_its_schema_section(section):
    """Field for field: the same keys, compatible types, and `build` of an empty section gives
    exactly the schema's defaults (so the schema is the only place they live)."""
    cls, node = S.SECTIONS[section], lc.subschema(section)
    hints = typing.get_type_hints(cls)
    keys = {lc._field_key(f.name) for f in fields(cls)}
    assert keys == set(node["properties"]), section
    built = lc.build(section, {})
    for f in fields(cls):
        key = lc._field_key(f.name)
        prop = node["properties"][key]
        assert _schema_types(prop) == _python_types(hints[f.name]), f"{section}.{key}"
        value = lc.as_dict(getattr(built, f.name))
        default = lc.with_defaults(prop, copy.deepcopy(prop["default"]))
        if isinstance(default, dict) and prop.get("additionalProperties") is not False:
            default = {int(k) if str(k).isdigit() else k: v for k, v in default.items()}
        assert value == default, f"{section}.{key}: {value!r} != schema default {default!r}"


def test_every_section_of_the_schema_has_a_dataclass():
    for path, node in _walk(lc.schema()):
        if path and node.get("type") == "object" and node.get("additionalProperties") is False:
            assert path in S.SECTIONS, path


def test_settings_are_frozen():
    gan = lc.build("gan", {})
    with pytest.raises(AttributeError):
        gan.latent_size = 3


@pytest.mark.parametrize("section, raw, message", [
    ("gan", {"latent_sise": 3}, r"unknown config key gan\.latent_sise"),
    ("gan", {"schedule": {"lrate": "fast"}}, r"config key gan\.schedule\.lrate: 'fast' is not"),
    ("cnn", {"augment": {"hflip": 1}}, r"config key cnn\.augment\.hflip: 1 is not of type"),
    ("analysis.lasso", {"folds": 1}, r"config key analysis\.lasso\.folds: 1 is less than"),
    ("metrics", {"enabled": ["kid"]}, r"config key metrics\.enabled\.0: 'kid' is not one of"),
])
def test_build_names_the_bad_key(section, raw, message):
    with pytest.raises(ConfigError, match=message):
        lc.build(section, raw)


def test_from_json_merges_parts_and_names_bad_json():
    gan = lc.from_json("gan", json.dumps({"latent_size": 7, "schedule": {"lrate": 0.5}}),
                       json.dumps({"precision": "fp32", "schedule": {"total_kimg": 9.0}}))
    assert (gan.latent_size, gan.precision) == (7, "fp32")
    assert gan.schedule.lrate == 0.5 and gan.schedule.total_kimg == 9.0
    assert gan.schedule.minibatch[1024] == 16  # a per-resolution table with integer keys
    with pytest.raises(ConfigError, match="--settings for gan: not JSON"):
        lc.from_json("gan", "{latent")


def test_full_and_mini_configs_are_valid(repo, full):
    lc.validate_config(full)
    mini = yaml.safe_load((repo / "tests/mini/config.yaml").read_text())
    lc.validate_config(mini)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["data"].__setitem__("max_res", "big"), r"config key data\.max_res: 'big' is not of type"),
    (lambda c: c["data"].__setitem__("max_res", 100), r"config key data\.max_res: 100 is not one of"),
    (lambda c: c["data"].__setitem__("sourcee", "phantom"), r"unknown config key data\.sourcee"),
    (lambda c: c.__setitem__("seed", -1), r"config key seed: -1 is less than the minimum"),
    (lambda c: c["data"].__setitem__("on_bad_image", "ignore"), r"config key data\.on_bad_image"),
    (lambda c: c["data"]["phantom"].__setitem__("n", 1.5), r"config key data\.phantom\.n"),
    (lambda c: c.pop("seed"), r"'seed' is a required property"),
])
def test_wrong_key_or_type_names_the_key(full, edit, message):
    config = copy.deepcopy(full)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        lc.validate_config(config)


def _filled(config):
    return lc.with_defaults(lc.schema(), copy.deepcopy(config))


def test_semantic_checks_name_the_key(full):
    config = _filled(full)
    config["data"].update(source="phantom", max_res=256)
    config["data"]["phantom"]["size"] = 128
    with pytest.raises(ConfigError, match=r"data\.phantom\.size \(128\) is below data\.max_res"):
        lc.check_config(config)
    config["data"]["phantom"]["size"] = 256
    config["data"]["test_size"] = 12.5
    with pytest.raises(ConfigError, match=r"data\.test_size"):
        lc.check_config(config)


def test_resolutions_and_the_resolutions_the_steps_read(full):
    assert lc.resolutions(4) == [4]
    assert lc.resolutions(64) == [4, 8, 16, 32, 64]
    with pytest.raises(ConfigError, match="not a power of two"):
        lc.resolutions(48)
    config = _filled(full)
    assert lc.gan_max_res(config) == 1024
    assert lc.cnn_resolution(config) == 512  # the smallest prepared side ≥ 299
    config["cnn"]["input_size"] = 2048
    assert lc.cnn_resolution(config) == 1024  # nothing that large: the largest there is
    assert lc.nn_resolution(config) == 256  # as configured
    config["metrics"]["nearest_neighbours"]["res"] = None
    assert lc.nn_resolution(config) == 256  # derived: the GAN's, at most 256
    config["data"]["max_res"] = 128
    assert lc.nn_resolution(config) == 128  # a 128² run no longer stops at parse time
    lc.check_config(config)


def test_snapshot_names_come_from_the_schedule(full):
    snaps = lc.snapshot_resolutions(_filled(full))
    assert len(snaps) == 50 and list(snaps)[:2] == ["000240", "000480"]
    assert snaps["000480"] == 4 and snaps["000720"] == 8 and snaps["012000"] == 1024


def test_step_settings_split_result_keys_from_speed_keys(full):
    config = _filled(full)
    result, speed = (json.loads(p) for p in lc.step_settings(config, "gan"))
    assert result["max_res"] == 1024 and "precision" not in result
    assert "max_minibatch_per_gpu" not in result["schedule"]
    assert speed["precision"] == "auto" and speed["schedule"] == {
        "max_minibatch_per_gpu": {"512": 16, "1024": 8}}
    merged = lc.from_json("gan", *lc.step_settings(config, "gan"))
    assert merged == lc.build("gan", {**config["gan"], "max_res": 1024})
    result, _ = (json.loads(p) for p in lc.step_settings(config, "metrics"))
    assert "nearest_neighbours" not in result  # its own rule reads it
    result, _ = (json.loads(p) for p in lc.step_settings(config, "metrics.nearest_neighbours"))
    assert result["res"] == 256
    # data.balance reaches the training samplers (balance_flags), so editing it does not
    # rerun prepare
    result, _ = (json.loads(p) for p in lc.step_settings(config, "data"))
    assert "balance" not in result and "balance_max_weight" not in result
    assert lc.balance_flags(config) == "--balance none --balance-max-weight 5"
    result, _ = (json.loads(p) for p in lc.step_settings(config, "analysis.conditional"))
    assert result["enabled"] is False and len(result["ages"]) == 17


def test_only_the_last_growth_phase_carries_total_kimg(full):
    """Where a phase below the last ends does not depend on gan.schedule.total_kimg, so it
    travels with the speed-only keys there (editing it reruns the last phase only); merged,
    every phase still reads the whole settings."""
    config = _filled(full)
    whole = lc.build("gan", {**config["gan"], "max_res": 1024})
    for res in (4, 8, 512, 1024):
        params, speed = lc.phase_settings(*lc.step_settings(config, "gan"), res, 1024)
        assert ("total_kimg" in json.loads(params)["schedule"]) == (res == 1024)
        # (the schema's default is also 12000: the key itself must travel with the speed keys)
        assert json.loads(speed)["schedule"].get("total_kimg") == (None if res == 1024 else 12000)
        assert lc.from_json("gan", params, speed) == whole
    longer = _filled({**full, "gan": {**full["gan"], "schedule": {
        **full["gan"]["schedule"], "total_kimg": 15000}}})
    for res in (4, 512, 1024):
        a = lc.phase_settings(*lc.step_settings(config, "gan"), res, 1024)[0]
        b = lc.phase_settings(*lc.step_settings(longer, "gan"), res, 1024)[0]
        assert (a == b) == (res < 1024)
        merged = lc.from_json("gan", *lc.phase_settings(*lc.step_settings(longer, "gan"), res, 1024))
        assert merged.schedule.total_kimg == 15000


def test_package_version_check():
    lc.check_package_version("0.0.1")
    with pytest.raises(ConfigError, match=r"needs latentage >= 99\.0"):
        lc.check_package_version("99.0")
