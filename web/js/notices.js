// Short messages in a polite live region: refusals with the server's words, confirmations.

import { h } from "./dom.js";

const LIFETIME_MS = 6000;
const MAX_SHOWN = 4;

/** Show a message; kind is "info" or "error". Errors stay until dismissed or replaced. */
export function notify(message, kind = "info", action = null) {
  const region = document.getElementById("notices");
  while (region.children.length >= MAX_SHOWN) region.firstElementChild.remove();
  const close = () => item.remove();
  const item = h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null },
    h("span", {}, message),
    action ? h("button", { class: "link", onclick: () => { close(); action.run(); } }, action.label) : null,
    h("button", { class: "icon-button", "aria-label": "Dismiss", onclick: close }, "×"),
  );
  region.append(item);
  setTimeout(close, kind === "error" ? LIFETIME_MS * 2 : LIFETIME_MS);
}

/** Run an action; a refusal is shown with the server's message. Returns the result or null. */
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    notify(error.display ?? error.message ?? String(error), "error");
    return null;
  }
}
