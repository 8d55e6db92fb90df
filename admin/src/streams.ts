// The streams page: a page of streams at a time in (type, key) order, filtered by type
// and key prefix, deleted ones on request.

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import { state, time } from "./format.js";
import type { StreamInfo } from "./gen/evenire/v1/evenire_pb.js";
import { streamHref } from "./routes.js";

const PAGE_SIZE = 50;

export function streamsPage(root: Element, query: URLSearchParams): void {
  const type = h("input", { id: "filter-type", name: "type", value: query.get("type") ?? "", autocomplete: "off" });
  const prefix = h("input", { id: "filter-key", name: "key", value: query.get("key") ?? "", autocomplete: "off", spellcheck: "false" });
  const deleted = h("input", { id: "filter-deleted", type: "checkbox", checked: query.get("deleted") === "1" });
  const table = h("tbody");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const more = h("button", { type: "button", hidden: true }, "Next page");
  // The tokens of the pages shown, so that "previous" goes back without listing again.
  const tokens: string[] = [""];
  const previous = h("button", { type: "button", hidden: true }, "Previous page");

  const load = async (page: number) => {
    status.textContent = "Loading…";
    try {
      const response = await store.listStreams({
        streamType: type.value.trim(),
        keyPrefix: prefix.value.trim(),
        includeDeleted: deleted.checked,
        pageSize: PAGE_SIZE,
        pageToken: tokens[page],
      });
      show(table, ...response.streams.map(row));
      tokens.length = page + 1;
      if (response.nextPageToken !== "") tokens.push(response.nextPageToken);
      more.hidden = response.nextPageToken === "";
      previous.hidden = page === 0;
      more.onclick = () => load(page + 1);
      previous.onclick = () => load(page - 1);
      status.textContent =
        response.streams.length === 0
          ? "No streams match."
          : `Streams ${page * PAGE_SIZE + 1} to ${page * PAGE_SIZE + response.streams.length}${more.hidden ? "" : ", more after"}.`;
    } catch (error) {
      show(table);
      status.textContent = describe(error);
      status.classList.add("error");
      return;
    }
    status.classList.remove("error");
  };

  const filter = h(
    "form",
    {
      class: "filters",
      onsubmit: (event: Event) => {
        event.preventDefault();
        const params = new URLSearchParams();
        if (type.value.trim() !== "") params.set("type", type.value.trim());
        if (prefix.value.trim() !== "") params.set("key", prefix.value.trim());
        if (deleted.checked) params.set("deleted", "1");
        history.replaceState(null, "", `#/streams?${params}`);
        tokens.length = 1;
        void load(0);
      },
    },
    h("label", { for: "filter-type" }, "Type"),
    type,
    h("label", { for: "filter-key" }, "Key starts with"),
    prefix,
    h("label", { class: "check" }, deleted, " deleted too"),
    h("button", { type: "submit" }, "Filter"),
  );

  show(
    root,
    h("h1", {}, "Streams"),
    filter,
    status,
    h(
      "table",
      { class: "streams" },
      h("caption", { class: "visually-hidden" }, "Streams in type and key order"),
      h(
        "thead",
        {},
        h("tr", {}, ...["Type", "Key", "Version", "Events", "Last appended", "State"].map((c) => h("th", { scope: "col" }, c))),
      ),
      table,
    ),
    h("nav", { class: "pager", "aria-label": "Pages of streams" }, previous, more),
  );
  void load(0);
}

function row(info: StreamInfo): HTMLTableRowElement {
  const stream = info.stream;
  const link = stream ? h("a", { href: streamHref(stream.type, stream.key) }, stream.key) : "";
  return h(
    "tr",
    {},
    h("td", {}, stream?.type ?? ""),
    h("td", { class: "key" }, link),
    h("td", { class: "number" }, info.version.toString()),
    h("td", { class: "number" }, info.eventCount.toString()),
    h("td", {}, time(info.lastAppended)),
    h("td", { class: `state ${state(info.state)}` }, state(info.state)),
  );
}
