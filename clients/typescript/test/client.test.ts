// The TypeScript client against a real evenire-server (the binary cargo built), on
// 127.0.0.1:0: the same scenarios as the Python suite.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  EvenireClient,
  EventIdConflictError,
  InvalidArgumentError,
  StreamNotFoundError,
  StreamTombstonedError,
  WrongExpectedVersionError,
  eventJson,
  jsonEvent,
  newStream,
  type RecordedEvent,
  type SubscriptionMessage,
} from "../src/index.js";
import { startServer, stopServer, type RunningServer } from "./server.js";

let server: RunningServer;
let baseUrl: string;
let client: EvenireClient;

before(async () => {
  server = await startServer();
  baseUrl = `http://${server.address}`;
  client = new EvenireClient(baseUrl);
});

after(async () => {
  await stopServer(server);
});

const numbered = (first: number, count: number) =>
  Array.from({ length: count }, (_, i) => jsonEvent("Numbered", first + i));

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

test("append then read forward and backward", async () => {
  const order = newStream("order");
  const result = await client.append(order, numbered(0, 5), "no_stream");
  assert.equal(result.version, 4n);
  const forward = await collect(client.read(order));
  assert.deepEqual(forward.map((e) => eventJson(e)), [0, 1, 2, 3, 4]);
  const backward = await collect(client.read(order, { start: "end", backward: true }));
  assert.deepEqual(backward.map((e) => e.version), [4n, 3n, 2n, 1n, 0n]);
  const page = await collect(client.read(order, { start: 2n, maxCount: 2n }));
  assert.deepEqual(page.map((e) => e.version), [2n, 3n]);
  assert.deepEqual(await collect(client.read(order, { start: "end" })), []);
});

test("a wrong expected version carries the actual version", async () => {
  const order = newStream("order");
  await client.append(order, numbered(0, 3));
  await assert.rejects(client.append(order, numbered(3, 1), 0n), (e: unknown) => {
    assert.ok(e instanceof WrongExpectedVersionError);
    assert.equal(e.actualVersion, 2n);
    return true;
  });
  await assert.rejects(client.append(newStream("order"), numbered(0, 1), "stream_exists"), (e: unknown) => {
    assert.ok(e instanceof WrongExpectedVersionError);
    assert.equal(e.actualVersion, undefined);
    return true;
  });
});

test("a retry returns the original result", async () => {
  const order = newStream("order");
  const events = numbered(0, 2);
  const first = await client.append(order, events, "no_stream");
  assert.deepEqual(await client.append(order, events, "no_stream"), first);
  assert.equal((await collect(client.read(order))).length, 2);
  await assert.rejects(client.append(newStream("order"), events), EventIdConflictError);
});

test("invalid input names the field", async () => {
  const cases: [Parameters<EvenireClient["append"]>, string][] = [
    [[{ type: "order", key: "not-a-uuid" }, numbered(0, 1)], "stream.key"],
    [[newStream(""), numbered(0, 1)], "stream.type"],
    [[newStream("order"), []], "events"],
    [[newStream("order"), [{ type: "" }]], "events[0].type"],
    [[newStream("order"), [{ type: "A", id: "nope" }]], "events[0].id"],
  ];
  for (const [args, field] of cases) {
    await assert.rejects(client.append(...args), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.ok(e.message.includes(field), e.message);
      return true;
    });
  }
  await assert.rejects(collect(client.read(newStream("order"))), StreamNotFoundError);
});

test("health check", async () => {
  const { Health, HealthCheckResponse_ServingStatus } = await import("./health.js");
  // Described at run time, so the client is untyped: give it the one method used.
  const health = createClient(Health, createGrpcTransport({ baseUrl })) as unknown as {
    check(request: { service: string }): Promise<{ status: number }>;
  };
  for (const service of ["", "evenire.v1.EventStoreService"]) {
    const response = await health.check({ service });
    assert.equal(response.status, HealthCheckResponse_ServingStatus.SERVING);
  }
});

test("a large read streams in order", async () => {
  const ledger = newStream("ledger");
  for (let chunk = 0; chunk < 10; chunk++) {
    await client.append(ledger, numbered(chunk * 2000, 2000));
  }
  const versions = (await collect(client.read(ledger))).map((e) => e.version);
  assert.equal(versions.length, 20000);
  assert.ok(versions.every((v, i) => v === BigInt(i)));
});

test("readAll and subscribe", async () => {
  const sensor = newStream("sensor-ts");
  const written = await client.append(sensor, numbered(0, 3));
  const everything = await collect(client.readAll());
  assert.ok(everything.every((e, i) => e.position === BigInt(i)));
  const newest = await collect(client.readAll({ start: "end", backward: true, maxCount: 1n }));
  assert.equal(newest[0].position, everything[everything.length - 1].position);

  const abort = new AbortController();
  const subscription = client.subscribe(sensor, { signal: abort.signal });
  const seen: SubscriptionMessage[] = [];
  for await (const message of subscription) {
    seen.push(message);
    if (message.kind === "caughtUp") await client.append(sensor, numbered(3, 1));
    if (message.kind === "event" && message.event.version === 3n) break;
  }
  abort.abort();
  const versions = seen.flatMap((m) => (m.kind === "event" ? [m.event.version] : []));
  assert.deepEqual(versions, [0n, 1n, 2n, 3n]);
  assert.ok(seen.some((m) => m.kind === "caughtUp"));

  const filtered = client.subscribe(undefined, {
    after: written.position - 3n,
    streamTypes: ["sensor-ts"],
  });
  const first = (await filtered.next()).value as { kind: "event"; event: RecordedEvent };
  await filtered.return(undefined);
  assert.equal(first.event.stream.key, sensor.key);
  assert.equal(first.event.version, 0n);
});

test("list, get and delete streams", async () => {
  const kind = "admin-ts";
  const streams = Array.from({ length: 5 }, () => newStream(kind));
  for (const s of streams) await client.append(s, numbered(0, 2));
  const listed = await collect(client.listStreams({ streamType: kind, pageSize: 2 }));
  assert.deepEqual(
    listed.map((i) => i.stream.key),
    streams.map((s) => s.key).sort(),
  );
  const info = await client.getStream(streams[0]);
  assert.deepEqual([info.version, info.eventCount, info.state], [1n, 2n, "live"]);

  assert.equal(await client.deleteStream(streams[0], 1n), 1n);
  await assert.rejects(collect(client.read(streams[0])), StreamNotFoundError);
  assert.equal((await client.getStream(streams[0])).state, "deleted");
  assert.equal((await client.append(streams[0], numbered(2, 1), "no_stream")).version, 2n);

  await client.deleteStream(streams[1], "any", true);
  await assert.rejects(client.append(streams[1], numbered(0, 1)), StreamTombstonedError);
  await assert.rejects(client.getStream(newStream(kind)), StreamNotFoundError);
});

test("server info reports the state and what the store holds", async () => {
  const before = await client.serverInfo();
  assert.deepEqual([before.state, before.writeRefusal, before.backend], ["serving", undefined, "file"]);
  await client.append(newStream("info-ts"), numbered(0, 3));
  const after = await client.serverInfo();
  assert.equal(after.store?.streams, (before.store?.streams ?? 0n) + 1n);
  assert.equal(after.store?.events, (before.store?.events ?? 0n) + 3n);
  assert.ok((after.store?.logBytes ?? 0n) > (before.store?.logBytes ?? 0n));
  assert.equal(after.started.getTime(), before.started.getTime());
});

test("the address is taken in every form and from EVENIRE_SERVER", async () => {
  const address = baseUrl.replace("http://", "");
  process.env.EVENIRE_SERVER = address;
  try {
    for (const each of [new EvenireClient(baseUrl), new EvenireClient(address), new EvenireClient()]) {
      await assert.rejects(each.getStream(newStream("order")), StreamNotFoundError);
    }
  } finally {
    delete process.env.EVENIRE_SERVER;
  }
  for (const malformed of ["127.0.0.1", "ftp://127.0.0.1:5243", "http://:5243"]) {
    assert.throws(() => new EvenireClient(malformed), /host:port/);
  }
});

test("a stream is read from its latest snapshot", async () => {
  const account = newStream("account");
  await client.append(account, [0, 1, 2, 3].map((n) => jsonEvent("Deposited", n)), "no_stream");
  assert.equal((await client.readFromSnapshot(account)).snapshot, undefined);
  await client.saveSnapshot(account, 2n, "Balance", JSON.stringify({ balance: 3 }));
  const read = await client.readFromSnapshot(account);
  assert.equal(read.snapshot?.version, 2n);
  assert.equal(read.snapshot?.type, "Balance");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(read.snapshot?.data)), { balance: 3 });
  assert.deepEqual(read.events.map((e) => e.version), [3n]);
  await assert.rejects(client.saveSnapshot(account, 9n, "Balance", "{}"), /readable versions are 0 to 3/);
  await assert.rejects(client.readFromSnapshot(newStream("account")), StreamNotFoundError);
});

test("rules limit what reads keep", async () => {
  const sensor = newStream("sensor");
  await client.append(sensor, [0, 1, 2, 3, 4].map((n) => jsonEvent("Read", n)), "no_stream");
  assert.equal(await client.setStreamRules(sensor, { maxCount: 2n }, 0n), 1n);
  const kept: unknown[] = [];
  for await (const event of client.read(sensor)) {
    kept.push(eventJson(event));
  }
  assert.deepEqual(kept, [3, 4]);
  const info = await client.getStream(sensor);
  assert.equal(info.rules.maxCount, 2n);
  assert.equal(info.rulesRevision, 1n);
  assert.equal(info.rulesAreTypeDefault, false);
  assert.equal(info.eventCount, 2n);
  await assert.rejects(client.setStreamRules(sensor, {}, 0n), WrongExpectedVersionError);
  // An age the events are well within keeps them all.
  assert.equal(await client.setStreamRules(sensor, { maxAgeSeconds: 3600n }, 1n), 2n);
  assert.equal((await collect(client.read(sensor))).length, 5);
  assert.equal((await client.getStream(sensor)).rules.maxAgeSeconds, 3600n);
  await assert.rejects(client.setStreamRules(sensor, { maxAgeSeconds: 0n }), InvalidArgumentError);
});

test("a scavenge reports then frees what a delete removed", async () => {
  const small = await startServer(["--segment-size", "4KiB"]);
  try {
    const admin = new EvenireClient(`http://${small.address}`);
    const kept = newStream("kept");
    const gone = newStream("gone");
    for (let first = 0; first < 200; first += 10) {
      await admin.append(kept, numbered(first, 10));
      await admin.append(gone, numbered(first, 10));
    }
    await admin.deleteStream(gone);

    const dry = await admin.scavengeToEnd({ dryRun: true });
    assert.ok(dry.dryRun && dry.done && dry.segmentsTotal >= 2n && dry.bytesFreed > 0n);
    assert.deepEqual(
      dry.byType.map((t) => [t.streamType, t.events]),
      [["gone", dry.eventsReclaimed]],
    );

    const reports = await collect(admin.scavenge({ rateLimitBytesPerSecond: 10n << 20n }));
    const real = reports[reports.length - 1];
    assert.ok(real.done && !real.dryRun);
    assert.deepEqual([real.eventsReclaimed, real.bytesFreed], [dry.eventsReclaimed, dry.bytesFreed]);
    assert.deepEqual((await collect(admin.read(kept))).map(eventJson), Array.from({ length: 200 }, (_, i) => i));
    assert.equal((await admin.scavengeToEnd({ dryRun: true })).eventsReclaimed, 0n);
  } finally {
    await stopServer(small);
  }
});
