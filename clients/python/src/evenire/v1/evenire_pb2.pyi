import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExpectedState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPECTED_STATE_UNSPECIFIED: _ClassVar[ExpectedState]
    EXPECTED_STATE_ANY: _ClassVar[ExpectedState]
    EXPECTED_STATE_NO_STREAM: _ClassVar[ExpectedState]
    EXPECTED_STATE_STREAM_EXISTS: _ClassVar[ExpectedState]

class ReadOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_ORIGIN_UNSPECIFIED: _ClassVar[ReadOrigin]
    READ_ORIGIN_START: _ClassVar[ReadOrigin]
    READ_ORIGIN_END: _ClassVar[ReadOrigin]

class ReadDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_DIRECTION_UNSPECIFIED: _ClassVar[ReadDirection]
    READ_DIRECTION_FORWARD: _ClassVar[ReadDirection]
    READ_DIRECTION_BACKWARD: _ClassVar[ReadDirection]

class SubscribeOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIBE_ORIGIN_UNSPECIFIED: _ClassVar[SubscribeOrigin]
    SUBSCRIBE_ORIGIN_START: _ClassVar[SubscribeOrigin]
    SUBSCRIBE_ORIGIN_END: _ClassVar[SubscribeOrigin]

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_LIVE: _ClassVar[StreamState]
    STREAM_STATE_DELETED: _ClassVar[StreamState]
    STREAM_STATE_TOMBSTONED: _ClassVar[StreamState]

class ServerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_STATE_UNSPECIFIED: _ClassVar[ServerState]
    SERVER_STATE_STARTING: _ClassVar[ServerState]
    SERVER_STATE_SERVING: _ClassVar[ServerState]
    SERVER_STATE_REFUSING_WRITES: _ClassVar[ServerState]
    SERVER_STATE_STOPPING: _ClassVar[ServerState]
EXPECTED_STATE_UNSPECIFIED: ExpectedState
EXPECTED_STATE_ANY: ExpectedState
EXPECTED_STATE_NO_STREAM: ExpectedState
EXPECTED_STATE_STREAM_EXISTS: ExpectedState
READ_ORIGIN_UNSPECIFIED: ReadOrigin
READ_ORIGIN_START: ReadOrigin
READ_ORIGIN_END: ReadOrigin
READ_DIRECTION_UNSPECIFIED: ReadDirection
READ_DIRECTION_FORWARD: ReadDirection
READ_DIRECTION_BACKWARD: ReadDirection
SUBSCRIBE_ORIGIN_UNSPECIFIED: SubscribeOrigin
SUBSCRIBE_ORIGIN_START: SubscribeOrigin
SUBSCRIBE_ORIGIN_END: SubscribeOrigin
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_LIVE: StreamState
STREAM_STATE_DELETED: StreamState
STREAM_STATE_TOMBSTONED: StreamState
SERVER_STATE_UNSPECIFIED: ServerState
SERVER_STATE_STARTING: ServerState
SERVER_STATE_SERVING: ServerState
SERVER_STATE_REFUSING_WRITES: ServerState
SERVER_STATE_STOPPING: ServerState

class StreamId(_message.Message):
    __slots__ = ("key", "type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    type: str
    def __init__(self, key: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class ExpectedVersion(_message.Message):
    __slots__ = ("state", "exact")
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    state: ExpectedState
    exact: int
    def __init__(self, state: _Optional[_Union[ExpectedState, str]] = ..., exact: _Optional[int] = ...) -> None: ...

class EventData(_message.Message):
    __slots__ = ("id", "type", "data", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    data: bytes
    metadata: bytes
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., metadata: _Optional[bytes] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("stream", "expected_version", "events")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    expected_version: ExpectedVersion
    events: _containers.RepeatedCompositeFieldContainer[EventData]
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., expected_version: _Optional[_Union[ExpectedVersion, _Mapping]] = ..., events: _Optional[_Iterable[_Union[EventData, _Mapping]]] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("version", "position")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    version: int
    position: int
    def __init__(self, version: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("stream", "origin", "version", "direction", "max_count")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    origin: ReadOrigin
    version: int
    direction: ReadDirection
    max_count: int
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., origin: _Optional[_Union[ReadOrigin, str]] = ..., version: _Optional[int] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., max_count: _Optional[int] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ...) -> None: ...

class RecordedEvent(_message.Message):
    __slots__ = ("id", "type", "data", "metadata", "stream", "version", "position", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    data: bytes
    metadata: bytes
    stream: StreamId
    version: int
    position: int
    created: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., metadata: _Optional[bytes] = ..., stream: _Optional[_Union[StreamId, _Mapping]] = ..., version: _Optional[int] = ..., position: _Optional[int] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadAllRequest(_message.Message):
    __slots__ = ("origin", "position", "direction", "max_count")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    origin: ReadOrigin
    position: int
    direction: ReadDirection
    max_count: int
    def __init__(self, origin: _Optional[_Union[ReadOrigin, str]] = ..., position: _Optional[int] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., max_count: _Optional[int] = ...) -> None: ...

class ReadAllResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ...) -> None: ...

class SubscribeAll(_message.Message):
    __slots__ = ("origin", "after_position")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    origin: SubscribeOrigin
    after_position: int
    def __init__(self, origin: _Optional[_Union[SubscribeOrigin, str]] = ..., after_position: _Optional[int] = ...) -> None: ...

class SubscribeStream(_message.Message):
    __slots__ = ("stream", "origin", "after_version")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    origin: SubscribeOrigin
    after_version: int
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., origin: _Optional[_Union[SubscribeOrigin, str]] = ..., after_version: _Optional[int] = ...) -> None: ...

class SubscriptionFilter(_message.Message):
    __slots__ = ("stream_types", "stream_type_prefixes", "event_types", "event_type_prefixes")
    STREAM_TYPES_FIELD_NUMBER: _ClassVar[int]
    STREAM_TYPE_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    stream_types: _containers.RepeatedScalarFieldContainer[str]
    stream_type_prefixes: _containers.RepeatedScalarFieldContainer[str]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    event_type_prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_types: _Optional[_Iterable[str]] = ..., stream_type_prefixes: _Optional[_Iterable[str]] = ..., event_types: _Optional[_Iterable[str]] = ..., event_type_prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("all", "stream", "filter", "checkpoint_interval")
    ALL_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    all: SubscribeAll
    stream: SubscribeStream
    filter: SubscriptionFilter
    checkpoint_interval: int
    def __init__(self, all: _Optional[_Union[SubscribeAll, _Mapping]] = ..., stream: _Optional[_Union[SubscribeStream, _Mapping]] = ..., filter: _Optional[_Union[SubscriptionFilter, _Mapping]] = ..., checkpoint_interval: _Optional[int] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events", "caught_up", "checkpoint")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    events: SubscribeEvents
    caught_up: CaughtUp
    checkpoint: Checkpoint
    def __init__(self, events: _Optional[_Union[SubscribeEvents, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class SubscribeEvents(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream", "version", "event_count", "first_position", "last_position", "created", "last_appended", "state", "rules", "rules_revision", "rules_are_type_default")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LAST_APPENDED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    RULES_REVISION_FIELD_NUMBER: _ClassVar[int]
    RULES_ARE_TYPE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    version: int
    event_count: int
    first_position: int
    last_position: int
    created: _timestamp_pb2.Timestamp
    last_appended: _timestamp_pb2.Timestamp
    state: StreamState
    rules: StreamRules
    rules_revision: int
    rules_are_type_default: bool
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., version: _Optional[int] = ..., event_count: _Optional[int] = ..., first_position: _Optional[int] = ..., last_position: _Optional[int] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_appended: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[StreamState, str]] = ..., rules: _Optional[_Union[StreamRules, _Mapping]] = ..., rules_revision: _Optional[int] = ..., rules_are_type_default: _Optional[bool] = ...) -> None: ...

class StreamRules(_message.Message):
    __slots__ = ("max_count", "truncate_before", "max_age_seconds")
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_count: int
    truncate_before: int
    max_age_seconds: int
    def __init__(self, max_count: _Optional[int] = ..., truncate_before: _Optional[int] = ..., max_age_seconds: _Optional[int] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("stream_type", "key_prefix", "include_deleted", "page_size", "page_token")
    STREAM_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stream_type: str
    key_prefix: str
    include_deleted: bool
    page_size: int
    page_token: str
    def __init__(self, stream_type: _Optional[str] = ..., key_prefix: _Optional[str] = ..., include_deleted: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamInfo]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: StreamInfo
    def __init__(self, info: _Optional[_Union[StreamInfo, _Mapping]] = ...) -> None: ...

class DeleteStreamRequest(_message.Message):
    __slots__ = ("stream", "expected_version", "tombstone")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    expected_version: ExpectedVersion
    tombstone: bool
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., expected_version: _Optional[_Union[ExpectedVersion, _Mapping]] = ..., tombstone: _Optional[bool] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ("deleted_through_version",)
    DELETED_THROUGH_VERSION_FIELD_NUMBER: _ClassVar[int]
    deleted_through_version: int
    def __init__(self, deleted_through_version: _Optional[int] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("held",)
    HELD_FIELD_NUMBER: _ClassVar[int]
    held: _containers.RepeatedCompositeFieldContainer[BackupHeldFile]
    def __init__(self, held: _Optional[_Iterable[_Union[BackupHeldFile, _Mapping]]] = ...) -> None: ...

class BackupHeldFile(_message.Message):
    __slots__ = ("name", "length", "tail_crc32c")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    TAIL_CRC32C_FIELD_NUMBER: _ClassVar[int]
    name: str
    length: int
    tail_crc32c: int
    def __init__(self, name: _Optional[str] = ..., length: _Optional[int] = ..., tail_crc32c: _Optional[int] = ...) -> None: ...

class BackupResponse(_message.Message):
    __slots__ = ("plan", "chunk")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    plan: BackupPlan
    chunk: BackupChunk
    def __init__(self, plan: _Optional[_Union[BackupPlan, _Mapping]] = ..., chunk: _Optional[_Union[BackupChunk, _Mapping]] = ...) -> None: ...

class BackupPlan(_message.Message):
    __slots__ = ("position", "files", "server_version")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    position: int
    files: _containers.RepeatedCompositeFieldContainer[BackupFile]
    server_version: str
    def __init__(self, position: _Optional[int] = ..., files: _Optional[_Iterable[_Union[BackupFile, _Mapping]]] = ..., server_version: _Optional[str] = ...) -> None: ...

class BackupFile(_message.Message):
    __slots__ = ("name", "length", "fetch_from")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    FETCH_FROM_FIELD_NUMBER: _ClassVar[int]
    name: str
    length: int
    fetch_from: int
    def __init__(self, name: _Optional[str] = ..., length: _Optional[int] = ..., fetch_from: _Optional[int] = ...) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("name", "offset", "data", "crc32c")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    data: bytes
    crc32c: int
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32c: _Optional[int] = ...) -> None: ...

class SaveSnapshotRequest(_message.Message):
    __slots__ = ("stream", "version", "type", "data")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    version: int
    type: str
    data: bytes
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., version: _Optional[int] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class SaveSnapshotResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("stream", "version", "type", "data", "created")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    version: int
    type: str
    data: bytes
    created: _timestamp_pb2.Timestamp
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., version: _Optional[int] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadFromSnapshotRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ...) -> None: ...

class ReadFromSnapshotResponse(_message.Message):
    __slots__ = ("events", "snapshot")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    snapshot: Snapshot
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class SetStreamRulesRequest(_message.Message):
    __slots__ = ("stream", "rules", "expected_revision")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    stream: StreamId
    rules: StreamRules
    expected_revision: int
    def __init__(self, stream: _Optional[_Union[StreamId, _Mapping]] = ..., rules: _Optional[_Union[StreamRules, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class ScavengeRequest(_message.Message):
    __slots__ = ("dry_run", "rate_limit_bytes_per_second")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    rate_limit_bytes_per_second: int
    def __init__(self, dry_run: _Optional[bool] = ..., rate_limit_bytes_per_second: _Optional[int] = ...) -> None: ...

class ScavengeResponse(_message.Message):
    __slots__ = ("dry_run", "segments_total", "segments_done", "segments_rewritten", "segments_skipped", "bytes_read", "bytes_freed", "events_reclaimed", "by_type", "done")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BYTES_READ_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    segments_total: int
    segments_done: int
    segments_rewritten: int
    segments_skipped: int
    bytes_read: int
    bytes_freed: int
    events_reclaimed: int
    by_type: _containers.RepeatedCompositeFieldContainer[ScavengedStreamType]
    done: bool
    def __init__(self, dry_run: _Optional[bool] = ..., segments_total: _Optional[int] = ..., segments_done: _Optional[int] = ..., segments_rewritten: _Optional[int] = ..., segments_skipped: _Optional[int] = ..., bytes_read: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., events_reclaimed: _Optional[int] = ..., by_type: _Optional[_Iterable[_Union[ScavengedStreamType, _Mapping]]] = ..., done: _Optional[bool] = ...) -> None: ...

class ScavengedStreamType(_message.Message):
    __slots__ = ("stream_type", "events", "bytes")
    STREAM_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    stream_type: str
    events: int
    bytes: int
    def __init__(self, stream_type: _Optional[str] = ..., events: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class SetStreamRulesResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("version", "backend", "started", "state", "write_refusal", "store")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WRITE_REFUSAL_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    version: str
    backend: str
    started: _timestamp_pb2.Timestamp
    state: ServerState
    write_refusal: str
    store: StoreFigures
    def __init__(self, version: _Optional[str] = ..., backend: _Optional[str] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[ServerState, str]] = ..., write_refusal: _Optional[str] = ..., store: _Optional[_Union[StoreFigures, _Mapping]] = ...) -> None: ...

class StoreFigures(_message.Message):
    __slots__ = ("streams", "events", "log_bytes", "log_segments")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOG_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    streams: int
    events: int
    log_bytes: int
    log_segments: int
    def __init__(self, streams: _Optional[int] = ..., events: _Optional[int] = ..., log_bytes: _Optional[int] = ..., log_segments: _Optional[int] = ...) -> None: ...
