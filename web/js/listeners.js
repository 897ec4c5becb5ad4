// A room's listeners over time (the samples the server keeps every 10 s), drawn while the room
// is open and refreshed now and then; folded away until someone opens it.

import { api } from "./api.js";
import { h } from "./dom.js";
import { ListenersChart } from "./charts.js";

const REFRESH_MS = 15000;

export class ListenersPanel {
  constructor(roomId) {
    this.roomId = roomId;
    this.chart = new ListenersChart();
    this.note = h("p", { class: "hint" }, "Counted every few seconds while the room is live.");
    this.element = h(
      "details",
      { class: "card listeners-panel" },
      h("summary", {}, h("h2", { class: "inline-heading" }, "Listeners over time")),
      this.chart.element,
      this.note,
    );
    this.element.addEventListener("toggle", () => (this.element.open ? this.#refresh() : null));
    this.timer = setInterval(() => this.element.open && this.#refresh(), REFRESH_MS);
  }

  async #refresh() {
    try {
      const { samples } = await api.get(`/api/rooms/${encodeURIComponent(this.roomId)}/listeners`);
      if (!this.left) this.chart.show(samples);
    } catch (error) {
      this.note.textContent = error.code === "not_found" ? "No counts yet: the first comes within seconds." : error.message;
    }
  }

  leave() {
    this.left = true;
    clearInterval(this.timer);
    this.chart.destroy();
  }
}
