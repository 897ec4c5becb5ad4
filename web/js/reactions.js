// Reaction bursts: the emoji tapped in the room float up over the stage. Bounded: at most
// MAX_FLOATING on screen, so a storm of taps never floods the page.

import { h } from "./dom.js";

const MAX_FLOATING = 40;
const PER_MESSAGE = 12;

export class ReactionBurst {
  constructor() {
    this.layer = h("div", { class: "burst-layer", "aria-hidden": "true" });
    this.reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  }

  /** Show `counts` ({emoji: n}) — the taps since the server's previous message. */
  show(counts) {
    const entries = Object.entries(counts).filter(([, n]) => n > 0);
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    if (!total) return;
    let budget = Math.min(PER_MESSAGE, total);
    for (const [emoji, n] of entries) {
      const share = Math.max(1, Math.round((n / total) * Math.min(PER_MESSAGE, total)));
      for (let i = 0; i < share && budget > 0; i++, budget--) this.#float(emoji, i);
    }
  }

  #float(emoji, index) {
    while (this.layer.childElementCount >= MAX_FLOATING) this.layer.firstElementChild.remove();
    const el = h("span", { class: "burst" }, emoji);
    el.style.setProperty("--x", `${5 + Math.random() * 90}%`);
    el.style.setProperty("--delay", `${index * 60}ms`);
    el.style.setProperty("--drift", `${Math.round((Math.random() - 0.5) * 80)}px`);
    if (this.reducedMotion.matches) el.classList.add("still");
    el.addEventListener("animationend", () => el.remove());
    this.layer.append(el);
  }
}
