"""The Python client against a real server: appends, reads, concurrency errors, retries,
bad input, health, large reads, the global log, subscriptions and administration."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from evenire import (
    CaughtUp,
    EvenireError,
    EventData,
    EventIdConflict,
    InvalidArgument,
    RecordedEvent,
    StreamId,
    StreamNotFound,
    StreamTombstoned,
    WrongExpectedVersion,
)


def numbered(first, count):
    return [EventData.json("Numbered", n) for n in range(first, first + count)]


def test_append_then_read_forward_and_backward(client):
    order = StreamId.new("order")
    result = client.append(order, numbered(0, 5), expected="no_stream")
    assert (result.version, result.position >= 4) == (4, True)
    assert [e.json() for e in client.read(order)] == [0, 1, 2, 3, 4]
    assert [e.json() for e in client.read(order, start="end", backward=True)] == [4, 3, 2, 1, 0]
    assert [e.version for e in client.read(order, start=2, max_count=2)] == [2, 3]
    latest = list(client.read(order, start="end", backward=True, max_count=1))
    assert latest[0].json() == 4 and latest[0].stream == order
    assert list(client.read(order, start="end")) == []


def test_wrong_expected_version_carries_the_actual_version(client):
    order = StreamId.new("order")
    client.append(order, numbered(0, 3))
    with pytest.raises(WrongExpectedVersion) as refused:
        client.append(order, numbered(3, 1), expected=0)
    assert refused.value.actual_version == 2
    with pytest.raises(WrongExpectedVersion) as refused:
        client.append(StreamId.new("order"), numbered(0, 1), expected="stream_exists")
    assert refused.value.actual_version is None


def test_a_retry_returns_the_original_result(client):
    order = StreamId.new("order")
    events = numbered(0, 2)
    first = client.append(order, events, expected="no_stream")
    assert client.append(order, events, expected="no_stream") == first
    assert len(list(client.read(order))) == 2
    with pytest.raises(EventIdConflict):
        client.append(StreamId.new("order"), events)


@pytest.mark.parametrize(
    "stream, events, field",
    [
        (StreamId("order", "not-a-uuid"), [EventData("A")], "stream.key"),
        (StreamId("", "7d0c3a4e-8a5f-4b44-9f0e-1f6d2a3b4c5d"), [EventData("A")], "stream.type"),
        (StreamId.new("order"), [], "events"),
        (StreamId.new("order"), [EventData("")], "events[0].type"),
        (StreamId.new("order"), [EventData("A", id="nope")], "events[0].id"),
    ],
)
def test_invalid_input_names_the_field(client, stream, events, field):
    with pytest.raises(InvalidArgument) as refused:
        client.append(stream, events)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(refused.value)


def test_reading_a_stream_never_written_is_not_found(client):
    with pytest.raises(StreamNotFound):
        list(client.read(StreamId.new("order")))


def test_health_check(server_address):
    with grpc.insecure_channel(server_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "evenire.v1.EventStoreService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_large_read_streams_in_order(client):
    ledger = StreamId.new("ledger")
    for chunk in range(10):
        client.append(ledger, numbered(chunk * 2000, 2000))
    versions = [e.version for e in client.read(ledger)]
    assert versions == list(range(20_000))


def test_read_all_and_subscribe(client):
    sensor = StreamId.new("sensor-py")
    written = client.append(sensor, numbered(0, 3))
    everything = list(client.read_all())
    assert [e.position for e in everything] == list(range(len(everything)))
    assert everything[-1].position >= written.position
    newest = list(client.read_all(start="end", backward=True, max_count=1))
    assert newest[0].position == everything[-1].position

    subscription = client.subscribe(sensor)
    history = [next(subscription) for _ in range(4)]
    assert [m.version for m in history[:3]] == [0, 1, 2]
    assert isinstance(history[3], CaughtUp)
    client.append(sensor, numbered(3, 1))
    live = next(subscription)
    assert isinstance(live, RecordedEvent) and live.version == 3
    subscription.close()

    filtered = client.subscribe(after=written.position - 3, stream_types=["sensor-py"])
    first = next(filtered)
    assert first.stream == sensor and first.version == 0
    filtered.close()


def test_list_get_and_delete_streams(client):
    kind = "admin-py"
    streams = [StreamId.new(kind) for _ in range(5)]
    for stream in streams:
        client.append(stream, numbered(0, 2))
    listed = list(client.list_streams(stream_type=kind, page_size=2))
    assert [s.stream for s in listed] == sorted(streams, key=lambda s: s.key)
    info = client.get_stream(streams[0])
    assert (info.version, info.event_count, info.state) == (1, 2, "live")

    assert client.delete_stream(streams[0], expected=1) == 1
    with pytest.raises(StreamNotFound):
        list(client.read(streams[0]))
    assert client.get_stream(streams[0]).state == "deleted"
    assert client.append(streams[0], numbered(2, 1), expected="no_stream").version == 2

    client.delete_stream(streams[1], tombstone=True)
    with pytest.raises(StreamTombstoned):
        client.append(streams[1], numbered(0, 1))
    with pytest.raises(StreamNotFound):
        client.get_stream(StreamId.new(kind))


def test_server_info_reports_the_state_and_what_the_store_holds(client):
    before = client.server_info()
    assert (before.state, before.write_refusal) == ("serving", None)
    assert before.version and before.backend == "file"
    client.append(StreamId.new("info-py"), numbered(0, 3))
    after = client.server_info()
    assert after.store["streams"] == before.store["streams"] + 1
    assert after.store["events"] == before.store["events"] + 3
    assert after.store["log_bytes"] > before.store["log_bytes"]
    assert after.started == before.started


def test_the_address_is_taken_in_every_form_and_from_evenire_server(server_address, monkeypatch):
    from evenire import EvenireClient, StreamId, StreamNotFound

    monkeypatch.setenv("EVENIRE_SERVER", server_address)
    for client in (EvenireClient(f"http://{server_address}"), EvenireClient(server_address), EvenireClient()):
        with client:
            with pytest.raises(StreamNotFound):
                client.get_stream(StreamId.new("order"))
    for malformed in ("127.0.0.1", "ftp://127.0.0.1:5243", "http://:5243"):
        with pytest.raises(ValueError, match="host:port"):
            EvenireClient(malformed)


def test_the_asyncio_client_appends_reads_subscribes_and_raises_the_same_errors(server_address):
    import asyncio

    from evenire import EventData, StreamId, StreamNotFound, WrongExpectedVersion
    from evenire.aio import AsyncEvenireClient
    from evenire.client import CaughtUp, RecordedEvent

    async def scenario():
        async with AsyncEvenireClient(server_address) as client:
            order = StreamId.new("order")
            result = await client.append(order, [EventData.json("Placed", {"n": n}) for n in range(3)],
                                         expected="no_stream")
            assert result.version == 2
            assert [e.json()["n"] async for e in client.read(order)] == [0, 1, 2]
            assert [e.version async for e in client.read(order, start="end", backward=True, max_count=1)] == [2]
            with pytest.raises(WrongExpectedVersion) as wrong:
                await client.append(order, [EventData.json("Placed", {})], expected=0)
            assert wrong.value.actual_version == 2
            with pytest.raises(StreamNotFound):
                await client.get_stream(StreamId.new("order"))
            assert (await client.get_stream(order)).version == 2
            assert (await client.server_info()).state == "serving"
            await client.save_snapshot(order, 1, "OrderState", b'{"n": 1}')
            restored = await client.read_from_snapshot(order)
            assert restored.snapshot.version == 1 and [e.version for e in restored.events] == [2]
            assert any(s.stream == order for s in await client.list_streams(stream_type="order"))
            seen = []
            async for item in client.subscribe(order):
                if isinstance(item, RecordedEvent):
                    seen.append(item.version)
                elif isinstance(item, CaughtUp):
                    break
            assert seen == [0, 1, 2]
            assert await client.delete_stream(order) == 2
            last = [e async for e in client.read_all(start="end", backward=True, max_count=1)]
            assert len(last) == 1

    asyncio.run(scenario())


def test_a_stream_is_read_from_its_latest_snapshot(client):
    account = StreamId.new("account")
    client.append(account, numbered(0, 5), expected="no_stream")
    assert client.read_from_snapshot(account).snapshot is None
    client.save_snapshot(account, 3, "Balance", '{"balance": 6}')
    read = client.read_from_snapshot(account)
    assert (read.snapshot.version, read.snapshot.type, read.snapshot.json()) == (3, "Balance", {"balance": 6})
    assert read.snapshot.stream == account
    assert [e.json() for e in read.events] == [4]
    with pytest.raises(EvenireError) as refused:
        client.save_snapshot(account, 9, "Balance", b"{}")
    assert refused.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert "readable versions are 0 to 4" in str(refused.value)
    with pytest.raises(StreamNotFound):
        client.read_from_snapshot(StreamId.new("account"))


def test_rules_limit_what_reads_keep(client):
    sensor = StreamId.new("sensor")
    client.append(sensor, numbered(0, 6), expected="no_stream")
    assert client.set_stream_rules(sensor, max_count=2, expected_revision=0) == 1
    assert [e.json() for e in client.read(sensor)] == [4, 5]
    info = client.get_stream(sensor)
    assert (info.rules, info.rules_revision, info.event_count, info.rules_are_type_default) == (
        {"max_count": 2, "truncate_before": None, "max_age_seconds": None}, 1, 2, False)
    with pytest.raises(WrongExpectedVersion) as stale:
        client.set_stream_rules(sensor, truncate_before=1, expected_revision=0)
    assert stale.value.actual_version == 1
    # An age the events are well within keeps them all.
    assert client.set_stream_rules(sensor, max_age_seconds=3600, expected_revision=1) == 2
    assert [e.json() for e in client.read(sensor)] == [0, 1, 2, 3, 4, 5]
    assert client.get_stream(sensor).rules["max_age_seconds"] == 3600
    with pytest.raises(InvalidArgument, match="max_age_seconds"):
        client.set_stream_rules(sensor, max_age_seconds=0)


def test_a_scavenge_reports_then_frees_what_a_delete_removed():
    import asyncio

    from conftest import running_server
    from evenire import EvenireClient, ScavengeReport
    from evenire.aio import AsyncEvenireClient

    with running_server("--segment-size", "4KiB") as address, EvenireClient(address) as client:
        kept, gone = StreamId.new("kept"), StreamId.new("gone")
        for first in range(0, 200, 10):
            client.append(kept, numbered(first, 10))
            client.append(gone, numbered(first, 10))
        client.delete_stream(gone)

        dry = client.scavenge_to_end(dry_run=True)
        assert isinstance(dry, ScavengeReport) and dry.dry_run and dry.done
        assert dry.segments_total >= 2 and dry.bytes_freed > 0
        assert dry.by_type["gone"][0] == dry.events_reclaimed > 0 and "kept" not in dry.by_type

        reports = list(client.scavenge(rate_limit_bytes_per_second=10 << 20))
        assert [r.segments_done for r in reports] == sorted(r.segments_done for r in reports)
        real = reports[-1]
        assert real.done and not real.dry_run
        assert (real.events_reclaimed, real.bytes_freed) == (dry.events_reclaimed, dry.bytes_freed)
        assert [e.json() for e in client.read(kept)] == list(range(200))

        async def nothing_left():
            async with AsyncEvenireClient(address) as aio:
                return await aio.scavenge_to_end(dry_run=True)

        assert asyncio.run(nothing_left()).events_reclaimed == 0
