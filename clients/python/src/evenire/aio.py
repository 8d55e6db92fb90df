"""The asyncio client, on `grpc.aio`: the same calls as `EvenireClient`, awaited, with
reads and subscriptions as async iterators.

    from evenire.aio import AsyncEvenireClient

    async with AsyncEvenireClient("127.0.0.1:5243") as client:
        await client.append(order, [EventData.json("Placed", {"total": 42})])
        async for event in client.read(order):
            print(event.version, event.json())
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator, Iterable, Optional, Sequence, Union

import grpc
import grpc.aio

from .client import (
    AppendResult, CaughtUp, Checkpoint, EventData, Expected, FromSnapshot, Origin, RecordedEvent,
    ScavengeReport, ServerInfo, StreamId, StreamInfo, _append_request, _channel, _delete_request, _from_snapshot,
    _read_all_request, _read_request, _rules_request, _scavenge_done, _scavenge_request, _snapshot_request,
    _subscribe_request, _subscription_items,
)
from .errors import from_rpc_error
from .v1 import evenire_pb2 as pb
from .v1 import evenire_pb2_grpc as pb_grpc


class AsyncEvenireClient:
    """`EvenireClient` for asyncio: the same address forms, TLS and token settings."""

    def __init__(
        self,
        target: Optional[str] = None,
        *,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        token: Optional[str] = None,
    ) -> None:
        target = target or os.environ.get("EVENIRE_SERVER") or "127.0.0.1:5243"
        self._channel = _channel(target, root_certificates, certificate_chain, private_key, token,
                                 grpc_module=grpc.aio)
        self._stub = pb_grpc.EventStoreServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncEvenireClient":
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def append(self, stream: StreamId, events: Sequence[EventData], expected: Expected = "any",
                     *, timeout: Optional[float] = None) -> AppendResult:
        """Appends `events` atomically if the stream meets `expected`; durable on return."""
        try:
            response = await self._stub.Append(_append_request(stream, events, expected), timeout=timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return AppendResult(response.version, response.position)

    def read(self, stream: StreamId, *, start: Origin = "start", backward: bool = False,
             max_count: Optional[int] = None) -> AsyncIterator[RecordedEvent]:
        """The stream's events from `start` ("start", "end" or a version)."""
        return _events(self._stub.Read(_read_request(stream, start, backward, max_count)))

    def read_all(self, *, start: Origin = "start", backward: bool = False,
                 max_count: Optional[int] = None) -> AsyncIterator[RecordedEvent]:
        """Every event of the store in position order from `start` ("start", "end" or a position)."""
        return _events(self._stub.ReadAll(_read_all_request(start, backward, max_count)))

    def subscribe(self, stream: Optional[StreamId] = None, *, after: Optional[int] = None,
                  from_end: bool = False, stream_types: Iterable[str] = (),
                  stream_type_prefixes: Iterable[str] = (), event_types: Iterable[str] = (),
                  event_type_prefixes: Iterable[str] = (), checkpoint_interval: int = 0,
                  ) -> AsyncIterator[Union[RecordedEvent, CaughtUp, Checkpoint]]:
        """History, then live, as `EvenireClient.subscribe`; stop by leaving the loop."""
        request = _subscribe_request(stream, after, from_end, stream_types, stream_type_prefixes,
                                     event_types, event_type_prefixes, checkpoint_interval)
        return _subscription(self._stub.Subscribe(request))

    async def list_streams(self, *, stream_type: Optional[str] = None, key_prefix: Optional[str] = None,
                           include_deleted: bool = False, page_size: int = 0) -> list[StreamInfo]:
        """Every stream (live ones unless `include_deleted`), in (type, key) order."""
        streams: list[StreamInfo] = []
        token = ""
        while True:
            request = pb.ListStreamsRequest(stream_type=stream_type or "", key_prefix=key_prefix or "",
                                            include_deleted=include_deleted, page_size=page_size,
                                            page_token=token)
            try:
                page = await self._stub.ListStreams(request)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None
            streams.extend(StreamInfo._from(i) for i in page.streams)
            token = page.next_page_token
            if not token:
                return streams

    async def get_stream(self, stream: StreamId) -> StreamInfo:
        """What the store knows about a stream; StreamNotFound for one never written."""
        try:
            response = await self._stub.GetStream(pb.GetStreamRequest(stream=stream._proto()))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return StreamInfo._from(response.info)

    async def server_info(self) -> ServerInfo:
        """What the server is and how it stands; it answers while the store recovers too."""
        try:
            response = await self._stub.GetServerInfo(pb.GetServerInfoRequest())
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return ServerInfo._from(response)

    async def delete_stream(self, stream: StreamId, expected: Expected = "any", *,
                            tombstone: bool = False) -> int:
        """Deletes a stream (softly, or for good with `tombstone`); the version deleted through."""
        try:
            response = await self._stub.DeleteStream(_delete_request(stream, expected, tombstone))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return response.deleted_through_version

    async def set_stream_rules(self, stream: StreamId, *, max_count: Optional[int] = None,
                               truncate_before: Optional[int] = None,
                               max_age_seconds: Optional[int] = None,
                               expected_revision: Optional[int] = None) -> int:
        """Replaces what a stream keeps readable; returns the rules' new revision."""
        try:
            request = _rules_request(stream, max_count, truncate_before, max_age_seconds,
                                     expected_revision)
            return (await self._stub.SetStreamRules(request)).revision
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def scavenge(self, *, dry_run: bool = False,
                       rate_limit_bytes_per_second: Optional[int] = None) -> AsyncIterator[ScavengeReport]:
        """Starts a scavenge and yields its reports; see `EvenireClient.scavenge`."""
        call = self._stub.Scavenge(_scavenge_request(dry_run, rate_limit_bytes_per_second))
        try:
            async for response in call:
                yield ScavengeReport._from(response)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            call.cancel()

    async def scavenge_to_end(self, *, dry_run: bool = False,
                              rate_limit_bytes_per_second: Optional[int] = None) -> ScavengeReport:
        """Runs a scavenge to its end and returns its last report."""
        last = None
        async for last in self.scavenge(dry_run=dry_run, rate_limit_bytes_per_second=rate_limit_bytes_per_second):
            pass
        return _scavenge_done(last)

    async def save_snapshot(self, stream: StreamId, version: int, type: str,
                            data: Union[bytes, str]) -> None:
        """Saves a stream's state at one of its versions (not an event)."""
        try:
            await self._stub.SaveSnapshot(_snapshot_request(stream, version, type, data))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def read_from_snapshot(self, stream: StreamId) -> FromSnapshot:
        """The stream's latest snapshot and every event after it, in one call."""
        call = self._stub.ReadFromSnapshot(pb.ReadFromSnapshotRequest(stream=stream._proto()))
        try:
            return _from_snapshot([response async for response in call])
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None


async def _events(call: Any) -> AsyncIterator[RecordedEvent]:
    try:
        async for response in call:
            for event in response.events:
                yield RecordedEvent._from(event)
    except grpc.RpcError as e:
        raise from_rpc_error(e) from None
    finally:
        call.cancel()


async def _subscription(call: Any) -> AsyncIterator[Union[RecordedEvent, CaughtUp, Checkpoint]]:
    try:
        async for response in call:
            for item in _subscription_items(response):
                yield item
    except grpc.RpcError as e:
        raise from_rpc_error(e) from None
    finally:
        call.cancel()
