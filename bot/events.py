"""Kafka message value (bytes) -> normalised `Event` (SPEC §2). Pure functions, no I/O.

Both DataWorks envelopes are accepted: CloudEvents (EventBridge) and the legacy OpenEvent envelope.
DataWorks quirks (time formats, id fields, status codes) are handled here and in catalog.py only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from bot import catalog

MAX_MESSAGE_BYTES = 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SHANGHAI = timezone(timedelta(hours=8), "PRC")


class InvalidEvent(ValueError):
    """A message that is not a DataWorks event. The text says why, for logs and dead letters."""


@dataclass(slots=True)
class Workspace:
    id: str | None
    name: str | None


@dataclass(slots=True, eq=False)
class Event:
    """Treated as immutable. Not `frozen`: a frozen dataclass sets each of these 15 fields through
    object.__setattr__, which made building an Event cost as much as parsing its JSON."""

    id: str
    source: str
    envelope: str  # "cloudevents" | "legacy"
    type: str | None
    code: str | None
    category: str | None
    blocking: bool
    time: datetime | None
    workspace: Workspace
    tenant_id: str | None
    region: str | None
    account: str | None
    status: str | None
    data: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)
    origin: tuple[str, int, int] | None = None  # Kafka topic, partition, offset (for logs)

    def summary(self) -> dict[str, Any]:
        """The SPEC §5 `event` object (no payload)."""
        return {
            "id": self.id,
            "source": self.source,
            "envelope": self.envelope,
            "type": self.type,
            "code": self.code,
            "category": self.category,
            "blocking": self.blocking,
            "time": format_time(self.time),
            "workspace": {"id": self.workspace.id, "name": self.workspace.name},
            "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary plus tenant/region/account and the payload: what the webhook channel posts."""
        return self.summary() | {
            "tenant_id": self.tenant_id,
            "region": self.region,
            "account": self.account,
            "data": self.data,
        }

    def as_cloudevent(self) -> dict[str, Any]:
        """The event in CloudEvents form, which `match.pattern` is applied to."""
        if self.envelope == "cloudevents":
            return self.raw
        return {
            "id": self.id,
            "source": self.source,
            "specversion": "1.0",
            "type": self.type,
            "time": format_time(self.time),
            "data": self.data,
        }


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def decode(
    value: bytes | str,
    *,
    workspaces: dict[str, str] | None = None,
    tz: tzinfo | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Event:
    """Decode one message value. Raises InvalidEvent with a one-line reason."""
    return normalise(parse(value, max_bytes), workspaces=workspaces, tz=tz)


def parse(value: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Message bytes -> JSON value. Raises InvalidEvent (too big, not UTF-8, not JSON)."""
    if len(value) > max_bytes:
        unit = "bytes" if isinstance(value, bytes | bytearray) else "characters"
        raise InvalidEvent(f"message of {len(value)} {unit} exceeds the limit of {max_bytes}")
    try:
        return orjson.loads(value)  # about twice as fast as json.loads; exact 64-bit integers
    except orjson.JSONDecodeError:
        return _decode_slowly(value)  # precise error messages, and integers beyond 64 bits


def _decode_slowly(value: bytes | str) -> Any:
    if isinstance(value, bytes | bytearray):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"not UTF-8: {exc}") from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None


@dataclass(slots=True)
class Classified:
    """What rules are indexed by, read from a valid envelope before the full normalisation: the
    consumer skips building the Event when no rule can apply to this kind of event."""

    envelope: str
    id: str
    data: dict[str, Any]
    type: str | None
    code: str | None
    category: str | None
    status: str | None
    kind: catalog.EventKind | None

    @property
    def key(self) -> tuple[str | None, str | None, str | None, str | None]:
        return (self.code, self.type, self.category, self.status)


def classify(raw: Any) -> Classified:
    """Validate the envelope and read the event's kind. Raises InvalidEvent."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"not a JSON object but {type(raw).__name__}")
    if "messageBody" in raw or "messageId" in raw:
        data = raw.get("messageBody")
        if not isinstance(data, dict):
            raise InvalidEvent("legacy envelope without an object `messageBody`")
        event_id = _required_id(raw.get("messageId"), "messageId")
        code = _str_or_none(data.get("eventCode")) or _str_or_none(raw.get("eventType"))
        kind = catalog.BY_CODE.get(code or "")
        category = _str_or_none(raw.get("eventCategoryType")) or (kind.category if kind else None)
        return Classified("legacy", event_id, data, kind.type if kind else None, code, category,
                          _status(code, data), kind)
    if "specversion" in raw or ("id" in raw and "type" in raw):
        data = raw.get("data", {})
        if not isinstance(data, dict):
            raise InvalidEvent(f"CloudEvents `data` is not an object but {type(data).__name__}")
        event_id = _required_id(raw.get("id"), "id")
        event_type = raw.get("type") if isinstance(raw.get("type"), str) else None
        code = _str_or_none(data.get("eventCode")) or catalog.code_from_type(event_type)
        kind = catalog.BY_CODE.get(code or "")
        return Classified("cloudevents", event_id, data, event_type, code, kind.category if kind else None,
                          _status(code, data), kind)
    raise InvalidEvent("neither a CloudEvents envelope (id, type, data) nor a legacy one (messageId, messageBody)")


def normalise(raw: Any, *, workspaces: dict[str, str] | None = None, tz: tzinfo | None = None) -> Event:
    """A parsed JSON value -> Event, or InvalidEvent."""
    return build(classify(raw), raw, workspaces=workspaces, tz=tz)


def build(c: Classified, raw: dict, *, workspaces: dict[str, str] | None = None, tz: tzinfo | None = None) -> Event:
    """The full Event of a classified message."""
    local_tz = tz or _SHANGHAI
    data = c.data
    kind = c.kind
    if c.envelope == "legacy":
        blocking = raw.get("blockBusiness", data.get("blockBusiness"))
        source, time = "acs.dataworks", _payload_time(data, local_tz)
        region = account = None
    else:
        blocking = data.get("blockBusiness")
        source = _str_or_none(raw.get("source")) or "acs.dataworks"
        time = parse_time(raw.get("time"), local_tz) or _payload_time(data, local_tz)
        region, account = _str_or_none(raw.get("aliyunregionid")), _id_str(raw.get("aliyunaccountid"))
    return Event(
        id=c.id,
        source=source,
        envelope=c.envelope,
        type=c.type,
        code=c.code,
        category=c.category,
        blocking=blocking if isinstance(blocking, bool) else bool(kind and kind.blocking),
        time=time,
        workspace=_workspace(data, workspaces or {}),
        tenant_id=_id_str(data.get("tenantId")),
        region=region,
        account=account,
        status=c.status,
        data=data,
        raw=raw,
    )


def _required_id(value: Any, name: str) -> str:
    text = _id_str(value)
    if not text:
        raise InvalidEvent(f"envelope has no `{name}`")
    return text


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _id_str(value: Any) -> str | None:
    """Ids come as numbers or strings; expose them as exact strings."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return str(value) or None
    return None


def _status(code: str | None, data: dict) -> str | None:
    if code not in catalog.STATUS_EVENT_CODES:
        return None
    return catalog.status_name(data.get("status"))


# reference §5.1: where each event family keeps its workspace
_WORKSPACE_ID_PATHS = (
    ("projectId",),
    ("appId",),
    ("queryDwProjectId",),
    ("rootNodeProjectId",),
    ("order", "projectMeta", "projectId"),
    ("process", "approvalContent", "workspaceId"),
)
_WORKSPACE_NAME_PATHS = (("projectName",), ("queryDwProjectName",), ("order", "projectMeta", "projectName"))


def _dig(data: dict, path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _workspace(data: dict, workspaces: dict[str, str]) -> Workspace:
    # projectId / appId carry it in almost every event: look there first, without the generic walk
    ws_id = _id_str(data.get("projectId")) or _id_str(data.get("appId"))
    if ws_id is None:
        ws_id = next((v for p in _WORKSPACE_ID_PATHS[2:] if (v := _id_str(_dig(data, p)))), None)
    name = data.get("projectName")
    if not isinstance(name, str) or not name:
        name = None
        if "queryDwProjectName" in data or "order" in data:
            name = next((v for p in _WORKSPACE_NAME_PATHS[1:] if (v := _str_or_none(_dig(data, p)))), None)
    if name is None and ws_id is not None:
        name = workspaces.get(ws_id)
    return Workspace(ws_id, name)


_PAYLOAD_TIME_FIELDS = ("modifyTime", "operationTime", "timestamp", "finishTime", "updateTime", "createTime")


def _payload_time(data: dict, tz: tzinfo) -> datetime | None:
    for name in _PAYLOAD_TIME_FIELDS:
        parsed = parse_time(data.get(name), tz)
        if parsed is not None:
            return parsed
    return None


def parse_time(value: Any, tz: tzinfo | None = None) -> datetime | None:
    """Every time format DataWorks emits -> aware datetime; None if it is not a time.

    - RFC 3339 with offset or `Z`;  a literal `PRC` suffix means UTC+8 (EventBridge samples)
    - epoch milliseconds or seconds, as number or numeric string
    - `yyyy-MM-dd HH:mm:ss` without zone: region local time, i.e. `tz` (default UTC+8)
    """
    local_tz = tz or _SHANGHAI
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=local_tz)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            return _parse_time_text(text, local_tz)
    if isinstance(value, int | float):
        millis = value if abs(value) >= 100_000_000_000 else value * 1000  # ms after 1973, else seconds
        try:
            return (_EPOCH + timedelta(milliseconds=millis)).astimezone(local_tz)
        except OverflowError:
            return None
    return None


def _parse_time_text(text: str, local_tz: tzinfo) -> datetime | None:
    zone = None
    if text.endswith("PRC"):
        text, zone = text[:-3], _SHANGHAI
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or local_tz)
    return parsed


def zone(name: str | None) -> tzinfo:
    """Configured timezone name -> tzinfo (UTC+8 when unset, the China-region default)."""
    return ZoneInfo(name) if name else _SHANGHAI
