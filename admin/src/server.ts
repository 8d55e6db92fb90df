// The server page: its state as health reports it, its version, and what the store
// holds, from GetServerInfo; refreshed every few seconds while shown.

import { describe, store } from "./api.js";
import { h, show } from "./dom.js";
import { bytes, time } from "./format.js";
import { type GetServerInfoResponse, ServerState } from "./gen/evenire/v1/evenire_pb.js";

/** How often the page asks again, in milliseconds. */
const REFRESH_MS = 5000;

/** What each state means for the one reading the page, and what health reports. */
const STATES: Record<number, { name: string; health: string; meaning: string }> = {
  [ServerState.STARTING]: { name: "starting", health: "NOT_SERVING", meaning: "opening the store; calls wait" },
  [ServerState.SERVING]: { name: "serving", health: "SERVING", meaning: "every call is served" },
  [ServerState.REFUSING_WRITES]: {
    name: "refusing writes",
    health: "NOT_SERVING",
    meaning: "reads are served; writes are refused until a restart",
  },
  [ServerState.STOPPING]: { name: "stopping", health: "NOT_SERVING", meaning: "finishing the calls under way" },
};

/** Starts the server page; returns what stops its refreshing. */
export function serverPage(root: Element): () => void {
  const info = h("dl", { class: "info", "aria-label": "The server" });
  const figures = h("dl", { class: "info", "aria-label": "The store" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" }, "Loading…");
  let timer = 0;

  const load = async () => {
    window.clearTimeout(timer);
    try {
      const answer = await store.getServerInfo({});
      showInfo(info, figures, answer);
      status.textContent = `As of ${new Date().toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.`;
      status.classList.remove("error");
    } catch (error) {
      status.textContent = describe(error);
      status.classList.add("error");
    }
    timer = window.setTimeout(() => void load(), REFRESH_MS);
  };

  show(
    root,
    h("h1", {}, "Server"),
    status,
    info,
    h("h2", {}, "Store"),
    figures,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => void load() }, "Refresh")),
  );
  void load();
  return () => window.clearTimeout(timer);
}

function showInfo(info: Element, figures: Element, answer: GetServerInfoResponse): void {
  const state = STATES[answer.state] ?? { name: "unknown", health: "UNKNOWN", meaning: "" };
  const pairs = (entries: [string, Node | string][]) =>
    entries.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
  show(
    info,
    ...pairs([
      ["State", h("span", { class: `server-state ${state.name.replace(" ", "-")}` }, `${state.name}: ${state.meaning}`)],
      ["Health", `${state.health} (grpc.health.v1, what readiness probes see)`],
      ...(answer.writeRefusal === "" ? [] : ([["Writes refused because", answer.writeRefusal]] as [string, string][])),
      ["Version", answer.version],
      ["Backend", answer.backend],
      ["Started", time(answer.started)],
    ]),
  );
  const held = answer.store;
  show(
    figures,
    ...(held === undefined
      ? [h("dt", {}, "Figures"), h("dd", {}, "not shown: the store is opening, or this token may only see some stream types")]
      : pairs([
          ["Streams", held.streams.toLocaleString("en")],
          ["Events", held.events.toLocaleString("en")],
          ["Log size", held.logBytes === undefined ? "not known" : bytes(held.logBytes)],
          ["Log segments", held.logSegments === undefined ? "none" : held.logSegments.toLocaleString("en")],
        ])),
  );
}
