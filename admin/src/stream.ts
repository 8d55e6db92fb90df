// A stream's page: what the store knows of it, and its events a page at a time,
// forward or backward (never the whole stream: a 1M-event stream opens as fast as a
// 10-event one).

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import { type Encoding, payload, state, time } from "./format.js";
import { ExpectedState, ReadDirection, ReadOrigin, type RecordedEvent, type StreamId, type StreamInfo, StreamState } from "./gen/evenire/v1/evenire_pb.js";
import { appendHref } from "./routes.js";

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
  const actions = h("div", { class: "actions" });
  const outcome = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const refresh = async () => {
    const current = await loadInfo(info, stream);
    show(actions, ...(current ? deleteButtons(current, outcome, refresh) : []), h("a", { href: appendHref(type, key) }, "Append an event"));
    starts = [undefined];
    await load(0);
  };

  show(
    root,
    h("p", {}, h("a", { href: "#/streams" }, "← Streams")),
    h("h1", {}, h("span", { class: "type" }, type), " ", h("span", { class: "key" }, key)),
    info,
    actions,
    outcome,
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
  void refresh();
}

/** Shows what the store knows of `stream` in `target`, and returns it. */
async function loadInfo(target: HTMLDListElement, stream: StreamId): Promise<StreamInfo | undefined> {
  try {
    const { info } = await store.getStream({ stream });
    if (info !== undefined) show(target, ...infoItems(info));
    return info;
  } catch (error) {
    show(target, h("dt", {}, "Error"), h("dd", { class: "error" }, describe(error)));
    return undefined;
  }
}

/** Delete and tombstone, each asking first with the stream and its version; the call
 * expects that version, so a stream written meanwhile is not deleted unseen. */
function deleteButtons(info: StreamInfo, outcome: HTMLElement, done: () => Promise<void>): HTMLElement[] {
  const stream = info.stream;
  if (stream === undefined || info.state === StreamState.TOMBSTONED) return [];
  const button = (tombstone: boolean) => {
    const what = tombstone ? "Tombstone" : "Delete";
    const consequence = tombstone
      ? "Its events go from reads, and it can never be written again."
      : "Its events go from reads; a later append starts it again after them.";
    const confirm = h("button", { type: "button", class: "danger" }, what);
    // Focus starts on Cancel, so Enter on a dialog opened by mistake changes nothing.
    const cancel = h("button", { type: "button", class: "secondary", autofocus: true }, "Cancel");
    const dialog = h(
      "dialog",
      { "aria-labelledby": `confirm-${what}` },
      h("h2", { id: `confirm-${what}` }, `${what} this stream?`),
      h("p", {}, h("span", { class: "key" }, `${stream.type}/${stream.key}`), ` at version ${info.version}.`),
      h("p", {}, consequence),
      h("div", { class: "controls" }, confirm, cancel),
    );
    cancel.onclick = () => dialog.close();
    confirm.onclick = async () => {
      dialog.close();
      outcome.classList.remove("error");
      try {
        const answer = await store.deleteStream({
          stream,
          expectedVersion:
            info.state === StreamState.LIVE
              ? { kind: { case: "exact", value: info.version } }
              : { kind: { case: "state", value: ExpectedState.ANY } },
          tombstone,
        });
        outcome.textContent = `${tombstone ? "Tombstoned" : "Deleted"} through version ${answer.deletedThroughVersion}.`;
        await done();
      } catch (error) {
        outcome.textContent = describe(error);
        outcome.classList.add("error");
      }
    };
    const open = h("button", { type: "button", class: "danger" }, `${what}…`);
    open.onclick = () => dialog.showModal();
    return h("span", {}, open, dialog);
  };
  return info.state === StreamState.LIVE ? [button(false), button(true)] : [button(true)];
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
