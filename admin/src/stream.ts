// A stream's page: what the store knows of it, and its events a page at a time,
// forward or backward (never the whole stream: a 1M-event stream opens as fast as a
// 10-event one).

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import { type Encoding, payload, state, time } from "./format.js";
import { ReadDirection, ReadOrigin, type RecordedEvent, type StreamId, type StreamInfo } from "./gen/evenire/v1/evenire_pb.js";

const PAGE_SIZE = 20;

export function streamPage(root: Element, type: string, key: string): void {
  const stream = { type, key } as StreamId;
  const info = h("dl", { class: "info" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const events = h("ol", { class: "events" });
  const direction = h(
    "select",
    { id: "direction" },
    h("option", { value: "backward" }, "Newest first"),
    h("option", { value: "forward" }, "Oldest first"),
  );
  const encoding = h(
    "select",
    { id: "encoding" },
    h("option", { value: "base64" }, "base64"),
    h("option", { value: "hex" }, "hex"),
    h("option", { value: "text" }, "text"),
  );
  const next = h("button", { type: "button" }, "Next page");
  const previous = h("button", { type: "button" }, "Previous page");
  // Where each page shown began (undefined: at the end the direction starts from).
  let starts: (bigint | undefined)[] = [undefined];
  let shown: RecordedEvent[] = [];

  const render = () => {
    const fallback = encoding.value as Encoding;
    show(events, ...shown.map((event) => eventItem(event, fallback)));
  };

  const load = async (page: number) => {
    const forward = direction.value === "forward";
    const from = starts[page];
    status.textContent = "Loading…";
    status.classList.remove("error");
    try {
      const read = store.read({
        stream,
        from: from === undefined
          ? { case: "origin", value: forward ? ReadOrigin.START : ReadOrigin.END }
          : { case: "version", value: from },
        direction: forward ? ReadDirection.FORWARD : ReadDirection.BACKWARD,
        maxCount: BigInt(PAGE_SIZE),
      });
      const got: RecordedEvent[] = [];
      for await (const response of read) got.push(...response.events);
      shown = got;
      render();
      const last = got.at(-1);
      const more = last !== undefined && got.length === PAGE_SIZE && (forward || last.version > 0n);
      starts = starts.slice(0, page + 1);
      if (more) starts.push(forward ? last.version + 1n : last.version - 1n);
      next.hidden = !more;
      previous.hidden = page === 0;
      next.onclick = () => load(page + 1);
      previous.onclick = () => load(page - 1);
      status.textContent = got.length === 0 ? "No events to read." : `Versions ${got[0]!.version} to ${last!.version}.`;
    } catch (error) {
      show(events);
      status.textContent = describe(error);
      status.classList.add("error");
    }
  };
  direction.onchange = () => {
    starts = [undefined];
    void load(0);
  };
  encoding.onchange = render;

  show(
    root,
    h("p", {}, h("a", { href: "#/streams" }, "← Streams")),
    h("h1", {}, h("span", { class: "type" }, type), " ", h("span", { class: "key" }, key)),
    info,
    h("h2", {}, "Events"),
    h(
      "div",
      { class: "controls" },
      h("label", { for: "direction" }, "Order"),
      direction,
      h("label", { for: "encoding" }, "Non-JSON payloads as"),
      encoding,
    ),
    status,
    events,
    h("nav", { class: "pager", "aria-label": "Pages of events" }, previous, next),
  );
  void loadInfo(info, stream);
  void load(0);
}

async function loadInfo(target: HTMLDListElement, stream: StreamId): Promise<void> {
  try {
    const { info } = await store.getStream({ stream });
    if (info !== undefined) show(target, ...infoItems(info));
  } catch (error) {
    show(target, h("dt", {}, "Error"), h("dd", { class: "error" }, describe(error)));
  }
}

function infoItems(info: StreamInfo): Node[] {
  const items: [string, string][] = [
    ["State", state(info.state)],
    ["Version", info.version.toString()],
    ["Events readable", info.eventCount.toString()],
    ["Positions", info.firstPosition === undefined ? "none" : `${info.firstPosition} to ${info.lastPosition}`],
    ["Created", time(info.created)],
    ["Last appended", time(info.lastAppended)],
  ];
  return items.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]);
}

function eventItem(event: RecordedEvent, fallback: Encoding): HTMLLIElement {
  const data = payload(event.data, fallback);
  const metadata = payload(event.metadata, fallback);
  return h(
    "li",
    { class: "event" },
    h(
      "header",
      {},
      h("strong", {}, `#${event.version}`),
      " ",
      h("span", { class: "event-type" }, event.type),
      h("span", { class: "meta" }, ` position ${event.position} · ${time(event.created)} · id ${event.id}`),
    ),
    h("h3", { class: "visually-hidden" }, `Event ${event.version} data`),
    h("pre", { class: data.json ? "json" : "raw" }, data.text),
    event.metadata.length > 0 && h("details", {}, h("summary", {}, "Metadata"), h("pre", {}, metadata.text)),
  );
}
