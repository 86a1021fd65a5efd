"""DataWorks facts: event codes <-> EventBridge types <-> categories, and status names.

Source: reference/dataworks-openevent.md §2 and §3. Everything DataWorks-specific about
*names* lives here so that events.py and the rule loader stay generic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventKind:
    code: str
    type: str
    category: str | None
    blocking: bool  # extension-point ("E") events pause the DataWorks operation


_R, _E = False, True

# (code, type, category, blocking) — the event table of the reference, in its order.
_TABLE: tuple[tuple[str, str, str | None, bool], ...] = (
    ("node-change-created", "dataworks:NodeChange:NodeChangeCreated", "node-change", _R),
    ("node-change-updated", "dataworks:NodeChange:NodeChangeUpdated", "node-change", _R),
    ("delete-file", "dataworks:FileChange:DeleteFile", "file-change", _E),
    ("commit-file", "dataworks:FileChange:CommitFile", "file-change", _E),
    ("deploy-file", "dataworks:FileChange:DeployFile", "file-change", _E),
    ("run-file", "dataworks:FileChange:RunFile", "file-change", _E),
    ("review-file", "dataworks:FileChange:ReviewFile", "file-change", _R),
    ("commit-table", "dataworks:TableChange:CommitTable", "table-change", _E),
    ("deploy-table", "dataworks:TableChange:DeployTable", "table-change", _E),
    ("start-diJob", "dataworks:NodeChange:StartDiJob", None, _E),
    ("batch-start-diJob", "dataworks:NodeChange:BatchStartDiJob", None, _E),
    ("node-change-deleted", "dataworks:NodeChange:NodeChangeDeleted", "node-change", _R),
    ("undeploy-node", "dataworks:NodeChange:UndeployNode", "node-change", _E),
    ("freeze-node", "dataworks:NodeChange:FreezeNode", "node-change", _E),
    ("unfreeze-node", "dataworks:NodeChange:UnFreezeNode", "node-change", _E),
    ("backfill-data", "dataworks:BackfillDataOperate:BackfillData", "backfill-data-operate", _E),
    ("instance-status-changes", "dataworks:InstanceStatusChanges:InstanceStatusChanges",
     "instance-status-changes", _R),
    ("freeze-instance", "dataworks:InstanceChange:FreezeInstance", "instance-change", _R),
    ("unfreeze-instance", "dataworks:InstanceChange:UnfreezeInstance", "instance-change", _R),
    ("kill-instance", "dataworks:InstanceChange:KillInstance", "instance-change", _R),
    ("rerun-instance", "dataworks:InstanceChange:RerunInstance", "instance-change", _R),
    ("set-instance-success", "dataworks:InstanceChange:SetInstanceSuccess", "instance-change", _R),
    ("delete-task-instance-dependencies", "dataworks:InstanceChange:DeleteTaskInstanceDependencies",
     "instance-change", _R),
    ("pre-freeze-instance", "dataworks:InstanceChange:PreFreezeInstance", "instance-change", _E),
    ("pre-unfreeze-instance", "dataworks:InstanceChange:PreUnfreezeInstance", "instance-change", _E),
    ("pre-rerun-instance", "dataworks:InstanceChange:PreRerunInstance", "instance-change", _E),
    ("pre-set-instance-success", "dataworks:InstanceChange:PreSetInstanceSuccess", "instance-change", _E),
    ("pre-kill-instance", "dataworks:InstanceChange:PreKillInstance", "instance-change", _E),
    ("expired-task-instances-deleted", "dataworks:InstanceChange:ExpiredTaskInstancesDeleted",
     "instance-change", _R),
    ("dag-status-changes", "dataworks:DagStatusChanges:DagStatusChanges", "dag-status-changes", _R),
    ("workbench-monitor-alert", "dataworks:MonitorAlert:WorkbenchMonitorAlert", "monitor-alert", _R),
    ("approval-change-created", "dataworks:ApprovalChange:ApprovalChangeCreated", "approval-change", _E),
    ("approval-change-finished", "dataworks:ApprovalChange:ApprovalChangeFinished", "approval-change", _E),
    ("approval-change-before-create", "dataworks:ApprovalChange:ApprovalChangeBeforeCreate",
     "approval-change", _E),
    ("dqc-check-feedback-event", "dataworks:DqcCheck:DqcCheckFeedbackEvent", "dqc-check", _R),
    ("dqc-check-finished-event", "dataworks:DqcCheck:DqcCheckFinishedEvent", "dqc-check", _R),
    ("batch-create-data-quality-rules", "dataworks:DqcCheck:BatchCreateDataQualityRules", "dqc-check", _E),
    ("batch-update-data-quality-rules", "dataworks:DqcCheck:BatchUpdateDataQualityRules", "dqc-check", _E),
    ("batch-delete-data-quality-rules", "dataworks:DqcCheck:BatchDeleteDataQualityRules", "dqc-check", _E),
    ("update-data-quality-rule", "dataworks:DqcCheck:UpdateDataQualityRule", "dqc-check", _E),
    ("create-data-quality-evaluation-task", "dataworks:DqcCheck:CreateDataQualityEvaluationTask",
     "dqc-check", _E),
    ("update-data-quality-evaluation-task", "dataworks:DqcCheck:UpdateDataQualityEvaluationTask",
     "dqc-check", _E),
    ("clone-data-quality-evaluation-task", "dataworks:DqcCheck:CloneDataQualityEvaluationTask",
     "dqc-check", _E),
    ("batch-delete-data-quality-evaluation-tasks", "dataworks:DqcCheck:BatchDeleteDataQualityEvaluationTasks",
     "dqc-check", _E),
    ("create-data-quality-evaluation-task-notification",
     "dataworks:DqcCheck:CreateDataQualityEvaluationTaskNotification", "dqc-check", _E),
    ("update-data-quality-evaluation-task-notification",
     "dataworks:DqcCheck:UpdateDataQualityEvaluationTaskNotification", "dqc-check", _E),
    ("delete-data-quality-evaluation-task-notification",
     "dataworks:DqcCheck:DeleteDataQualityEvaluationTaskNotification", "dqc-check", _E),
    # tenant-level
    ("delete-project", "dataworks:ProjectChange:DeleteProject", "project-change", _E),
    ("project-deleted", "dataworks:ProjectChange:ProjectDeleted", "project-change", _R),
    ("download-resources", "dataworks:ResourcesDownload:DownloadResources", "resources-download", _E),
    ("download-resources-execute", "dataworks:ResourcesDownload:DownloadResourcesExecute",
     "resources-download", _E),
    ("upload-data-to-table", "dataworks:ResourcesUpload:UploadDataToTable", "resources-download", _E),
)

EVENT_KINDS: tuple[EventKind, ...] = tuple(EventKind(*row) for row in _TABLE)
BY_CODE: dict[str, EventKind] = {k.code: k for k in EVENT_KINDS}
# DataWorks spells one action `UnFreezeNode` and another `UnfreezeInstance`: look types up case-insensitively.
BY_TYPE: dict[str, EventKind] = {k.type.lower(): k for k in EVENT_KINDS}
CATEGORIES: frozenset[str] = frozenset(k.category for k in EVENT_KINDS if k.category) | {
    "instance-status-change"  # the legacy appendix spells it in the singular
}

# Instance (§3.1) and workflow (§3.8) status codes. 0 and 1 both mean "not run": the docs and the
# official demo disagree.
STATUS_NAMES: dict[int, str] = {
    0: "NOT_RUN",
    1: "NOT_RUN",
    2: "WAIT_TIME",
    3: "WAIT_RESOURCE",
    4: "RUNNING",
    5: "FAILURE",
    6: "SUCCESS",
    7: "CHECKING",
    8: "CHECKING_CONDITION",
}
STATUS_VALUES: tuple[str, ...] = tuple(dict.fromkeys(STATUS_NAMES.values()))
STATUS_EVENT_CODES: frozenset[str] = frozenset({"instance-status-changes", "dag-status-changes"})

DAG_TYPES: dict[int, str] = {
    0: "scheduled",
    1: "manual task",
    2: "smoke test",
    3: "data backfill",
    4: "temporary workflow",
    5: "manually triggered workflow",
}
CHECK_RESULTS: dict[int, str] = {-2: "skipped", -1: "error", 0: "passed", 1: "warning", 2: "critical"}
BASELINE_STATUSES: dict[int, str] = {-1: "abnormal", 1: "safe", 2: "warning", 3: "overtime"}


def code_from_type(event_type: str | None) -> str | None:
    """`dataworks:{Category}:{Action}` -> event code; unknown actions become kebab-case."""
    if not event_type:
        return None
    kind = BY_TYPE.get(event_type.lower())
    if kind:
        return kind.code
    action = event_type.rsplit(":", 1)[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", action).lower() or None


def status_name(value: object) -> str | None:
    """Integer (or numeric string) status -> name; None when unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int):
        return STATUS_NAMES.get(value)
    return None


def is_known_event_name(name: str) -> bool:
    """True for a known code, type or category — what `match.event` may name exactly."""
    return name in BY_CODE or name.lower() in BY_TYPE or name in CATEGORIES
