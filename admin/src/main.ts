// The web admin's entry: the token field, and the page the address names.

import { setToken, token } from "./api.js";
import { h } from "./dom.js";
import { appendPage } from "./append.js";
import { route } from "./routes.js";
import { serverPage } from "./server.js";
import { streamPage } from "./stream.js";
import { streamsPage } from "./streams.js";
import { tailPage } from "./tail.js";

/** What the page shown needs done when another replaces it (a tail's subscription). */
let leave: (() => void) | undefined;

function tokenForm(): HTMLFormElement {
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    value: token(),
    placeholder: "only if the server wants one",
  });
  return h(
    "form",
    {
      class: "token",
      onsubmit: (event: Event) => {
        event.preventDefault();
        setToken(input.value.trim());
        render();
      },
    },
    h("label", { for: "token" }, "Token (kept for this tab only)"),
    input,
    h("button", { type: "submit" }, "Use"),
  );
}

function render(): void {
  const main = document.getElementById("main");
  if (main === null) return;
  const current = route(location.hash);
  leave?.();
  leave = undefined;
  switch (current.page) {
    case "stream":
      streamPage(main, current.type, current.key);
      break;
    case "append":
      appendPage(main, current.query);
      break;
    case "tail":
      leave = tailPage(main, current.query);
      break;
    case "server":
      leave = serverPage(main);
      break;
    case "streams":
      streamsPage(main, current.query);
      break;
  }
  main.focus();
}

document.getElementById("token-slot")?.replaceWith(tokenForm());
window.addEventListener("hashchange", render);
render();
