// Short messages in a polite live region: refusals with the server's words, confirmations.

import { h } from "./dom.js";

const LIFETIME_MS = 6000;
const MAX_SHOWN = 4;

/**
 * Show a message; kind is "info" or "error". Errors and messages with an action stay until
 * dismissed (or pushed out by newer ones); other messages go after a while, not while the
 * pointer or the focus is on them.
 */
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
  if (kind === "error" || action) return;
  let timer = setTimeout(close, LIFETIME_MS);
  const pause = () => clearTimeout(timer);
  const resume = () => {
    clearTimeout(timer);
    if (!item.matches(":hover, :focus-within")) timer = setTimeout(close, LIFETIME_MS);
  };
  item.addEventListener("pointerenter", pause);
  item.addEventListener("focusin", pause);
  item.addEventListener("pointerleave", resume);
  item.addEventListener("focusout", resume);
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
