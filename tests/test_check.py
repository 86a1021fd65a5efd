"""`dwbot check`: exit 0 on the shipped rules, PATH:LINE:COL messages for every defect class."""

from __future__ import annotations

from conftest import ROOT, TEST_CONFIG

from bot.cli import main

BROKEN = ROOT / "tests" / "broken"

# file -> every line `dwbot check` must print for it (PATH:LINE:COL: message)
EXPECTED = {
    "yaml-syntax.yaml": ["tests/broken/yaml-syntax.yaml:4:11: YAML syntax error: while parsing a flow mapping "
                         "expected ',' or '}', but got ':'"],
    "unknown-key.yaml": ["tests/broken/unknown-key.yaml:5:7: rules.0.match.stauts: unknown key 'stauts' "
                         "(did you mean 'status'?)"],
    "wrong-type.yaml": ["tests/broken/wrong-type.yaml:3:14: rules.0.enabled: Input should be a valid boolean, "
                        "unable to interpret input (got 'maybe')",
                        "tests/broken/wrong-type.yaml:6:13: rules.0.notify: expected a mapping, got a number"],
    "bad-duration.yaml": ["tests/broken/bad-duration.yaml:7:15: rules.0.dedup.window: invalid duration "
                          "'30 minutes': use a number with a unit such as 30s, 10m, 24h or 7d"],
    "bad-regex.yaml": ["tests/broken/bad-regex.yaml:6:19: match.data: invalid regex 'ods_(orders': "
                       "missing ), unterminated subpattern at position 4"],
    "bad-operator.yaml": ["tests/broken/bad-operator.yaml:6:19: match.data: unknown pattern operator "
                          "'anything_but' (operators: anything-but, cidr, equals-ignore-case, exists, glob, "
                          "numeric, prefix, regex, suffix, wildcard)",
                          "tests/broken/bad-operator.yaml:7:18: match.data: numeric: unknown comparison '>>' "
                          "(use one of <, <=, =, >, >=, !=)"],
    "unknown-channel.yaml": ["tests/broken/unknown-channel.yaml:6:9: notify: unknown channel 'oncall-slak' "
                             "(did you mean 'oncall-slack'?)"],
    "unknown-template.yaml": ["tests/broken/unknown-template.yaml:6:15: unknown template 'instance-faild'"],
    "duplicate-name.yaml": ["tests/broken/duplicate-name.yaml:5:11: duplicate rule name 'same-name' "
                            "(first defined at tests/broken/duplicate-name.yaml:2)"],
    "jinja-syntax.yaml": ["tests/broken/jinja-syntax.yaml:6:1: template broken-text: Jinja syntax error: "
                          "unexpected '}'",
                          "tests/broken/jinja-syntax.yaml:12:11: when: Jinja syntax error: unexpected "
                          "'end of print statement'"],
    "unset-env.yaml": ["tests/broken/unset-env.yaml:5:18: environment variable DWBOT_TEST_SURELY_UNSET_VAR is "
                       "not set (use ${DWBOT_TEST_SURELY_UNSET_VAR:-default} for a default)"],
    "unknown-event.yaml": ["tests/broken/unknown-event.yaml:4:14: match.event: unknown event "
                           "'instance-status-change-typo' (did you mean 'instance-status-changes'?)",
                           "tests/broken/unknown-event.yaml:5:15: match.status: unknown status 'FAILED' "
                           "(did you mean 'FAILURE'?)"],
}


def run_check(capsys, monkeypatch, *args: str) -> tuple[int, list[str], str]:
    monkeypatch.chdir(ROOT)
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if "problem(s) found" not in line], out


def test_every_broken_file_has_an_expectation():
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


def test_shipped_rules_are_valid(capsys, monkeypatch):
    code, errors, out = run_check(capsys, monkeypatch, "-c", str(TEST_CONFIG))
    assert (code, errors) == (0, [])
    assert "8 rule(s)" in out


def test_example_config_and_embedded_defaults_are_valid(capsys, monkeypatch):
    assert run_check(capsys, monkeypatch, "-c", "bot.example.yaml")[:2] == (0, [])
    monkeypatch.delenv("DWBOT_CONFIG", raising=False)
    assert run_check(capsys, monkeypatch)[:2] == (0, [])  # no ./bot.yaml in the repo: embedded defaults


def test_each_defect_class(capsys, monkeypatch):
    monkeypatch.delenv("DWBOT_TEST_SURELY_UNSET_VAR", raising=False)
    for name, expected in EXPECTED.items():
        code, errors, _ = run_check(capsys, monkeypatch, "-c", str(TEST_CONFIG), "--rules", f"tests/broken/{name}")
        assert code == 1, name
        assert errors == expected, name


def test_all_problems_reported_in_one_run(capsys, monkeypatch):
    monkeypatch.delenv("DWBOT_TEST_SURELY_UNSET_VAR", raising=False)
    code, errors, _ = run_check(capsys, monkeypatch, "-c", str(TEST_CONFIG), "--rules", "tests/broken")
    assert code == 1
    expected = [line for lines in EXPECTED.values() for line in lines]
    assert sorted(errors) == sorted(expected)


def test_config_problems_with_positions(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DWBOT_UNSET_URL", raising=False)
    config = tmp_path / "bot.yaml"
    config.write_text("""\
channels:
  team:
    type: dingtalk
    url: ${DWBOT_UNSET_URL}
  chat:
    type: telegram
    url: https://x
dedup:
  window: forever
timezone: Mars/Olympus
stat: memory://
rules: [rules/]
""")
    (tmp_path / "rules").mkdir()
    code, errors, _ = run_check(capsys, monkeypatch, "-c", str(config))
    assert code == 1
    text = "\n".join(errors)
    assert f"{config}:4:10: environment variable DWBOT_UNSET_URL is not set" in text
    assert f"{config}:6:11: channels.chat.type: Input should be 'dingtalk', 'slack' or 'webhook'" in text
    assert f"{config}:9:11: dedup.window: invalid duration 'forever'" in text
    assert f"{config}:10:11: timezone: unknown timezone 'Mars/Olympus'" in text
    assert f"{config}:11:1: stat: unknown key 'stat' (did you mean 'state'?)" in text


def test_missing_config_file(capsys, monkeypatch):
    code, errors, _ = run_check(capsys, monkeypatch, "-c", "does-not-exist.yaml")
    assert code == 1 and errors == ["does-not-exist.yaml: config file not found"]


def test_secrets_never_in_check_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DWBOT_T_URL", "https://oapi.dingtalk.com/robot/send?access_token=VERYSECRET")
    config = tmp_path / "bot.yaml"
    config.write_text("channels:\n  c:\n    type: dingtalk\n    url: ${DWBOT_T_URL}\n    rate_limit: fast\n")
    code, errors, out = run_check(capsys, monkeypatch, "-c", str(config))
    assert code == 1
    assert "VERYSECRET" not in "\n".join(errors) + out
    assert any("invalid rate 'fast'" in e for e in errors)
