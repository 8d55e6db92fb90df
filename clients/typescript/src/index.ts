// A thin, idiomatic client for Evenire over gRPC (Node.js), on the generated
// protobuf-es code in ./gen. Versions and positions are bigints, as on the wire.

import {
  createClient,
  Code,
  ConnectError,
  type Client,
  type Interceptor,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import * as pb from "./gen/evenire/v1/evenire_pb.js";

export * as proto from "./gen/evenire/v1/evenire_pb.js";

/** Names a stream: a type ("order") and a UUID key. */
export interface StreamId {
  type: string;
  key: string;
}

/** A stream of `type` with a fresh random key. */
export function newStream(type: string): StreamId {
  return { type, key: crypto.randomUUID() };
}

/** An event to append. Give it an `id` to make retries idempotent. */
export interface EventData {
  type: string;
  data?: Uint8Array;
  metadata?: Uint8Array;
  id?: string;
}

/** An event whose data is `value` as JSON, with a fresh id. */
export function jsonEvent(type: string, value: unknown, metadata?: unknown): EventData {
  const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  return {
    type,
    data: encode(value),
    metadata: metadata === undefined ? undefined : encode(metadata),
    id: crypto.randomUUID(),
  };
}

/** An event as the store keeps it. */
export interface RecordedEvent {
  id: string;
  type: string;
  data: Uint8Array;
  metadata: Uint8Array;
  stream: StreamId;
  version: bigint;
  position: bigint;
  created: Date;
}

/** A stream's state at a version, as it was saved: not an event (no position). */
export interface Snapshot {
  stream: StreamId;
  version: bigint;
  type: string;
  data: Uint8Array;
  created: Date;
}

/** What an aggregate is rebuilt from: its latest snapshot and the events after it. */
export interface FromSnapshot {
  snapshot: Snapshot | undefined;
  events: RecordedEvent[];
}

/** The data of an event, parsed as JSON. */
export function eventJson<T = unknown>(event: RecordedEvent): T {
  return JSON.parse(new TextDecoder().decode(event.data)) as T;
}

/** "any", "no_stream", "stream_exists", or an exact version. */
export type Expected = "any" | "no_stream" | "stream_exists" | bigint;

/** Where a read starts: "start", "end", or a version (a position for readAll). */
export type Origin = "start" | "end" | bigint;

/** One step of a subscription. */
export type SubscriptionMessage =
  | { kind: "event"; event: RecordedEvent }
  | { kind: "caughtUp"; position?: bigint }
  | { kind: "checkpoint"; position: bigint };

/** What the store knows about a stream. */
export interface StreamInfo {
  stream: StreamId;
  version: bigint;
  eventCount: bigint;
  firstPosition?: bigint;
  lastPosition?: bigint;
  created: Date;
  lastAppended: Date;
  state: "live" | "deleted" | "tombstoned";
  /** What reads keep, as last set. */
  rules: StreamRules;
  /** How many times its own rules were set: what `setStreamRules` expects. */
  rulesRevision: bigint;
  /** Whether `rules` are the server's default for the stream's type (it has none of its own). */
  rulesAreTypeDefault: boolean;
}

/** What a stream keeps readable; no rule: everything. */
export interface StreamRules {
  /** Only the newest this many events (at least 1). */
  maxCount?: bigint;
  /** Only versions from this one on. */
  truncateBefore?: bigint;
  /** Only events committed at most this many seconds ago (at least 1). */
  maxAgeSeconds?: bigint;
}

/** What a server is and how it stands; health reports SERVING in state "serving" alone. */
export interface ServerInfo {
  version: string;
  /** What keeps the events: "file". */
  backend: string;
  started: Date;
  state: "starting" | "serving" | "refusing_writes" | "stopping";
  /** Why writes are refused (state "refusing_writes"). */
  writeRefusal?: string;
  /**
   * What the store holds (logBytes and logSegments where the backend can tell);
   * undefined while the store opens, and for a credential limited to some stream types.
   */
  store?: { streams: bigint; events: bigint; logBytes?: bigint; logSegments?: bigint };
}

/** Where a scavenge is, and what it has freed so far (in a dry run, would free). */
export interface ScavengeReport {
  dryRun: boolean;
  segmentsTotal: bigint;
  segmentsDone: bigint;
  segmentsRewritten: bigint;
  segmentsSkipped: bigint;
  bytesRead: bigint;
  bytesFreed: bigint;
  eventsReclaimed: bigint;
  /** What was reclaimed, by stream type, in type order. */
  byType: { streamType: string; events: bigint; bytes: bigint }[];
  /** Set in the last report. */
  done: boolean;
}

/** How a scavenge runs. */
export interface ScavengeOptions {
  /** Change nothing: report what a scavenge would free. */
  dryRun?: boolean;
  /** Bytes a second it reads and writes at most; undefined: the server's setting. */
  rateLimitBytesPerSecond?: bigint;
}

/** Any error from the server or the connection; `code` is the gRPC status. */
export class EvenireError extends Error {
  constructor(message: string, readonly code: Code) {
    super(message);
    this.name = new.target.name;
  }
}
/** The stream was not at the expected version; nothing was written. */
export class WrongExpectedVersionError extends EvenireError {
  constructor(message: string, readonly actualVersion: bigint | undefined) {
    super(message, Code.Aborted);
  }
}
/** An event id of the append is already committed elsewhere. */
export class EventIdConflictError extends EvenireError {}
/** The stream has never been written, or is deleted. */
export class StreamNotFoundError extends EvenireError {}
/** The stream is tombstoned: it can never be written again. */
export class StreamTombstonedError extends EvenireError {}
/** The request broke the contract or a limit; the message names the field or limit. */
export class InvalidArgumentError extends EvenireError {}
/** A stored record failed its checksum; the server refused to serve it. */
export class DataLossError extends EvenireError {}
/** The server is starting, stopping, or refusing writes; retry later. */
export class UnavailableError extends EvenireError {}
/** The call carried no credentials the server knows: no token, or a mistyped or revoked one. */
export class UnauthenticatedError extends EvenireError {}
/** The credentials' role or stream types do not allow the call; the message says what was needed. */
export class PermissionDeniedError extends EvenireError {}

function translate(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  const message = error.rawMessage;
  switch (error.code) {
    case Code.Aborted: {
      if (error.metadata.get("evenire-error") === "event-id-conflict") {
        return new EventIdConflictError(message, error.code);
      }
      const actual = error.metadata.get("evenire-actual-version");
      return new WrongExpectedVersionError(message, actual === null ? undefined : BigInt(actual));
    }
    case Code.NotFound:
      return new StreamNotFoundError(message, error.code);
    case Code.FailedPrecondition:
      return new StreamTombstonedError(message, error.code);
    case Code.InvalidArgument:
    case Code.ResourceExhausted:
      return new InvalidArgumentError(message, error.code);
    case Code.DataLoss:
      return new DataLossError(message, error.code);
    case Code.Unavailable:
      return new UnavailableError(message, error.code);
    case Code.Unauthenticated:
      return new UnauthenticatedError(message, error.code);
    case Code.PermissionDenied:
      return new PermissionDeniedError(message, error.code);
    default:
      return new EvenireError(message, error.code);
  }
}

async function call<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (error) {
    throw translate(error);
  }
}

async function* stream<T>(responses: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* responses;
  } catch (error) {
    throw translate(error);
  }
}

function toDate(t: Timestamp | undefined): Date {
  return new Date(t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0);
}

function toEvent(e: pb.RecordedEvent): RecordedEvent {
  return {
    id: e.id,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    stream: { type: e.stream?.type ?? "", key: e.stream?.key ?? "" },
    version: e.version,
    position: e.position,
    created: toDate(e.created),
  };
}

function toSnapshot(s: pb.Snapshot): Snapshot {
  return {
    stream: { type: s.stream?.type ?? "", key: s.stream?.key ?? "" },
    version: s.version,
    type: s.type,
    data: s.data,
    created: toDate(s.created),
  };
}

function toInfo(i: pb.StreamInfo): StreamInfo {
  const states = {
    [pb.StreamState.LIVE]: "live",
    [pb.StreamState.DELETED]: "deleted",
    [pb.StreamState.TOMBSTONED]: "tombstoned",
  } as Record<number, StreamInfo["state"]>;
  return {
    stream: { type: i.stream?.type ?? "", key: i.stream?.key ?? "" },
    version: i.version,
    eventCount: i.eventCount,
    firstPosition: i.firstPosition,
    lastPosition: i.lastPosition,
    created: toDate(i.created),
    lastAppended: toDate(i.lastAppended),
    state: states[i.state] ?? "live",
    rules: {
      maxCount: i.rules?.maxCount,
      truncateBefore: i.rules?.truncateBefore,
      maxAgeSeconds: i.rules?.maxAgeSeconds,
    },
    rulesRevision: i.rulesRevision,
    rulesAreTypeDefault: i.rulesAreTypeDefault,
  };
}

function toServerInfo(r: pb.GetServerInfoResponse): ServerInfo {
  const states = {
    [pb.ServerState.STARTING]: "starting",
    [pb.ServerState.SERVING]: "serving",
    [pb.ServerState.REFUSING_WRITES]: "refusing_writes",
    [pb.ServerState.STOPPING]: "stopping",
  } as Record<number, ServerInfo["state"]>;
  const store = r.store && {
    streams: r.store.streams,
    events: r.store.events,
    logBytes: r.store.logBytes,
    logSegments: r.store.logSegments,
  };
  return {
    version: r.version,
    backend: r.backend,
    started: toDate(r.started),
    state: states[r.state] ?? "starting",
    writeRefusal: r.writeRefusal || undefined,
    store,
  };
}

function expectedVersion(expected: Expected) {
  const states = {
    any: pb.ExpectedState.ANY,
    no_stream: pb.ExpectedState.NO_STREAM,
    stream_exists: pb.ExpectedState.STREAM_EXISTS,
  };
  return typeof expected === "bigint"
    ? { kind: { case: "exact" as const, value: expected } }
    : { kind: { case: "state" as const, value: states[expected] } };
}

function direction(backward: boolean | undefined) {
  return backward ? pb.ReadDirection.BACKWARD : pb.ReadDirection.FORWARD;
}

function origin(start: Origin | undefined) {
  if (typeof start === "bigint") return start;
  return start === "end" ? pb.ReadOrigin.END : pb.ReadOrigin.START;
}

/** Options of a read. */
export interface ReadOptions {
  start?: Origin;
  backward?: boolean;
  maxCount?: bigint;
}

/** Options of a subscription: where to start, and a server-side filter. */
export interface SubscribeOptions {
  /** Resume after this position (a version for a stream subscription). */
  after?: bigint;
  /** Only new events. */
  fromEnd?: boolean;
  streamTypes?: string[];
  streamTypePrefixes?: string[];
  eventTypes?: string[];
  eventTypePrefixes?: string[];
  checkpointInterval?: number;
  signal?: AbortSignal;
}

/** `host:port` as `http://host:port`; refuses anything but host:port with an optional http(s) scheme. */
function withScheme(address: string): string {
  const trimmed = address.trim();
  const url = trimmed.includes("://") ? trimmed : `http://${trimmed}`;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // The port is checked in the text: URL drops one that is the scheme's default.
  if (!parsed || !["http:", "https:"].includes(parsed.protocol) || !/:\d+\/?$/.test(url)) {
    throw new Error(`${address}: the address must be host:port, http://host:port or https://host:port`);
  }
  return url;
}

/** How to reach a server that asks for TLS or credentials. */
export interface ConnectOptions {
  /** The CA that signed the server's certificate (PEM); without it, Node's roots. */
  ca?: string | Buffer;
  /** A client certificate (PEM) and its key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Sent as `authorization: Bearer <token>` with every call. */
  token?: string;
}

/** A connection to an Evenire server. Methods throw EvenireError subclasses. */
export class EvenireClient {
  private readonly rpc: Client<typeof pb.EventStoreService>;

  /**
   * `address` as "host:port", "http://host:port", or "https://host:port" for TLS with
   * the `options`' CA and client certificate; without one, `EVENIRE_SERVER`, else
   * "http://127.0.0.1:5243". A malformed address throws at once.
   */
  constructor(address?: string, options: ConnectOptions = {}) {
    const baseUrl = withScheme(address ?? process.env.EVENIRE_SERVER ?? "http://127.0.0.1:5243");
    const { ca, cert, key, token } = options;
    const tls = ca !== undefined || cert !== undefined || key !== undefined;
    if (tls && !baseUrl.startsWith("https://")) {
      throw new Error(`${baseUrl}: TLS settings were given, so the address must start with https://`);
    }
    const bearer: Interceptor = (next) => (request) => {
      if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
      return next(request);
    };
    const transport = createGrpcTransport({
      baseUrl,
      readMaxBytes: 64 << 20,
      nodeOptions: tls ? { ca, cert, key } : undefined,
      interceptors: token === undefined ? [] : [bearer],
    });
    this.rpc = createClient(pb.EventStoreService, transport);
  }

  /** Appends events atomically if the stream meets `expected`; durable on return. */
  async append(
    streamId: StreamId,
    events: EventData[],
    expected: Expected = "any",
  ): Promise<{ version: bigint; position: bigint }> {
    const response = await call(() =>
      this.rpc.append({
        stream: streamId,
        expectedVersion: expectedVersion(expected),
        events: events.map((e) => ({
          id: e.id ?? "",
          type: e.type,
          data: e.data ?? new Uint8Array(),
          metadata: e.metadata ?? new Uint8Array(),
        })),
      }),
    );
    return { version: response.version, position: response.position };
  }

  /** The stream's events, as an async iterator. */
  async *read(streamId: StreamId, options: ReadOptions = {}): AsyncGenerator<RecordedEvent> {
    const start = origin(options.start);
    const responses = this.rpc.read({
      stream: streamId,
      from:
        typeof start === "bigint" ? { case: "version", value: start } : { case: "origin", value: start },
      direction: direction(options.backward),
      maxCount: options.maxCount,
    });
    for await (const response of stream(responses)) {
      yield* response.events.map(toEvent);
    }
  }

  /** Every event of the store in position order, as an async iterator. */
  async *readAll(options: ReadOptions = {}): AsyncGenerator<RecordedEvent> {
    const start = origin(options.start);
    const responses = this.rpc.readAll({
      from:
        typeof start === "bigint" ? { case: "position", value: start } : { case: "origin", value: start },
      direction: direction(options.backward),
      maxCount: options.maxCount,
    });
    for await (const response of stream(responses)) {
      yield* response.events.map(toEvent);
    }
  }

  /**
   * Follows the whole store, or one stream: history, then live, until you stop
   * iterating or abort `signal`. To resume after a dropped connection, subscribe again
   * with `after` set to the last position (or version) received.
   */
  async *subscribe(
    streamId?: StreamId,
    options: SubscribeOptions = {},
  ): AsyncGenerator<SubscriptionMessage> {
    const origin = {
      case: "origin" as const,
      value: options.fromEnd ? pb.SubscribeOrigin.END : pb.SubscribeOrigin.START,
    };
    const target = streamId
      ? {
          case: "stream" as const,
          value: {
            stream: streamId,
            from:
              options.after === undefined
                ? origin
                : { case: "afterVersion" as const, value: options.after },
          },
        }
      : {
          case: "all" as const,
          value: {
            from:
              options.after === undefined
                ? origin
                : { case: "afterPosition" as const, value: options.after },
          },
        };
    const responses = this.rpc.subscribe(
      {
        target,
        filter: {
          streamTypes: options.streamTypes ?? [],
          streamTypePrefixes: options.streamTypePrefixes ?? [],
          eventTypes: options.eventTypes ?? [],
          eventTypePrefixes: options.eventTypePrefixes ?? [],
        },
        checkpointInterval: options.checkpointInterval ?? 0,
      },
      { signal: options.signal },
    );
    for await (const response of stream(responses)) {
      const message = response.message;
      if (message.case === "events") {
        for (const event of message.value.events) yield { kind: "event", event: toEvent(event) };
      } else if (message.case === "caughtUp") {
        yield { kind: "caughtUp", position: message.value.position };
      } else if (message.case === "checkpoint") {
        yield { kind: "checkpoint", position: message.value.position };
      }
    }
  }

  /** Every stream (live ones unless `includeDeleted`), in (type, key) order. */
  async *listStreams(
    options: { streamType?: string; keyPrefix?: string; includeDeleted?: boolean; pageSize?: number } = {},
  ): AsyncGenerator<StreamInfo> {
    let pageToken = "";
    do {
      const page = await call(() =>
        this.rpc.listStreams({
          streamType: options.streamType ?? "",
          keyPrefix: options.keyPrefix ?? "",
          includeDeleted: options.includeDeleted ?? false,
          pageSize: options.pageSize ?? 0,
          pageToken,
        }),
      );
      yield* page.streams.map(toInfo);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** What the store knows about a stream; StreamNotFoundError for one never written. */
  async getStream(streamId: StreamId): Promise<StreamInfo> {
    const response = await call(() => this.rpc.getStream({ stream: streamId }));
    if (!response.info) throw new EvenireError("GetStream answered without info", Code.Internal);
    return toInfo(response.info);
  }

  /** What the server is and how it stands; it answers while the store recovers too. */
  async serverInfo(): Promise<ServerInfo> {
    return toServerInfo(await call(() => this.rpc.getServerInfo({})));
  }

  /** Deletes a stream (for good with `tombstone`); returns the version deleted through. */
  async deleteStream(streamId: StreamId, expected: Expected = "any", tombstone = false): Promise<bigint> {
    const response = await call(() =>
      this.rpc.deleteStream({ stream: streamId, expectedVersion: expectedVersion(expected), tombstone }),
    );
    return response.deletedThroughVersion;
  }

  /**
   * Replaces what a stream keeps readable (no rule: clears them), if its rules are at
   * `expectedRevision` (undefined: any); returns their new revision. Needs the admin role.
   */
  async setStreamRules(streamId: StreamId, rules: StreamRules, expectedRevision?: bigint): Promise<bigint> {
    const response = await call(() => this.rpc.setStreamRules({ stream: streamId, rules, expectedRevision }));
    return response.revision;
  }

  /**
   * Saves a stream's state at one of its versions. Not an event: it takes no position and
   * changes no version; the server keeps the newest few per stream.
   */
  async saveSnapshot(streamId: StreamId, version: bigint, type: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    await call(() => this.rpc.saveSnapshot({ stream: streamId, version, type, data: bytes }));
  }

  /** The stream's latest snapshot and every event after it, in one call. */
  async readFromSnapshot(streamId: StreamId): Promise<FromSnapshot> {
    const read: FromSnapshot = { snapshot: undefined, events: [] };
    for await (const response of stream(this.rpc.readFromSnapshot({ stream: streamId }))) {
      if (response.snapshot) {
        read.snapshot = toSnapshot(response.snapshot);
      }
      read.events.push(...response.events.map(toEvent));
    }
    return read;
  }

  /**
   * Starts a scavenge (needs the admin role, for every stream type): the server rewrites its
   * sealed segments without what deletes and stream rules removed, and reports after each
   * one. It goes on if the caller stops iterating.
   */
  async *scavenge(options: ScavengeOptions = {}): AsyncGenerator<ScavengeReport> {
    const request = { dryRun: options.dryRun ?? false, rateLimitBytesPerSecond: options.rateLimitBytesPerSecond ?? 0n };
    for await (const r of stream(this.rpc.scavenge(request))) {
      yield {
        dryRun: r.dryRun,
        segmentsTotal: r.segmentsTotal,
        segmentsDone: r.segmentsDone,
        segmentsRewritten: r.segmentsRewritten,
        segmentsSkipped: r.segmentsSkipped,
        bytesRead: r.bytesRead,
        bytesFreed: r.bytesFreed,
        eventsReclaimed: r.eventsReclaimed,
        byType: r.byType.map((t) => ({ streamType: t.streamType, events: t.events, bytes: t.bytes })),
        done: r.done,
      };
    }
  }

  /** Runs a scavenge to its end and returns its last report. */
  async scavengeToEnd(options: ScavengeOptions = {}): Promise<ScavengeReport> {
    let last: ScavengeReport | undefined;
    for await (const report of this.scavenge(options)) {
      last = report;
    }
    if (!last?.done) throw new EvenireError("the scavenge's reports ended before it was done", Code.Internal);
    return last;
  }
}
