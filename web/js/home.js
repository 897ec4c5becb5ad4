// Home: rooms live now (by listeners), upcoming rooms with "remind me", and for hosts a form
// to start or schedule a room.

import { api } from "./api.js";
import { h, fill, keyed } from "./dom.js";
import { actionForm, busy, field } from "./forms.js";
import { notify } from "./notices.js";
import { avatar, formatCount, formatWhen, nameLabel } from "./people.js";

const REFRESH_MS = 10000;

/** "Remind me" for a scheduled room: the server tells this user (on any page) when it starts. */
export function remindButton(app, roomId, title) {
  const on = app.session.reminders.has(roomId);
  const button = h("button", { "aria-pressed": String(on) }, on ? "🔔 Reminder set" : "Remind me");
  if (title) button.setAttribute("aria-label", `Remind me about ${title}`);
  button.addEventListener("click", () =>
    busy(button, async () => {
      if (!app.session.signedIn) {
        app.go(`#/signin?next=${encodeURIComponent(location.hash || "#/")}`);
        return;
      }
      const want = button.getAttribute("aria-pressed") !== "true";
      await app.connect().call("room:remind", { room_id: roomId, on: want });
      app.session.setReminder(roomId, want);
      button.setAttribute("aria-pressed", String(want));
      button.textContent = want ? "🔔 Reminder set" : "Remind me";
      notify(want ? "We'll tell you when it starts." : "Reminder removed.");
    }),
  );
  return button;
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
      h("p", {}, h("a", { href: "#/rankings" }, "Most listened rooms, artists and markets →")),
      app.session.signedIn
        ? h("p", {}, h("button", { class: "link", onclick: () => app.showBlocked() }, "People you blocked"))
        : null,
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
      for (const empty of [this.liveEmpty, this.upcomingEmpty]) {
        empty.hidden = false;
        empty.textContent = `Couldn't load rooms: ${error.display ?? error.message}`;
      }
    }
  }

  #list(list, empty, rooms, emptyText) {
    empty.hidden = rooms.length > 0;
    empty.textContent = emptyText;
    keyed(list, rooms, (r) => r.id, (r) => this.#card(r), (el, r) => el.update(r));
  }

  /** A room's card, built once: update(room) changes its title, host, count and time in place. */
  #card(room) {
    const href = `#/room/${encodeURIComponent(room.id)}`;
    const title = h("a", { class: "room-title", href });
    const host = h("div", { class: "room-host" });
    const side = h("div", { class: "room-card-side" });
    const el = h(
      "li",
      { class: "room-card" },
      h(
        "div",
        { class: "room-card-main" },
        title,
        host,
        room.topics.length
          ? h("ul", { class: "topics", "aria-label": "Topics" }, room.topics.map((t) => h("li", {}, t)))
          : null,
      ),
      side,
    );
    let hostId = null;
    let more; // the updates of a live or a scheduled card
    if (room.status === "live") {
      const faces = h("div", { class: "faces", "aria-hidden": "true" });
      const count = h("span", { class: "count" });
      const join = h("a", { class: "button primary", href }, "Join");
      fill(side, faces, count, join);
      more = (r) => {
        fill(faces, [r.host, ...r.cohosts, ...r.speakers].slice(0, 4).map((u) => avatar(u, "s")));
        count.textContent = `${formatCount(r.listener_count)} listening`;
        join.setAttribute("aria-label", `Join ${r.title}`);
      };
    } else {
      const time = h("time");
      const remind = remindButton(this.app, room.id, room.title);
      fill(side, time, remind);
      more = (r) => {
        time.dateTime = new Date(r.scheduled_for).toISOString();
        time.textContent = formatWhen(r.scheduled_for);
        remind.setAttribute("aria-label", `Remind me about ${r.title}`);
      };
    }
    el.update = (r) => {
      title.textContent = r.title;
      if (r.host.id !== hostId) fill(host, avatar(r.host, "s"), nameLabel(r.host));
      hostId = r.host.id;
      more(r);
    };
    return el;
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
