"""`dwbot schema` emits JSON Schemas that accept the shipped files and reject broken ones."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from conftest import ROOT

from bot.cli import main


def schema(capsys, kind: str) -> dict:
    assert main(["schema", kind]) == 0
    return json.loads(capsys.readouterr().out)


def test_rules_schema_accepts_shipped_rules(capsys):
    rules_schema = schema(capsys, "rules")
    assert rules_schema["title"] == "dwbot rule file"
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), rules_schema)


def test_rules_schema_rejects_unknown_keys(capsys):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load((ROOT / "tests/broken/unknown-key.yaml").read_text()), schema(capsys, "rules"))


def test_config_schema_accepts_example(capsys):
    config_schema = schema(capsys, "config")
    jsonschema.validate(yaml.safe_load((ROOT / "bot.example.yaml").read_text()), config_schema)
    assert set(config_schema["properties"]) >= {"kafka", "channels", "state", "dedup", "dead_letter", "workspaces",
                                                 "timezone", "rules", "server"}
