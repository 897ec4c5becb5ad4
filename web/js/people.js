// How people look: avatars (initials on a colour from the id), names with the verified mark,
// role labels.

import { h } from "./dom.js";

export const ROLE_LABELS = {
  host: "Host",
  cohost: "Co-host",
  moderator: "Moderator",
  speaker: "Speaker",
  listener: "Listener",
};

function hue(id) {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function initials(name) {
  const words = name.trim().split(/\s+/u).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0] ?? "");
  return letters.join("").toUpperCase() || "?";
}

/** A round avatar; `size` is "s", "m" or "l". Decorative: the name is always shown beside it. */
export function avatar(user, size = "m") {
  const el = h("span", { class: `avatar avatar-${size}`, "aria-hidden": "true" }, initials(user.name));
  el.style.setProperty("--hue", String(hue(user.id)));
  return el;
}

/** A name, with a verified mark that screen readers read as “(verified)”. */
export function nameLabel(user) {
  return h(
    "span",
    { class: "name" },
    h("span", { class: "name-text" }, user.name),
    user.verified
      ? h(
          "span",
          { class: "verified", title: "Verified" },
          h("span", { "aria-hidden": "true" }, "✓"),
          h("span", { class: "visually-hidden" }, " (verified)"),
        )
      : null,
  );
}

export function formatCount(n) {
  return new Intl.NumberFormat().format(n);
}

export function formatWhen(ms) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  }).format(new Date(ms));
}

/** A decorative icon from web/icons/ (mic, mic-off, hand): the text beside it says what it means. */
export function icon(name) {
  return h("span", { class: `icon icon-${name}`, "aria-hidden": "true" });
}

/** The server sends staff (host, co-hosts, moderators, admins) the staff view: it has `requests`. */
export function isStaffView(room) {
  return Array.isArray(room?.requests);
}
