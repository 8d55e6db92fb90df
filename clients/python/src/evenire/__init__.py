"""Python client for Evenire, an event store served over gRPC.

    from evenire import EvenireClient, EventData, StreamId

    with EvenireClient("127.0.0.1:5243") as client:
        order = StreamId.new("order")
        client.append(order, [EventData.json("Placed", {"total": 42})], expected="no_stream")
        for event in client.read(order):
            print(event.version, event.type, event.json())

The generated messages and stubs are in `evenire.v1`.
"""

from .client import (
    AppendResult,
    CaughtUp,
    Checkpoint,
    EvenireClient,
    EventData,
    FromSnapshot,
    RecordedEvent,
    ScavengeReport,
    ServerInfo,
    Snapshot,
    StreamId,
    StreamInfo,
)
from .aio import AsyncEvenireClient
from .errors import (
    DataLoss,
    EvenireError,
    EventIdConflict,
    InvalidArgument,
    PermissionDenied,
    StreamNotFound,
    StreamTombstoned,
    Unauthenticated,
    Unavailable,
    WrongExpectedVersion,
)

__all__ = [
    "AppendResult", "AsyncEvenireClient", "CaughtUp", "Checkpoint", "DataLoss", "EvenireClient", "EvenireError",
    "EventData", "EventIdConflict", "FromSnapshot", "InvalidArgument", "PermissionDenied", "RecordedEvent",
    "ScavengeReport", "ServerInfo", "Snapshot", "StreamId",
    "StreamInfo", "StreamNotFound", "StreamTombstoned", "Unauthenticated", "Unavailable",
    "WrongExpectedVersion",
]
