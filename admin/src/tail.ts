// The live tail: `$all` or one stream, with the subscription's filters, from now on.
// Pause, resume and clear; at most MAX_ROWS rows. Events are drawn at most ten times a
// second, and only the new ones: they go on top and as many old rows go from the
// bottom, so a draw costs what arrived since the last (at most MAX_ROWS rows), not the
// whole table, and the page can run for hours at 10,000 events a second.

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import { time } from "./format.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type RecordedEvent, SubscribeOrigin, type SubscribeRequestSchema } from "./gen/evenire/v1/evenire_pb.js";
import { streamHref } from "./routes.js";

/** Rows kept: older ones go as new ones come. At 10,000 events a second, 200 rows
 * drawn ten times a second keep Chromium at 60 frames a second with half the main
 * thread free; 500 rows halved the frame rate (docs/admin.md, "The tail under load"). */
export const MAX_ROWS = 200;

/** The least time between two draws, in milliseconds: ten a second is as fast as anyone
 * reads, and a draw at 10,000 events a second replaces most of the table. */
const DRAW_EVERY_MS = 100;

const list = (text: string) =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");

/** Starts the tail page; returns what stops its subscription. */
export function tailPage(root: Element, query: URLSearchParams): () => void {
  const input = (id: string, name: string) =>
    h("input", { id, value: query.get(name) ?? "", autocomplete: "off", spellcheck: "false" });
  const stream = input("tail-stream", "stream");
  const streamTypes = input("tail-stream-types", "types");
  const typePrefixes = input("tail-type-prefixes", "type-prefixes");
  const eventTypes = input("tail-event-types", "events");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" }, "Not started.");
  const counts = h("p", { class: "counts" });
  const rows = h("tbody");
  const pause = h("button", { type: "button", disabled: true }, "Pause");
  const clear = h("button", { type: "button" }, "Clear");

  // Received and not drawn yet, newest last; at most MAX_ROWS, since no more can show.
  let pending: RecordedEvent[] = [];
  let received = 0;
  let paused = false;
  // The draw to come: a timer until DRAW_EVERY_MS since the last, then a frame.
  let timer = 0;
  let frame = 0;
  let drawn = 0;
  let abort: AbortController | undefined;

  const draw = () => {
    frame = 0;
    drawn = performance.now();
    if (pending.length > 0) {
      rows.prepend(...pending.map(row).reverse());
      pending = [];
      while (rows.childElementCount > MAX_ROWS) rows.lastElementChild?.remove();
    }
    counts.textContent = `${received} received, ${rows.childElementCount} shown (the newest ${MAX_ROWS} at most)${paused ? ", paused" : ""}.`;
  };
  const schedule = () => {
    if (paused || timer !== 0 || frame !== 0) return;
    timer = window.setTimeout(
      () => {
        timer = 0;
        frame = requestAnimationFrame(draw);
      },
      Math.max(0, drawn + DRAW_EVERY_MS - performance.now()),
    );
  };

  const start = async () => {
    abort?.abort();
    const controller = new AbortController();
    abort = controller;
    const request = subscription(stream.value.trim(), list(streamTypes.value), list(typePrefixes.value), list(eventTypes.value));
    if (typeof request === "string") {
      status.textContent = request;
      status.classList.add("error");
      return;
    }
    status.classList.remove("error");
    status.textContent = "Subscribing…";
    pause.disabled = false;
    try {
      for await (const response of store.subscribe(request, { signal: controller.signal })) {
        const message = response.message;
        if (message.case === "caughtUp") {
          status.textContent = "Caught up: showing events as they are committed.";
        } else if (message.case === "events") {
          received += message.value.events.length;
          pending.push(...message.value.events);
          if (pending.length > MAX_ROWS) pending.splice(0, pending.length - MAX_ROWS);
          schedule();
        }
      }
      status.textContent = "The subscription ended.";
    } catch (error) {
      if (controller.signal.aborted) return;
      status.textContent = describe(error);
      status.classList.add("error");
    }
  };

  pause.onclick = () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) schedule();
    else draw();
  };
  clear.onclick = () => {
    pending = [];
    rows.replaceChildren();
    received = 0;
    draw();
  };

  show(
    root,
    h("h1", {}, "Live tail"),
    h(
      "form",
      {
        class: "filters tail",
        onsubmit: (event: Event) => {
          event.preventDefault();
          void start();
        },
      },
      h("label", { for: "tail-stream" }, "One stream (type/key; empty: all)"),
      stream,
      h("label", { for: "tail-stream-types" }, "Stream types"),
      streamTypes,
      h("label", { for: "tail-type-prefixes" }, "Stream type prefixes"),
      typePrefixes,
      h("label", { for: "tail-event-types" }, "Event types"),
      eventTypes,
      h("button", { type: "submit" }, "Follow"),
    ),
    h("div", { class: "controls" }, pause, clear),
    status,
    counts,
    h(
      "table",
      { class: "tail" },
      h("caption", { class: "visually-hidden" }, "Events as they are committed, newest first"),
      h("thead", {}, h("tr", {}, ...["Position", "Stream", "Version", "Type", "Committed"].map((c) => h("th", { scope: "col" }, c)))),
      rows,
    ),
  );
  draw();
  return () => {
    abort?.abort();
    window.clearTimeout(timer);
    cancelAnimationFrame(frame);
  };
}

/** The subscription the form asks for, from now on; or what is wrong with it. */
type Subscription = MessageInitShape<typeof SubscribeRequestSchema>;

function subscription(stream: string, streamTypes: string[], typePrefixes: string[], eventTypes: string[]): Subscription | string {
  const filter = { streamTypes, streamTypePrefixes: typePrefixes, eventTypes, eventTypePrefixes: [] };
  if (stream === "") {
    return { target: { case: "all", value: { from: { case: "origin", value: SubscribeOrigin.END } } }, filter };
  }
  const [type, key] = stream.split("/", 2);
  if (!type || !key) return "One stream: give it as type/key, such as order/6f1c…";
  return {
    target: { case: "stream", value: { stream: { type, key }, from: { case: "origin", value: SubscribeOrigin.END } } },
    filter,
  };
}

function row(event: RecordedEvent): HTMLTableRowElement {
  const stream = event.stream;
  return h(
    "tr",
    {},
    h("td", { class: "number" }, event.position.toString()),
    h("td", { class: "key" }, stream ? h("a", { href: streamHref(stream.type, stream.key) }, `${stream.type}/${stream.key}`) : ""),
    h("td", { class: "number" }, event.version.toString()),
    h("td", {}, event.type),
    h("td", {}, time(event.created)),
  );
}
