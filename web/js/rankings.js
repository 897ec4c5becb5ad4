// "Most listened": rooms ranked by peak, unique listeners or listening minutes over a rolling
// period, for every market or one; top artists; and, for a chosen room, its listeners over time
// and where they listened from. Public: no sign-in needed.

import { api } from "./api.js";
import { h, fill } from "./dom.js";
import { choices } from "./forms.js";
import { BarChart, ListenersChart } from "./charts.js";
import { notify } from "./notices.js";
import { formatCount, formatWhen, nameLabel } from "./people.js";

const METRICS = { unique: "Unique listeners", peak: "Peak concurrent", minutes: "Listening minutes" };
const PERIODS = { day: "24 hours", week: "7 days", month: "30 days", year: "Year", all: "All time" };
const MARKETS = ["KR", "JP", "US", "BR", "ID", "PH", "MX", "TH", "VN", "FR", "DE", "GB", "ES", "IN", "TR"];
const CHART_TOP = 10;

export class RankingsView {
  constructor(app) {
    this.app = app;
    this.metric = "unique";
    this.period = "week";
    this.market = "";
    this.asked = 0; // the latest request: an older answer arriving late is dropped
    this.left = false;
    this.list = h("ol", { class: "ranking-list", "aria-labelledby": "rankings-title" });
    this.empty = h("p", { class: "empty" }, "Loading…");
    this.chart = new BarChart("Top rooms");
    this.artists = h("ol", { class: "ranking-list", "aria-labelledby": "artists-title" });
    this.detail = h("section", { class: "card stack", hidden: true, "aria-labelledby": "detail-title" });
    this.listenersChart = new ListenersChart();
    this.marketsChart = new BarChart("Listeners by market");
    const marketOptions = { "": "Every market", ...Object.fromEntries(MARKETS.map((m) => [m, m])) };
    this.element = h(
      "div",
      { class: "rankings stack" },
      h("h1", { id: "rankings-title" }, "Most listened"),
      choices("Measure", METRICS, this.metric, (v) => this.#set({ metric: v })),
      choices("Period", PERIODS, this.period, (v) => this.#set({ period: v })),
      choices("Market", marketOptions, this.market, (v) => this.#set({ market: v })),
      h("p", { class: "hint" }, "Guests count in the totals; the second number counts signed-in listeners only."),
      h("section", { class: "card stack" }, this.chart.element, this.empty, this.list),
      this.detail,
      h("section", { class: "card stack", "aria-labelledby": "artists-title" }, h("h2", { id: "artists-title" }, "Top artists by unique listeners"), this.artists),
    );
  }

  enter() {
    this.#load();
  }

  leave() {
    this.left = true;
    this.chart.destroy();
    this.listenersChart.destroy();
    this.marketsChart.destroy();
  }

  #set(change) {
    Object.assign(this, change);
    this.#load();
  }

  async #load() {
    const query = new URLSearchParams({ metric: this.metric, period: this.period, limit: "50" });
    if (this.market) query.set("market", this.market);
    const artists = new URLSearchParams({ period: this.period, limit: "10" });
    if (this.market) artists.set("market", this.market);
    const asked = ++this.asked;
    try {
      const [rooms, top] = await Promise.all([api.get(`/api/rankings?${query}`), api.get(`/api/rankings/artists?${artists}`)]);
      if (this.left || asked !== this.asked) return;
      this.#showRooms(rooms.rankings);
      fill(this.artists, ...top.rankings.map((a) => h("li", {}, h("span", { class: "rank" }, `#${a.rank}`), nameLabel(a.host), h("span", { class: "rank-value" }, `${formatCount(a.value)} listeners · ${a.rooms} ${a.rooms === 1 ? "room" : "rooms"}`))));
    } catch (error) {
      notify(error.display ?? error.message, "error");
    }
  }

  #showRooms(rankings) {
    this.empty.textContent = "No rooms in this period yet.";
    this.empty.hidden = rankings.length > 0;
    const unit = this.metric === "minutes" ? "min" : "listeners";
    fill(
      this.list,
      ...rankings.map((r) => {
        const open = h("button", { class: "link", "aria-label": `Details: ${r.title}` }, r.title);
        open.addEventListener("click", () => this.#showRoom(r));
        return h(
          "li",
          {},
          h("span", { class: "rank" }, `#${r.rank}`),
          h("div", { class: "item-main" }, open, h("span", { class: "item-meta" }, nameLabel(r.host), ` · ${formatWhen(r.at)}`, r.live ? " · live now" : "")),
          h("span", { class: "rank-value" }, `${formatCount(r.value)} ${unit}`, h("span", { class: "item-meta" }, ` (${formatCount(r.value_signed_in)} signed in)`)),
        );
      }),
    );
    this.chart.show(rankings.slice(0, CHART_TOP).map((r) => ({ label: `#${r.rank}`, value: r.value })));
  }

  async #showRoom(ranked) {
    const id = encodeURIComponent(ranked.room_id);
    const asked = ++this.asked;
    try {
      const [series, markets] = await Promise.all([api.get(`/api/rooms/${id}/listeners`), api.get(`/api/rankings/markets?room=${id}`)]);
      if (this.left || asked !== this.asked) return;
      fill(
        this.detail,
        h("h2", { id: "detail-title" }, ranked.title),
        h("h3", {}, "Listeners over time"),
        this.listenersChart.element,
        h("h3", {}, "Where they listened from"),
        this.marketsChart.element,
        h("ul", { class: "market-list" }, ...markets.markets.map((m) => h("li", {}, `${m.market === "unknown" ? "Unknown" : m.market}: ${formatCount(m.listeners)}`))),
      );
      this.detail.hidden = false;
      this.listenersChart.show(series.samples);
      this.marketsChart.show(markets.markets.map((m) => ({ label: m.market, value: m.listeners })));
      this.detail.scrollIntoView({ block: "nearest" });
    } catch (error) {
      notify(error.display ?? error.message, "error");
    }
  }
}
