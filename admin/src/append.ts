// The append page: one event to a stream, its data checked as JSON before it is sent,
// with the expected version the contract offers; the answer, or the error with what
// the server says (a wrong expected version names the actual one).

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ExpectedState, type ExpectedVersionSchema } from "./gen/evenire/v1/evenire_pb.js";
import { streamHref } from "./routes.js";

const encoder = new TextEncoder();

export function appendPage(root: Element, query: URLSearchParams): void {
  const field = (id: string, label: string, control: HTMLElement, hint?: string) =>
    h("div", { class: "field" }, h("label", { for: id }, label), control, hint && h("small", { id: `${id}-hint` }, hint));
  const streamType = h("input", { id: "append-stream-type", required: true, value: query.get("type") ?? "", autocomplete: "off" });
  const key = h("input", {
    id: "append-key",
    required: true,
    value: query.get("key") ?? crypto.randomUUID(),
    spellcheck: "false",
    autocomplete: "off",
    class: "key",
  });
  const eventType = h("input", { id: "append-event-type", required: true, autocomplete: "off" });
  const data = h("textarea", { id: "append-data", rows: 6, spellcheck: "false", "aria-describedby": "append-data-hint" }, "{}");
  const metadata = h("textarea", { id: "append-metadata", rows: 3, spellcheck: "false", "aria-describedby": "append-metadata-hint" });
  const expected = h(
    "select",
    { id: "append-expected" },
    h("option", { value: "any" }, "any"),
    h("option", { value: "no-stream" }, "no stream"),
    h("option", { value: "exists" }, "stream exists"),
    h("option", { value: "exact" }, "exact version"),
  );
  const version = h("input", { id: "append-version", type: "number", min: 0, step: 1, inputmode: "numeric", hidden: true, "aria-label": "Expected version" });
  expected.onchange = () => {
    version.hidden = expected.value !== "exact";
  };
  const outcome = h("p", { class: "status", role: "status", "aria-live": "polite" });

  const fail = (message: string) => {
    outcome.classList.add("error");
    show(outcome, message);
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    outcome.classList.remove("error");
    const dataBytes = json("Data", data.value, true);
    const metadataBytes = json("Metadata", metadata.value, false);
    if (typeof dataBytes === "string") return fail(dataBytes);
    if (typeof metadataBytes === "string") return fail(metadataBytes);
    const expectedVersion = expectation(expected.value, version.value);
    if (expectedVersion === undefined) return fail("Expected version: give a whole number of 0 or more.");
    show(outcome, "Appending…");
    const stream = { type: streamType.value.trim(), key: key.value.trim() };
    try {
      const answer = await store.append({
        stream,
        expectedVersion,
        events: [{ type: eventType.value.trim(), data: dataBytes, metadata: metadataBytes }],
      });
      show(
        outcome,
        `Appended: version ${answer.version} at position ${answer.position}. `,
        h("a", { href: streamHref(stream.type, stream.key) }, "Open the stream"),
      );
    } catch (error) {
      fail(describe(error));
    }
  };

  show(
    root,
    h("h1", {}, "Append an event"),
    h(
      "form",
      { class: "append", onsubmit: submit, novalidate: true },
      field("append-stream-type", "Stream type", streamType),
      field("append-key", "Stream key (UUID)", key),
      field("append-event-type", "Event type", eventType),
      field("append-data", "Data (JSON)", data, "Checked before it is sent."),
      field("append-metadata", "Metadata (JSON, optional)", metadata, "Empty for none."),
      field("append-expected", "Expected version", h("div", { class: "inline" }, expected, version)),
      h("button", { type: "submit" }, "Append"),
    ),
    outcome,
  );
}

/** `text` as JSON bytes, or what is wrong with it. */
function json(name: string, text: string, required: boolean): Uint8Array | string {
  if (text.trim() === "") return required ? `${name}: give JSON, such as {}.` : new Uint8Array();
  try {
    JSON.parse(text);
  } catch (error) {
    return `${name} is not JSON: ${(error as Error).message}`;
  }
  return encoder.encode(text);
}

type Expected = MessageInitShape<typeof ExpectedVersionSchema>;

function expectation(choice: string, version: string): Expected | undefined {
  const state = (value: ExpectedState): Expected => ({ kind: { case: "state", value } });
  switch (choice) {
    case "no-stream":
      return state(ExpectedState.NO_STREAM);
    case "exists":
      return state(ExpectedState.STREAM_EXISTS);
    case "exact":
      return /^\d+$/.test(version.trim()) ? { kind: { case: "exact", value: BigInt(version.trim()) } } : undefined;
    default:
      return state(ExpectedState.ANY);
  }
}
