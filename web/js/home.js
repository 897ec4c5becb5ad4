// Home: rooms live now (by listeners), upcoming rooms with "remind me", and for hosts a form
// to start or schedule a room.

import { api } from "./api.js";
import { h, fill, keyed } from "./dom.js";
import { actionForm, busy, field } from "./forms.js";
import { notify } from "./notices.js";
import { avatar, formatCount, formatWhen, nameLabel } from "./people.js";

const REFRESH_MS = 10000;
const REMINDERS_KEY = "liveroom.reminders";

function reminders() {
  try {
    return new Set(JSON.parse(localStorage.getItem(REMINDERS_KEY) ?? "[]"));
  } catch {
    return new Set();
  }
}

function saveReminders(set) {
  localStorage.setItem(REMINDERS_KEY, JSON.stringify([...set].slice(-200)));
}

export class HomeView {
  constructor(app) {
    this.app = app;
    this.timer = null;
    this.live = h("ul", { class: "room-list", "aria-labelledby": "live-title" });
    this.upcoming = h("ul", { class: "room-list", "aria-labelledby": "upcoming-title" });
    this.liveEmpty = h("p", { class: "empty" }, "Loading…");
    this.upcomingEmpty = h("p", { class: "empty" }, "Loading…");
    this.element = h(
      "div",
      { class: "home" },
      app.session.canHost ? this.#createForm() : null,
      h(
        "section",
        { "aria-labelledby": "live-title" },
        h("h1", { id: "live-title" }, h("span", { class: "live-dot", "aria-hidden": "true" }), "Live now"),
        this.liveEmpty,
        this.live,
      ),
      h(
        "section",
        { "aria-labelledby": "upcoming-title" },
        h("h2", { id: "upcoming-title" }, "Coming up"),
        this.upcomingEmpty,
        this.upcoming,
      ),
    );
  }

  enter() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  leave() {
    clearInterval(this.timer);
  }

  async refresh() {
    try {
      const [live, scheduled] = await Promise.all([api.rooms("live"), api.rooms("scheduled")]);
      this.#list(this.live, this.liveEmpty, live.rooms, "No rooms are live right now.");
      this.#list(this.upcoming, this.upcomingEmpty, scheduled.rooms, "Nothing scheduled yet.");
    } catch (error) {
      this.liveEmpty.hidden = false;
      this.liveEmpty.textContent = `Couldn't load rooms: ${error.display ?? error.message}`;
    }
  }

  #list(list, empty, rooms, emptyText) {
    empty.hidden = rooms.length > 0;
    empty.textContent = emptyText;
    keyed(list, rooms, (r) => r.id, () => h("li", { class: "room-card" }), (el, r) => this.#card(el, r));
  }

  #card(el, room) {
    const href = `#/room/${encodeURIComponent(room.id)}`;
    const live = room.status === "live";
    const speakers = [room.host, ...room.cohosts, ...room.speakers].slice(0, 4);
    fill(
      el,
      h(
        "div",
        { class: "room-card-main" },
        h("a", { class: "room-title", href }, room.title),
        h("div", { class: "room-host" }, avatar(room.host, "s"), nameLabel(room.host)),
        room.topics.length
          ? h("ul", { class: "topics", "aria-label": "Topics" }, room.topics.map((t) => h("li", {}, t)))
          : null,
      ),
      h(
        "div",
        { class: "room-card-side" },
        live
          ? [
              h("div", { class: "faces", "aria-hidden": "true" }, speakers.map((u) => avatar(u, "s"))),
              h("span", { class: "count" }, `${formatCount(room.listener_count)} listening`),
              h("a", { class: "button primary", href, "aria-label": `Join ${room.title}` }, "Join"),
            ]
          : [
              h("time", { dateTime: new Date(room.scheduled_for).toISOString() }, formatWhen(room.scheduled_for)),
              this.#remindButton(room),
            ],
      ),
    );
  }

  #remindButton(room) {
    const set = reminders();
    const on = set.has(room.id);
    const button = h(
      "button",
      { "aria-pressed": String(on), "aria-label": `Remind me about ${room.title}` },
      on ? "🔔 Reminder set" : "Remind me",
    );
    button.addEventListener("click", () =>
      busy(button, async () => {
        if (!this.app.session.signedIn) {
          this.app.go(`#/signin?next=${encodeURIComponent("#/")}`);
          return;
        }
        const want = button.getAttribute("aria-pressed") !== "true";
        await this.app.connect().call("room:remind", { room_id: room.id, on: want });
        const current = reminders();
        if (want) current.add(room.id);
        else current.delete(room.id);
        saveReminders(current);
        button.setAttribute("aria-pressed", String(want));
        button.textContent = want ? "🔔 Reminder set" : "Remind me";
        notify(want ? "We'll tell you when it starts." : "Reminder removed.");
      }),
    );
    return button;
  }

  #createForm() {
    const title = h("input", { name: "title", required: true, maxLength: 120, placeholder: "What's the room about?" });
    const topics = h("input", { name: "topics", placeholder: "music, premiere" });
    const when = h("input", { name: "when", type: "datetime-local" });
    const submit = h("button", { class: "primary", type: "submit" }, "Start room");
    when.addEventListener("input", () => {
      submit.textContent = when.value ? "Schedule room" : "Start room";
    });
    const form = actionForm(
      { class: "card create-room", "aria-labelledby": "create-title" },
      submit,
      async () => {
        const payload = {
          title: title.value.trim(),
          topics: topics.value.split(",").map((t) => t.trim()).filter(Boolean).slice(0, 5),
        };
        if (when.value) payload.scheduled_for = new Date(when.value).getTime();
        const { room } = await this.app.connect().call("room:create", payload);
        form.reset();
        submit.textContent = "Start room";
        if (room.status === "live") this.app.go(`#/room/${encodeURIComponent(room.id)}`);
        else {
          notify(`Scheduled for ${formatWhen(room.scheduled_for)}.`);
          this.refresh();
        }
      },
      h("h2", { id: "create-title" }, "Host a room"),
      h(
        "div",
        { class: "create-fields" },
        field("Title", title),
        field("Topics", topics, "Up to 5, separated by commas."),
        field("Start later (optional)", when),
      ),
      submit,
    );
    return form;
  }
}
