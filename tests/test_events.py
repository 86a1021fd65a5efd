"""Normalisation of both envelopes and every sample (SPEC §2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import SAMPLES, sample

from bot import events
from bot.events import InvalidEvent, decode, normalise, parse_time

WS = {"102345": "fin_dw_prod", "208812": "growth_ads", "311907": "risk_ml_lab", "400211": "tmp_sandbox"}
CST = timezone(timedelta(hours=8))

# file -> (envelope, code, category, blocking, workspace id, workspace name, status, time)
EXPECTED = {
    "backfill-data-cloudevent.json": ("cloudevents", "backfill-data", "backfill-data-operate", True,
                                      "102345", "fin_dw_prod", None, "2025-03-18T10:56:31+08:00"),
    "di-start-job-v1-cloudevent.json": ("cloudevents", "start-diJob", None, True, "102345", "fin_dw_prod",
                                        None, "2025-03-18T09:00:12+08:00"),
    "dqc-check-finished-critical-cloudevent.json": ("cloudevents", "dqc-check-finished-event", "dqc-check", False,
                                                    "102345", "fin_dw_prod", None, "2025-03-18T02:11:39+08:00"),
    "dqc-check-finished-passed-cloudevent.json": ("cloudevents", "dqc-check-finished-event", "dqc-check", False,
                                                  "208812", "growth_ads", None, "2025-03-18T03:09:27+08:00"),
    "file-commit-cloudevent.json": ("cloudevents", "commit-file", "file-change", False, "102345", "fin_dw_prod",
                                    None, "2025-03-18T13:58:40+08:00"),
    "file-deploy-cloudevent.json": ("cloudevents", "deploy-file", "file-change", True, "208812", "growth_ads",
                                    None, "2025-03-18T15:20:01+08:00"),
    "instance-rerun-cloudevent.json": ("cloudevents", "rerun-instance", "instance-change", False, "208812",
                                       "growth_ads", None, "2025-03-18T05:20:17+08:00"),
    "instance-status-failure-cloudevent.json": ("cloudevents", "instance-status-changes", "instance-status-changes",
                                                False, "102345", "fin_dw_prod", "FAILURE", "2025-03-18T02:11:43+08:00"),
    "instance-status-failure-legacy.json": ("legacy", "instance-status-changes", "instance-status-change", False,
                                            "208812", "growth_ads", "FAILURE", "2025-03-18T05:03:27+08:00"),
    "instance-status-not-run-cloudevent.json": ("cloudevents", "instance-status-changes", "instance-status-changes",
                                                False, "102345", "fin_dw_prod", "NOT_RUN", "2025-03-17T23:41:12+08:00"),
    "instance-status-running-cloudevent.json": ("cloudevents", "instance-status-changes", "instance-status-changes",
                                                False, "102345", "fin_dw_prod", "RUNNING", "2025-03-18T02:10:05+08:00"),
    "instance-status-success-cloudevent.json": ("cloudevents", "instance-status-changes", "instance-status-changes",
                                                False, "208812", "growth_ads", "SUCCESS", "2025-03-18T03:09:12+08:00"),
    "instance-status-success-legacy.json": ("legacy", "instance-status-changes", "instance-status-changes", False,
                                            "102345", "fin_dw_prod", "SUCCESS", "2025-03-18T01:01:44+08:00"),
    "instance-status-wait-resource-cloudevent.json": ("cloudevents", "instance-status-changes",
                                                      "instance-status-changes", False, "208812", "growth_ads",
                                                      "WAIT_RESOURCE", "2025-03-18T03:00:02+08:00"),
    "monitor-alert-baseline-cloudevent.json": ("cloudevents", "workbench-monitor-alert", "monitor-alert", False,
                                               "102345", "fin_dw_prod", None, "2025-03-18T07:00:05+08:00"),
    "monitor-alert-event-cloudevent.json": ("cloudevents", "workbench-monitor-alert", "monitor-alert", False,
                                            "208812", "growth_ads", None, "2025-03-18T10:58:30+08:00"),
    "node-change-created-cloudevent.json": ("cloudevents", "node-change-created", "node-change", False, "102345",
                                            "fin_dw_prod", None, "2025-03-18T14:05:11+08:00"),
    "node-change-deleted-cloudevent.json": ("cloudevents", "node-change-deleted", "node-change", False, "102345",
                                            "fin_dw_prod", None, "2025-03-18T16:02:20+08:00"),
    "node-change-updated-cloudevent.json": ("cloudevents", "node-change-updated", "node-change", False, "208812",
                                            "growth_ads", None, "2025-03-18T15:20:46+08:00"),
    "project-deleted-cloudevent.json": ("cloudevents", "project-deleted", "project-change", False, "400211",
                                        "tmp_sandbox", None, "2025-03-18T18:00:43+08:00"),
    "table-commit-cloudevent.json": ("cloudevents", "commit-table", "table-change", True, "102345", "fin_dw_prod",
                                     None, "2025-03-18T10:02:33+08:00"),
    "upload-data-to-table-cloudevent.json": ("cloudevents", "upload-data-to-table", "resources-download", True,
                                             "311907", "risk_ml_lab", None, "2025-03-18T10:30:00.117+00:00"),
    "workflow-status-failure-cloudevent.json": ("cloudevents", "dag-status-changes", "dag-status-changes", False,
                                                "102345", "fin_dw_prod", "FAILURE", "2025-03-18T11:03:47+08:00"),
    "workflow-status-success-cloudevent.json": ("cloudevents", "dag-status-changes", "dag-status-changes", False,
                                                "208812", "growth_ads", "SUCCESS", "2025-03-18T12:41:19+08:00"),
}


def test_every_sample_has_an_expectation():
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_normalisation(name):
    raw_bytes = (SAMPLES / name).read_bytes()
    event = decode(raw_bytes, workspaces=WS)
    envelope, code, category, blocking, ws_id, ws_name, status, time = EXPECTED[name]
    summary = event.summary()
    assert summary["envelope"] == envelope
    assert summary["code"] == code
    assert summary["category"] == category
    assert summary["blocking"] is blocking
    assert summary["workspace"] == {"id": ws_id, "name": ws_name}
    assert summary["status"] == status
    assert summary["time"] == time
    assert event.time.tzinfo is not None
    raw = json.loads(raw_bytes)
    assert event.raw == raw
    if envelope == "cloudevents":
        assert event.id == raw["id"] and event.type == raw["type"] and event.source == "acs.dataworks"
        assert event.region == raw["aliyunregionid"] and event.account == raw["aliyunaccountid"]
        assert event.data is raw["data"] or event.data == raw["data"]
    else:
        assert event.id == raw["messageId"] and event.source == "acs.dataworks"
        assert event.type == "dataworks:InstanceStatusChanges:InstanceStatusChanges"
        assert event.region is None and event.data == raw["messageBody"]
    tenant = event.data.get("tenantId")
    assert event.tenant_id == (str(tenant) if tenant is not None else None)


def test_big_integer_ids_stay_exact():
    event = decode(json.dumps({"id": "x", "type": "dataworks:InstanceStatusChanges:InstanceStatusChanges",
                               "data": {"taskId": 9007199254740993, "appId": 102345, "status": 5}}))
    assert event.data["taskId"] == 9007199254740993  # 2**53 + 1: a float would lose it
    assert isinstance(event.data["taskId"], int)


def test_code_derived_from_type_when_payload_has_no_event_code():
    event = normalise(sample("monitor-alert-event-cloudevent.json"))
    assert "eventCode" not in event.data
    assert event.code == "workbench-monitor-alert"
    unknown = normalise({"id": "1", "type": "dataworks:SomethingNew:BrandNewThing", "data": {}})
    assert unknown.code == "brand-new-thing" and unknown.category is None


def test_unfreeze_node_type_is_matched_case_insensitively():
    event = normalise({"id": "1", "type": "dataworks:NodeChange:UnfreezeNode", "data": {"projectId": 1}})
    assert event.code == "unfreeze-node" and event.blocking is True


@pytest.mark.parametrize("status,name", [(0, "NOT_RUN"), (1, "NOT_RUN"), (2, "WAIT_TIME"), (3, "WAIT_RESOURCE"),
                                         (4, "RUNNING"), (5, "FAILURE"), (6, "SUCCESS"), (7, "CHECKING"),
                                         (8, "CHECKING_CONDITION"), ("5", "FAILURE"), (99, None)])
def test_status_names(status, name):
    raw = sample("instance-status-failure-legacy.json")
    raw["messageBody"]["status"] = status
    assert normalise(raw).status == name


def test_status_is_null_for_other_events():
    raw = sample("monitor-alert-event-cloudevent.json")
    assert normalise(raw).status is None  # taskStatus exists but this is not a status event


def test_workspace_name_from_payload_wins_over_map():
    raw = sample("dqc-check-finished-critical-cloudevent.json")
    event = normalise(raw, workspaces={"102345": "from-map"})
    assert event.workspace.name == "fin_dw_prod"
    assert normalise(sample("instance-status-failure-cloudevent.json")).workspace.name is None


def test_workspace_from_nested_paths():
    approval = {"id": "a", "type": "dataworks:ApprovalChange:ApprovalChangeBeforeCreate",
                "data": {"order": {"projectMeta": {"projectId": 77, "projectName": "secure_ws"}}}}
    event = normalise(approval)
    assert (event.workspace.id, event.workspace.name) == ("77", "secure_ws")
    process = {"id": "b", "type": "dataworks:ApprovalChange:ApprovalChangeCreated",
               "data": {"process": {"approvalContent": {"workspaceId": "88"}}}}
    assert normalise(process).workspace.id == "88"


@pytest.mark.parametrize("text,expected", [
    ("2025-03-18T02:11:43+08:00", datetime(2025, 3, 17, 18, 11, 43, tzinfo=UTC)),
    ("2025-03-17T18:11:43.512Z", datetime(2025, 3, 17, 18, 11, 43, 512000, tzinfo=UTC)),
    ("2025-03-18T03:00:02.437PRC", datetime(2025, 3, 17, 19, 0, 2, 437000, tzinfo=UTC)),
    (1742235102000, datetime(2025, 3, 17, 18, 11, 42, tzinfo=UTC)),
    ("1742235102000", datetime(2025, 3, 17, 18, 11, 42, tzinfo=UTC)),
    (1742235102, datetime(2025, 3, 17, 18, 11, 42, tzinfo=UTC)),
    ("2025-03-18 02:11:42", datetime(2025, 3, 17, 18, 11, 42, tzinfo=UTC)),  # zone-less: region local (UTC+8)
])
def test_time_quirks(text, expected):
    parsed = parse_time(text, CST)
    assert parsed == expected and parsed.tzinfo is not None


def test_legacy_time_uses_best_payload_timestamp():
    raw = sample("instance-status-failure-legacy.json")
    assert normalise(raw).time == datetime(2025, 3, 17, 21, 3, 27, tzinfo=UTC)  # modifyTime
    del raw["messageBody"]["modifyTime"]
    assert normalise(raw).time == datetime(2025, 3, 17, 21, 3, 27, tzinfo=UTC)  # finishTime, same instant


@pytest.mark.parametrize("value,reason", [
    (b"\xff\xfe not utf8", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b'{"hello": "world"}', "neither a CloudEvents envelope"),
    (b'{"messageId": "x", "messageBody": [1]}', "without an object `messageBody`"),
    (b'{"messageBody": {"appId": 1}}', "no `messageId`"),
    (b'{"id": "x", "type": "t", "data": "string"}', "`data` is not an object"),
    (b'{"specversion": "1.0", "type": "t", "data": {}}', "no `id`"),
])
def test_invalid_messages(value, reason):
    with pytest.raises(InvalidEvent, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode(value)


def test_huge_message_is_invalid():
    with pytest.raises(InvalidEvent, match="exceeds the limit"):
        decode(b"{" + b" " * events.MAX_MESSAGE_BYTES + b"}")
