"""EventBridge-style patterns: every operator, plus our regex and glob (SPEC §4)."""

from __future__ import annotations

import pytest

from bot.rules.patterns import compile_pattern

DATA = {
    "taskId": 523536569736, "status": 5, "statusText": "5", "dagType": 3, "nodeName": "ods_orders_di",
    "programType": "ODPS_SQL", "ip": "10.1.2.3", "taskIds": [1, 2, 3], "tags": ["prod", "finance"],
    "order": {"projectMeta": {"projectId": 102345, "projectName": "fin_dw_prod"}}, "empty": None, "flag": True,
    "score": "12.5",
}


def matches(pattern: dict, data: dict = DATA) -> bool:
    compiled, errors = compile_pattern(pattern, ())
    assert not errors, errors
    return compiled.test(data)


@pytest.mark.parametrize("pattern,expected", [
    ({"status": 5}, True),
    ({"status": "5"}, True),                    # a number equals the same numeric string
    ({"statusText": 5}, True),                  # ... in both directions
    ({"status": 6}, False),
    ({"status": [6, 5]}, True),                 # list = any of
    ({"taskId": 523536569736}, True),
    ({"nodeName": "ods_orders_di"}, True),
    ({"flag": True}, True),
    ({"flag": 1}, False),                       # booleans are not numbers
    ({"empty": None}, True),
    ({"missing": None}, False),
    ({"nodeName": {"prefix": "ods_"}}, True),
    ({"nodeName": {"prefix": {"equals-ignore-case": "ODS_"}}}, True),
    ({"nodeName": {"suffix": "_di"}}, True),
    ({"nodeName": {"suffix": "_hi"}}, False),
    ({"nodeName": {"wildcard": "ods_*_di"}}, True),
    ({"nodeName": {"wildcard": "dwd_*"}}, False),
    ({"programType": {"equals-ignore-case": "odps_sql"}}, True),
    ({"dagType": {"anything-but": 0}}, True),
    ({"dagType": {"anything-but": [1, 3]}}, False),
    ({"nodeName": {"anything-but": {"prefix": "dwd_"}}}, True),
    ({"nodeName": {"anything-but": {"prefix": "ods_"}}}, False),
    ({"missing": {"anything-but": "x"}}, False),  # anything-but needs the field
    ({"status": {"numeric": [">", 4]}}, True),
    ({"status": {"numeric": [">", 0, "<=", 5]}}, True),
    ({"status": {"numeric": [">", 5]}}, False),
    ({"score": {"numeric": [">=", 12.5]}}, True),  # numeric strings compare as numbers
    ({"nodeName": {"numeric": [">", 0]}}, False),
    ({"nodeName": {"exists": True}}, True),
    ({"missing": {"exists": False}}, True),
    ({"nodeName": {"exists": False}}, False),
    ({"ip": {"cidr": "10.0.0.0/8"}}, True),
    ({"ip": {"cidr": "192.168.0.0/16"}}, False),
    ({"nodeName": {"regex": "^ods_(orders|users)"}}, True),
    ({"taskId": {"regex": "^5235"}}, True),       # regex sees numbers as text
    ({"nodeName": {"glob": "ods_*"}}, True),
    ({"nodeName": {"glob": "dwd_*"}}, False),
    ({"taskIds": 2}, True),                       # arrays: any element
    ({"tags": {"prefix": "fin"}}, True),
    ({"order": {"projectMeta": {"projectId": 102345}}}, True),
    ({"order.projectMeta.projectName": "fin_dw_prod"}, True),  # dotted path
    ({"order.projectMeta.projectId": "102345"}, True),
    ({"order.missing.deeper": {"exists": False}}, True),
    ({"$or": [{"status": 6}, {"dagType": 3}]}, True),
    ({"$or": [{"status": 6}, {"dagType": 0}]}, False),
    ({"status": 5, "$or": [{"nodeName": {"prefix": "x"}}, {"programType": "ODPS_SQL"}]}, True),
    ({"status": [{"numeric": ["<", 0]}, 5]}, True),  # operators mixed with values in one list
])
def test_operators(pattern, expected):
    assert matches(pattern) is expected


def test_nested_object_must_be_object():
    assert not matches({"nodeName": {"inner": 1}})


@pytest.mark.parametrize("pattern,message", [
    ({"x": [{"prefx": "a"}]}, "unknown pattern operator 'prefx'"),
    ({"x": {"prefix": "a", "sufix": "b"}}, "unknown pattern operator 'sufix'"),
    ({"x": {"numeric": [">>", 1]}}, "unknown comparison '>>'"),
    ({"x": {"numeric": [">", "one"]}}, "is not a number"),
    ({"x": {"numeric": [">"]}}, "numeric takes"),
    ({"x": {"regex": "("}}, "invalid regex"),
    ({"x": {"cidr": "not-a-net"}}, "invalid cidr"),
    ({"x": {"exists": "yes"}}, "exists takes true or false"),
    ({"x": {"anything-but": {"regex": "a"}}}, "anything-but takes"),
    ({"x": {"prefix": 5}}, "prefix takes a string"),
    ({"$or": {"a": 1}}, "$or takes a list"),
])
def test_invalid_patterns(pattern, message):
    compiled, errors = compile_pattern(pattern, ("match", "data"))
    assert compiled is None
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


def test_every_error_is_reported_with_its_location():
    _, errors = compile_pattern({"a": {"regex": "("}, "b": {"nested": [{"bogus": 1}]}}, ("match", "data"))
    assert sorted(e.loc for e in errors) == [("match", "data", "a"), ("match", "data", "b", "nested")]


def test_explain_names_the_failing_field():
    compiled, _ = compile_pattern({"dagType": [0], "status": 5}, (), "data.")
    assert compiled.explain(DATA) == "data.dagType: 3 does not match [0]"
    compiled, _ = compile_pattern({"nope": 1}, (), "data.")
    assert compiled.explain(DATA) == "data.nope: missing (pattern 1)"
