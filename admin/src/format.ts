// How values are shown: payloads as pretty JSON when they parse, else as base64 or
// hex; times and ids as text.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { StreamState } from "./gen/evenire/v1/evenire_pb.js";

export type Encoding = "text" | "base64" | "hex";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** `bytes` as pretty JSON if they are JSON, else in `fallback`. */
export function payload(bytes: Uint8Array, fallback: Encoding): { text: string; json: boolean } {
  if (bytes.length === 0) return { text: "(empty)", json: false };
  try {
    const text = utf8.decode(bytes);
    return { text: JSON.stringify(JSON.parse(text), null, 2), json: true };
  } catch {
    return { text: encode(bytes, fallback), json: false };
  }
}

function encode(bytes: Uint8Array, encoding: Encoding): string {
  if (encoding === "hex") {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
  }
  if (encoding === "text") {
    try {
      return utf8.decode(bytes);
    } catch {
      // Not UTF-8: base64 it is.
    }
  }
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export function time(timestamp: Timestamp | undefined): string {
  if (timestamp === undefined) return "";
  const millis = Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
  return new Date(millis).toISOString().replace("T", " ").replace("Z", " UTC");
}

/** A size in bytes, in binary units: "1.5 MiB". */
export function bytes(count: bigint): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(count);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

export function state(value: StreamState): string {
  switch (value) {
    case StreamState.LIVE:
      return "live";
    case StreamState.DELETED:
      return "deleted";
    case StreamState.TOMBSTONED:
      return "tombstoned";
    default:
      return "unknown";
  }
}
