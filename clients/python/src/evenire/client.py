"""A thin, idiomatic wrapper over the generated gRPC stubs."""

from __future__ import annotations

import json as _json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import grpc

from .errors import EvenireError, from_rpc_error
from .v1 import evenire_pb2 as pb
from .v1 import evenire_pb2_grpc as pb_grpc

#: Largest response accepted: room for the server's largest event (4 MiB by default).
MAX_RESPONSE_BYTES = 64 << 20

Expected = Union[str, int]
"""An expected version: "any", "no_stream", "stream_exists", or an exact version."""

Origin = Union[str, int]
"""Where a read starts: "start", "end", or a version (a position for read_all)."""


@dataclass(frozen=True)
class StreamId:
    """Names a stream: a type ("order") and a UUID key."""

    type: str
    key: str

    @classmethod
    def new(cls, stream_type: str) -> "StreamId":
        """A stream of `stream_type` with a fresh random key."""
        return cls(stream_type, str(uuid.uuid4()))

    def __str__(self) -> str:
        return f"{self.type}/{self.key}"

    def _proto(self) -> pb.StreamId:
        return pb.StreamId(key=str(self.key), type=self.type)


@dataclass(frozen=True)
class EventData:
    """An event to append. The fresh id makes a retry of the same value idempotent."""

    type: str
    data: bytes = b""
    metadata: bytes = b""
    id: Optional[str] = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def json(cls, event_type: str, value: Any, metadata: Any = None) -> "EventData":
        """An event whose data (and metadata, if given) is `value` as JSON."""
        meta = b"" if metadata is None else _json.dumps(metadata).encode()
        return cls(event_type, _json.dumps(value).encode(), meta)

    def _proto(self) -> pb.EventData:
        return pb.EventData(id=self.id or "", type=self.type, data=self.data, metadata=self.metadata)


def _time(t: Any) -> datetime:
    """A protobuf Timestamp as an aware datetime in UTC."""
    return datetime.fromtimestamp(t.seconds + t.nanos / 1e9, tz=timezone.utc)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as the store keeps it."""

    id: str
    type: str
    data: bytes
    metadata: bytes
    stream: StreamId
    version: int
    position: int
    created: datetime

    def json(self) -> Any:
        """The data, parsed as JSON."""
        return _json.loads(self.data)

    @classmethod
    def _from(cls, e: pb.RecordedEvent) -> "RecordedEvent":
        return cls(e.id, e.type, e.data, e.metadata, StreamId(e.stream.type, e.stream.key),
                   e.version, e.position, _time(e.created))


@dataclass(frozen=True)
class AppendResult:
    """Where an append landed: the stream's new version and the last event's position."""

    version: int
    position: int


@dataclass(frozen=True)
class CaughtUp:
    """A subscription delivered its history; what follows is live."""

    position: Optional[int]


@dataclass(frozen=True)
class Checkpoint:
    """A filtered subscription to all scanned this far without a match."""

    position: int


@dataclass(frozen=True)
class Snapshot:
    """A stream's state at a version, as it was saved: not an event (no position)."""

    stream: StreamId
    version: int
    type: str
    data: bytes
    created: datetime

    def json(self) -> Any:
        """The data, parsed as JSON."""
        return _json.loads(self.data)

    @classmethod
    def _from(cls, s: pb.Snapshot) -> "Snapshot":
        return cls(StreamId(s.stream.type, s.stream.key), s.version, s.type, s.data, _time(s.created))


@dataclass(frozen=True)
class FromSnapshot:
    """What an aggregate is rebuilt from: its latest snapshot (None without one) and the
    events after the snapshot's version, in order."""

    snapshot: Optional[Snapshot]
    events: list


@dataclass(frozen=True)
class StreamInfo:
    """What the store knows about a stream. `state` is "live", "deleted" or "tombstoned"."""

    stream: StreamId
    version: int
    event_count: int
    first_position: Optional[int]
    last_position: Optional[int]
    created: datetime
    last_appended: datetime
    state: str
    #: What reads keep: {"max_count": n, "truncate_before": v, "max_age_seconds": s}, each
    #: None when not set.
    rules: dict = field(default_factory=dict)
    #: How many times its own rules were set: what `set_stream_rules` expects.
    rules_revision: int = 0
    #: Whether `rules` are the server's default for the stream's type (it has none of its own).
    rules_are_type_default: bool = False

    @classmethod
    def _from(cls, i: pb.StreamInfo) -> "StreamInfo":
        states = {pb.STREAM_STATE_LIVE: "live", pb.STREAM_STATE_DELETED: "deleted",
                  pb.STREAM_STATE_TOMBSTONED: "tombstoned"}
        return cls(
            StreamId(i.stream.type, i.stream.key), i.version, i.event_count,
            i.first_position if i.HasField("first_position") else None,
            i.last_position if i.HasField("last_position") else None,
            _time(i.created), _time(i.last_appended), states.get(i.state, "unknown"),
            _rules_from(i.rules), i.rules_revision, i.rules_are_type_default,
        )


@dataclass(frozen=True)
class ServerInfo:
    """What a server is and how it stands. `state` is "starting", "serving",
    "refusing_writes" or "stopping"; health reports SERVING in "serving" alone."""

    version: str
    backend: str
    started: datetime
    state: str
    #: Why writes are refused (state "refusing_writes"); None otherwise.
    write_refusal: Optional[str]
    #: What the store holds: {"streams", "events", "log_bytes", "log_segments"} (the last
    #: two None where the backend cannot tell); None while the store opens, and for a
    #: credential limited to some stream types.
    store: Optional[dict]

    @classmethod
    def _from(cls, r: pb.GetServerInfoResponse) -> "ServerInfo":
        states = {pb.SERVER_STATE_STARTING: "starting", pb.SERVER_STATE_SERVING: "serving",
                  pb.SERVER_STATE_REFUSING_WRITES: "refusing_writes", pb.SERVER_STATE_STOPPING: "stopping"}
        store = None
        if r.HasField("store"):
            s = r.store
            store = {"streams": s.streams, "events": s.events,
                     "log_bytes": s.log_bytes if s.HasField("log_bytes") else None,
                     "log_segments": s.log_segments if s.HasField("log_segments") else None}
        return cls(r.version, r.backend, _time(r.started), states.get(r.state, "unknown"),
                   r.write_refusal or None, store)


@dataclass(frozen=True)
class ScavengeReport:
    """Where a scavenge is, and what it has freed so far (in a dry run, would free);
    the last report has `done` set."""

    dry_run: bool
    segments_total: int
    segments_done: int
    segments_rewritten: int
    segments_skipped: int
    bytes_read: int
    bytes_freed: int
    events_reclaimed: int
    #: What was reclaimed by stream type: {type: (events, bytes)}.
    by_type: dict
    done: bool

    @classmethod
    def _from(cls, r: pb.ScavengeResponse) -> "ScavengeReport":
        return cls(r.dry_run, r.segments_total, r.segments_done, r.segments_rewritten,
                   r.segments_skipped, r.bytes_read, r.bytes_freed, r.events_reclaimed,
                   {t.stream_type: (t.events, t.bytes) for t in r.by_type}, r.done)


def _scavenge_request(dry_run: bool, rate_limit_bytes_per_second: Optional[int]) -> pb.ScavengeRequest:
    return pb.ScavengeRequest(dry_run=dry_run,
                              rate_limit_bytes_per_second=rate_limit_bytes_per_second or 0)


def _scavenge_done(last: Optional[ScavengeReport]) -> ScavengeReport:
    if last is None or not last.done:
        raise EvenireError("the scavenge's reports ended before it was done")
    return last


def _rules_from(rules: pb.StreamRules) -> dict:
    return {name: getattr(rules, name) if rules.HasField(name) else None
            for name in ("max_count", "truncate_before", "max_age_seconds")}


def _rules_request(stream: StreamId, max_count: Optional[int], truncate_before: Optional[int],
                   max_age_seconds: Optional[int],
                   expected_revision: Optional[int]) -> pb.SetStreamRulesRequest:
    return pb.SetStreamRulesRequest(
        stream=stream._proto(),
        rules=pb.StreamRules(max_count=max_count, truncate_before=truncate_before,
                             max_age_seconds=max_age_seconds),
        expected_revision=expected_revision)


def _expected(expected: Expected) -> pb.ExpectedVersion:
    states = {"any": pb.EXPECTED_STATE_ANY, "no_stream": pb.EXPECTED_STATE_NO_STREAM,
              "stream_exists": pb.EXPECTED_STATE_STREAM_EXISTS}
    if isinstance(expected, bool) or not isinstance(expected, (int, str)):
        raise TypeError(f"expected version {expected!r}: use 'any', 'no_stream', 'stream_exists' or an int")
    if isinstance(expected, int):
        return pb.ExpectedVersion(exact=expected)
    if expected not in states:
        raise ValueError(f"expected version {expected!r}: use 'any', 'no_stream', 'stream_exists' or an int")
    return pb.ExpectedVersion(state=states[expected])


def _origin(origin: Origin) -> dict:
    if isinstance(origin, bool):
        raise TypeError(f"start {origin!r}: use 'start', 'end' or an int")
    if isinstance(origin, int):
        return {"version": origin}
    origins = {"start": pb.READ_ORIGIN_START, "end": pb.READ_ORIGIN_END}
    if origin not in origins:
        raise ValueError(f"start {origin!r}: use 'start', 'end' or an int")
    return {"origin": origins[origin]}


def _channel(
    target: str,
    root_certificates: Optional[bytes],
    certificate_chain: Optional[bytes],
    private_key: Optional[bytes],
    token: Optional[str],
    grpc_module: Any = grpc,
) -> Any:
    """A channel to `target` with the TLS and token settings of `EvenireClient`; an
    asyncio one with `grpc_module=grpc.aio`."""
    scheme, _, address = target.strip().rpartition("://")
    host, _, port = address.rpartition(":")
    if scheme not in ("", "http", "https") or not host or not port.isdigit():
        raise ValueError(f"{target}: the address must be host:port, http://host:port or https://host:port")
    tls = scheme == "https" or any(x is not None for x in (root_certificates, certificate_chain, private_key))
    if tls and scheme == "http":
        raise ValueError(f"{target}: TLS settings were given, so the address must start with https://")
    options = [("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)]
    if not tls and token is None:
        return grpc_module.insecure_channel(address, options=options)
    if tls:
        credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
    elif _is_loopback(address):
        # Call credentials need a channel gRPC deems secure: a local one is, to loopback.
        credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    else:
        raise ValueError(f"{target}: a token is sent only over TLS (https://) or to a loopback address")
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc_module.secure_channel(address, credentials, options=options)


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _direction(backward: bool) -> int:
    return pb.READ_DIRECTION_BACKWARD if backward else pb.READ_DIRECTION_FORWARD


class EvenireClient:
    """A connection to an Evenire server. Calls raise `evenire.EvenireError` subclasses.

    `target` is `host:port`, `http://host:port` or `https://host:port`; without one,
    `EVENIRE_SERVER`, else `127.0.0.1:5243`. TLS is used
    for `https://` or when `root_certificates` or a client certificate is given: the
    CA's certificate (PEM bytes; the system's roots without it), and for mutual TLS
    `certificate_chain` and `private_key` (PEM bytes). `token` is sent as
    `authorization: Bearer <token>` with every call, as gRPC call credentials: over TLS,
    or in clear to a loopback address only.
    """

    def __init__(
        self,
        target: Optional[str] = None,
        *,
        channel: Optional[grpc.Channel] = None,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        token: Optional[str] = None,
    ) -> None:
        target = target or os.environ.get("EVENIRE_SERVER") or "127.0.0.1:5243"
        self._channel = channel or _channel(
            target, root_certificates, certificate_chain, private_key, token
        )
        self._stub = pb_grpc.EventStoreServiceStub(self._channel)

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def __enter__(self) -> "EvenireClient":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def append(self, stream: StreamId, events: Sequence[EventData], expected: Expected = "any",
               *, timeout: Optional[float] = None) -> AppendResult:
        """Appends `events` atomically if the stream meets `expected`; durable on return."""
        try:
            response = self._stub.Append(_append_request(stream, events, expected), timeout=timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return AppendResult(response.version, response.position)

    def read(self, stream: StreamId, *, start: Origin = "start", backward: bool = False,
             max_count: Optional[int] = None) -> Iterator[RecordedEvent]:
        """The stream's events from `start` ("start", "end" or a version)."""
        return self._events(self._stub.Read(_read_request(stream, start, backward, max_count)))

    def read_all(self, *, start: Origin = "start", backward: bool = False,
                 max_count: Optional[int] = None) -> Iterator[RecordedEvent]:
        """Every event of the store in position order from `start` ("start", "end" or a position)."""
        return self._events(self._stub.ReadAll(_read_all_request(start, backward, max_count)))

    def subscribe(self, stream: Optional[StreamId] = None, *, after: Optional[int] = None,
                  from_end: bool = False, stream_types: Iterable[str] = (),
                  stream_type_prefixes: Iterable[str] = (), event_types: Iterable[str] = (),
                  event_type_prefixes: Iterable[str] = (), checkpoint_interval: int = 0,
                  ) -> Iterator[Union[RecordedEvent, CaughtUp, Checkpoint]]:
        """Follows the whole store (or one stream): history, then live, until you stop iterating.

        Starts at the beginning, after a position (a version for a stream) you kept, or
        with `from_end` at new events only. To resume after a dropped connection, call
        again with `after` set to the last position (or version) you received.
        """
        request = _subscribe_request(stream, after, from_end, stream_types, stream_type_prefixes,
                                     event_types, event_type_prefixes, checkpoint_interval)
        return self._subscription(self._stub.Subscribe(request))

    def list_streams(self, *, stream_type: Optional[str] = None, key_prefix: Optional[str] = None,
                     include_deleted: bool = False, page_size: int = 0) -> Iterator[StreamInfo]:
        """Every stream (live ones unless `include_deleted`), in (type, key) order, page by page."""
        token = ""
        while True:
            request = pb.ListStreamsRequest(stream_type=stream_type or "", key_prefix=key_prefix or "",
                                            include_deleted=include_deleted, page_size=page_size,
                                            page_token=token)
            try:
                page = self._stub.ListStreams(request)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None
            yield from (StreamInfo._from(i) for i in page.streams)
            token = page.next_page_token
            if not token:
                return

    def get_stream(self, stream: StreamId) -> StreamInfo:
        """What the store knows about a stream; StreamNotFound for one never written."""
        try:
            return StreamInfo._from(self._stub.GetStream(pb.GetStreamRequest(stream=stream._proto())).info)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def server_info(self) -> ServerInfo:
        """What the server is and how it stands; it answers while the store recovers too."""
        try:
            return ServerInfo._from(self._stub.GetServerInfo(pb.GetServerInfoRequest()))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def delete_stream(self, stream: StreamId, expected: Expected = "any", *, tombstone: bool = False) -> int:
        """Deletes a stream (softly, or for good with `tombstone`); returns the version deleted through."""
        try:
            return self._stub.DeleteStream(_delete_request(stream, expected, tombstone)).deleted_through_version
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def set_stream_rules(self, stream: StreamId, *, max_count: Optional[int] = None,
                         truncate_before: Optional[int] = None,
                         max_age_seconds: Optional[int] = None,
                         expected_revision: Optional[int] = None) -> int:
        """Replaces what a stream keeps readable (no rule: clears them), if its rules are at
        `expected_revision` (None: any); returns their new revision. Needs the admin role."""
        try:
            request = _rules_request(stream, max_count, truncate_before, max_age_seconds,
                                     expected_revision)
            return self._stub.SetStreamRules(request).revision
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def scavenge(self, *, dry_run: bool = False,
                 rate_limit_bytes_per_second: Optional[int] = None) -> Iterator[ScavengeReport]:
        """Starts a scavenge (needs the admin role, for every stream type): the server rewrites
        its sealed segments without what deletes and stream rules removed, and reports after each
        one. `dry_run` changes nothing and reports what it would free; the rate limit caps its
        disk traffic (None: the server's setting). It goes on if the caller stops iterating."""
        responses = self._stub.Scavenge(_scavenge_request(dry_run, rate_limit_bytes_per_second))
        try:
            for response in responses:
                yield ScavengeReport._from(response)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            responses.cancel()

    def scavenge_to_end(self, *, dry_run: bool = False,
                        rate_limit_bytes_per_second: Optional[int] = None) -> ScavengeReport:
        """Runs a scavenge to its end and returns its last report."""
        last = None
        for last in self.scavenge(dry_run=dry_run, rate_limit_bytes_per_second=rate_limit_bytes_per_second):
            pass
        return _scavenge_done(last)

    def save_snapshot(self, stream: StreamId, version: int, type: str, data: Union[bytes, str]) -> None:
        """Saves a stream's state at one of its versions. Not an event: it takes no position
        and changes no version; the server keeps the newest few per stream."""
        try:
            self._stub.SaveSnapshot(_snapshot_request(stream, version, type, data))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def read_from_snapshot(self, stream: StreamId) -> FromSnapshot:
        """The stream's latest snapshot and every event after it, in one call."""
        responses = self._stub.ReadFromSnapshot(pb.ReadFromSnapshotRequest(stream=stream._proto()))
        try:
            return _from_snapshot(list(responses))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    @staticmethod
    def _events(responses: Any) -> Iterator[RecordedEvent]:
        try:
            for response in responses:
                for event in response.events:
                    yield RecordedEvent._from(event)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            responses.cancel()

    @staticmethod
    def _subscription(responses: Any) -> Iterator[Union[RecordedEvent, CaughtUp, Checkpoint]]:
        try:
            for response in responses:
                yield from _subscription_items(response)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            responses.cancel()


def _append_request(stream: StreamId, events: Sequence[EventData], expected: Expected) -> pb.AppendRequest:
    return pb.AppendRequest(stream=stream._proto(), expected_version=_expected(expected),
                            events=[e._proto() for e in events])


def _read_request(stream: StreamId, start: Origin, backward: bool, max_count: Optional[int]) -> pb.ReadRequest:
    return pb.ReadRequest(stream=stream._proto(), direction=_direction(backward),
                          max_count=max_count, **_origin(start))


def _delete_request(stream: StreamId, expected: Expected, tombstone: bool) -> pb.DeleteStreamRequest:
    return pb.DeleteStreamRequest(stream=stream._proto(), expected_version=_expected(expected),
                                  tombstone=tombstone)


def _read_all_request(start: Origin, backward: bool, max_count: Optional[int]) -> pb.ReadAllRequest:
    origin = _origin(start)
    if "version" in origin:
        origin = {"position": origin.pop("version")}
    return pb.ReadAllRequest(direction=_direction(backward), max_count=max_count, **origin)


def _subscribe_request(stream: Optional[StreamId], after: Optional[int], from_end: bool,
                       stream_types: Iterable[str], stream_type_prefixes: Iterable[str],
                       event_types: Iterable[str], event_type_prefixes: Iterable[str],
                       checkpoint_interval: int) -> pb.SubscribeRequest:
    if from_end and after is not None:
        raise ValueError("pass either after or from_end")
    if after is not None:
        start = {"after_version": after} if stream else {"after_position": after}
    else:
        start = {"origin": pb.SUBSCRIBE_ORIGIN_END if from_end else pb.SUBSCRIBE_ORIGIN_START}
    target = ({"stream": pb.SubscribeStream(stream=stream._proto(), **start)} if stream
              else {"all": pb.SubscribeAll(**start)})
    return pb.SubscribeRequest(
        filter=pb.SubscriptionFilter(
            stream_types=list(stream_types), stream_type_prefixes=list(stream_type_prefixes),
            event_types=list(event_types), event_type_prefixes=list(event_type_prefixes)),
        checkpoint_interval=checkpoint_interval, **target)


def _subscription_items(response: pb.SubscribeResponse) -> Iterator[Union[RecordedEvent, CaughtUp, Checkpoint]]:
    """What one subscription message holds, as the clients yield it."""
    kind = response.WhichOneof("message")
    if kind == "events":
        for event in response.events.events:
            yield RecordedEvent._from(event)
    elif kind == "caught_up":
        has = response.caught_up.HasField("position")
        yield CaughtUp(response.caught_up.position if has else None)
    elif kind == "checkpoint":
        yield Checkpoint(response.checkpoint.position)


def _snapshot_request(stream: StreamId, version: int, type: str,
                      data: Union[bytes, str]) -> pb.SaveSnapshotRequest:
    payload = data.encode() if isinstance(data, str) else data
    return pb.SaveSnapshotRequest(stream=stream._proto(), version=version, type=type, data=payload)


def _from_snapshot(responses: Sequence[Any]) -> FromSnapshot:
    snapshot = next((Snapshot._from(r.snapshot) for r in responses if r.HasField("snapshot")), None)
    events = [RecordedEvent._from(e) for r in responses for e in r.events]
    return FromSnapshot(snapshot, events)
