"""Config: the schema describes every key; wrong keys or types fail naming the key."""

import copy

import pytest
import yaml

from latentage.config import check_config, validate_config
from latentage.errors import ConfigError


@pytest.fixture(scope="module")
def schema_path(repo):
    return repo / "workflow/schemas/config.schema.yaml"


@pytest.fixture
def full(repo):
    return yaml.safe_load((repo / "config.yaml").read_text())


def _walk(schema, path=""):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}" if path else key)


def test_every_key_has_type_description_and_default(schema_path):
    schema = yaml.safe_load(schema_path.read_text())
    for path, node in _walk(schema):
        if not path:
            continue
        assert "description" in node, path
        assert "default" in node, path
        assert "type" in node or "enum" in node, path
        if node.get("type") == "object":
            # closed records, or maps whose values are typed (e.g. per-resolution tables)
            extra = node.get("additionalProperties")
            assert extra is False or (isinstance(extra, dict) and "propertyNames" in node), path


def test_full_and_mini_configs_are_valid(repo, schema_path, full):
    validate_config(full, schema_path)
    mini = yaml.safe_load((repo / "tests/mini/config.yaml").read_text())
    validate_config(mini, schema_path)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["data"].__setitem__("max_res", "big"), r"config key data\.max_res: 'big' is not of type"),
    (lambda c: c["data"].__setitem__("max_res", 100), r"config key data\.max_res: 100 is not one of"),
    (lambda c: c["data"].__setitem__("sourcee", "phantom"), r"unknown config key data\.sourcee"),
    (lambda c: c.__setitem__("seed", -1), r"config key seed: -1 is less than the minimum"),
    (lambda c: c["data"].__setitem__("on_bad_image", "ignore"), r"config key data\.on_bad_image"),
    (lambda c: c["data"]["phantom"].__setitem__("n", 1.5), r"config key data\.phantom\.n"),
    (lambda c: c.pop("seed"), r"'seed' is a required property"),
])
def test_wrong_key_or_type_names_the_key(schema_path, full, edit, message):
    config = copy.deepcopy(full)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config, schema_path)


def test_semantic_checks_name_the_key(full):
    config = copy.deepcopy(full)
    config["data"].update(source="phantom", max_res=256)
    config["data"]["phantom"]["size"] = 128
    with pytest.raises(ConfigError, match=r"data\.phantom\.size \(128\) is below data\.max_res"):
        check_config(config)
    config["data"]["phantom"]["size"] = 256
    config["data"]["test_size"] = 12.5
    with pytest.raises(ConfigError, match=r"data\.test_size"):
        check_config(config)
