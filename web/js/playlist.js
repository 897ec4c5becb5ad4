// The room's shared playlist: the queue, adding (a link, or an upload for staff), suggestions
// for staff to approve, vote-skip, and a player kept in step with the room by the drift rules
// of sync.js (the server's playback is the truth; this player only follows it). In DJ mode
// (`playlist_output: room`) the server mixes uploaded items into the room's audio: this player
// stays silent and the panel says the music is playing in the room.

import { h, keyed, show } from "./dom.js";
import { actionButton, actionForm, busy, field } from "./forms.js";
import { notify } from "./notices.js";
import { isStaffView, nameLabel } from "./people.js";
import { ServerClock, correct, roomPosition } from "./sync.js";

const TICK_MS = 250;
const RESYNC_MS = 15000;

function clock(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–:––";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class PlaylistPanel {
  constructor(view) {
    this.view = view;
    this.items = [];
    this.playback = null;
    this.state = null;
    this.lastCorrection = null;
    this.startTimer = null;
    this.clock = new ServerClock(view.connection);
    this.player = h("video", { class: "player", playsInline: true, preload: "auto", hidden: true });
    this.player.addEventListener("loadedmetadata", () => show(this.player, this.player.videoWidth > 0));
    // Tell the room this player has the item: a new item's start waits (briefly) for players.
    this.player.addEventListener("canplay", () => this.#reportReady());
    this.title = h("p", { class: "now-title" }, "Nothing queued yet");
    this.onAir = h("p", { class: "on-air", hidden: true }, h("span", { class: "live-dot", "aria-hidden": "true" }), "Playing in the room: everyone hears it in the room's audio");
    this.time = h("span", { class: "now-time" });
    this.seekBar = h("input", { type: "range", min: 0, max: 0, step: 1, "aria-label": "Position" });
    this.seekBar.addEventListener("change", () =>
      this.#call("playlist:seek", { room_id: view.roomId, position_s: Number(this.seekBar.value) }),
    );
    this.playButton = h("button", { class: "primary small" }, "Play");
    this.playButton.addEventListener("click", () =>
      busy(this.playButton, () =>
        view.connection.call(this.playback?.playing ? "playlist:pause" : "playlist:play", { room_id: view.roomId }),
      ),
    );
    const control = (label, event) =>
      actionButton(label, { class: "ghost small" }, () => view.connection.call(event, { room_id: view.roomId }));
    this.repeat = h("input", { type: "checkbox" });
    this.repeat.addEventListener("change", () =>
      this.#call("playlist:repeat", { room_id: view.roomId, on: this.repeat.checked }),
    );
    this.controls = h(
      "div",
      { class: "row", role: "group", "aria-label": "Playback" },
      control("Previous", "playlist:previous"),
      this.playButton,
      control("Next", "playlist:next"),
      h("label", { class: "toggle" }, this.repeat, "Repeat"),
    );
    this.skipButton = h("button", { class: "ghost small" });
    this.skipButton.addEventListener("click", () =>
      busy(this.skipButton, () =>
        view.connection.call("playlist:vote_skip", { room_id: view.roomId, item_id: this.playback?.item_id }),
      ),
    );
    this.unblock = h("button", { class: "primary small", hidden: true }, "▶ Play here");
    this.unblock.addEventListener("click", () => {
      this.blocked = false;
      show(this.unblock, false);
      this.#follow();
    });
    const muted = h("input", { type: "checkbox", onchange: () => (this.player.muted = muted.checked) });
    this.muteToggle = h("label", { class: "toggle" }, muted, "Mute playlist");
    this.queue = h("ol", { class: "queue-list", "aria-label": "Up next" });
    this.suggestions = h("ul", { class: "queue-list", "aria-label": "Suggestions" });
    this.suggestionsBlock = h("div", { class: "stack" }, h("h3", {}, "Suggestions"), this.suggestions);
    this.empty = h("p", { class: "empty" }, "The playlist is empty.");
    this.addForm = this.#addForm();
    this.element = h(
      "section",
      { class: "playlist card", "aria-labelledby": "playlist-title" },
      h("h2", { id: "playlist-title" }, "Playlist"),
      h(
        "div",
        { class: "now-playing", role: "group", "aria-label": "Now playing" },
        this.player,
        this.title,
        this.onAir,
        h("div", { class: "row now-row" }, this.time, this.seekBar),
        h("div", { class: "row" }, this.controls, this.skipButton, this.unblock, this.muteToggle),
      ),
      this.empty,
      this.queue,
      this.suggestionsBlock,
      this.addForm,
    );
    this.unsubscribe = view.connection.on("playlist:state", (e) => {
      if (e.room_id === view.roomId) this.#state(e);
    });
    this.clock.sync(8).catch(() => {});
    this.resync = setInterval(() => this.clock.sync(2).catch(() => {}), RESYNC_MS);
    this.ticker = setInterval(() => this.#follow(), TICK_MS);
  }

  leave() {
    this.unsubscribe();
    clearInterval(this.ticker);
    clearInterval(this.resync);
    clearTimeout(this.startTimer);
    this.player.pause();
    this.player.removeAttribute("src");
    this.player.load();
  }

  /** Who controls changes with roles and the room's mode. */
  update(room) {
    this.room = room;
    this.#render();
    this.#follow(); // DJ mode may have been switched on or off
  }

  /** DJ mode and an uploaded item: the room's audio carries it, not this player. */
  #playsInRoom(item) {
    return (this.room ?? this.view.room)?.settings?.playlist_output === "room" && Boolean(item?.media_id);
  }

  get controller() {
    const room = this.room ?? this.view.room;
    if (!room) return false;
    const role = room.you?.role;
    if (this.view.app.session.user.admin || ["host", "cohost", "moderator"].includes(role)) return true;
    return room.settings.playlist_mode === "open" && ["speaker"].includes(role);
  }

  get staff() {
    return isStaffView(this.room ?? this.view.room);
  }

  #state(state) {
    // A full state (join, reconnect, a new role) is a fresh start; otherwise the newest wins.
    if (!state.items && this.state && state.version < this.state.version) return;
    this.state = state;
    this.playback = state.playback;
    if (state.items) this.items = state.items;
    this.lastCorrection = null; // a new truth: correct at once
    this.#render();
    this.#follow();
    if (state.items) {
      this.readyFor = null; // the server may have forgotten this player (a reconnect): say it again
      if (this.player.readyState >= 3) this.#reportReady();
    }
  }

  /** Tell the room this player has its item loaded (a new item's start waits for players). */
  #reportReady() {
    const itemId = this.srcItem;
    if (!itemId || this.readyFor === itemId || itemId !== this.playback?.item_id) return;
    if (this.#playsInRoom(this.items.find((i) => i.id === itemId))) return;
    this.readyFor = itemId;
    this.view.connection
      .call("playlist:ready", { room_id: this.view.roomId, item_id: itemId, ready: true })
      .catch(() => {});
  }

  async #call(event, payload) {
    try {
      await this.view.connection.call(event, payload);
    } catch (error) {
      notify(error.display ?? error.message, "error");
    }
  }

  // ---- following the room's playback ----------------------------------------------------------

  #follow() {
    const playback = this.playback;
    const item = playback && this.items.find((i) => i.id === playback.item_id);
    if (!item) {
      if (!this.player.paused) this.player.pause();
      return;
    }
    if (this.#playsInRoom(item)) {
      if (!this.player.paused) this.player.pause();
      show(this.unblock, false);
      this.#showTime(roomPosition(playback, this.clock.now()), item.duration_s);
      return;
    }
    const src = new URL(item.url, location.href).href;
    if (this.player.src !== src || this.srcItem !== item.id) {
      this.player.src = src;
      this.srcItem = item.id;
      this.readyFor = null;
    }
    const now = this.clock.now();
    const length = item.duration_s ?? (Number.isFinite(this.player.duration) ? this.player.duration : null);
    const target = length === null ? roomPosition(playback, now) : Math.min(roomPosition(playback, now), length);
    this.#showTime(target, item.duration_s);
    if (!playback.playing || now < playback.at) {
      if (!this.player.paused) this.player.pause();
      if (Math.abs(this.player.currentTime - target) > 0.05 && !this.player.seeking) this.player.currentTime = target;
      clearTimeout(this.startTimer);
      if (playback.playing) this.startTimer = setTimeout(() => this.#follow(), playback.at - now);
      return;
    }
    if (this.player.ended || (length !== null && target >= length - 0.05)) return; // at its end: the server moves on
    if (this.player.paused) {
      if (this.blocked) return; // the browser wants a tap first ("Play here")
      if (Math.abs(this.player.currentTime - target) > 0.05) this.player.currentTime = target;
      this.player.playbackRate = playback.rate;
      this.player.play().catch((error) => {
        if (error.name !== "NotAllowedError") return;
        this.blocked = true;
        show(this.unblock, true);
      });
      this.lastCorrection = Date.now();
      return;
    }
    if (this.player.seeking || this.player.readyState < 3) return; // buffering: judge later
    const drift = (this.player.currentTime - target) * 1000;
    const fix = correct(drift, target, this.player.playbackRate, playback.rate, Date.now(), this.lastCorrection);
    if (fix?.seek !== undefined) {
      this.player.currentTime = fix.seek;
      this.lastCorrection = Date.now();
    } else if (fix?.rate !== undefined) {
      if (fix.rate !== playback.rate) this.lastCorrection = Date.now();
      this.player.playbackRate = fix.rate;
    }
  }

  #showTime(position, duration) {
    this.time.textContent = `${clock(position)} / ${clock(duration)}`;
    if (document.activeElement !== this.seekBar) this.seekBar.value = String(Math.floor(position));
  }

  // ---- the panel -------------------------------------------------------------------------------

  #render() {
    const playback = this.playback;
    const current = playback && this.items.find((i) => i.id === playback.item_id);
    const controller = this.controller;
    this.title.textContent = current ? current.title : "Nothing queued yet";
    const inRoom = this.#playsInRoom(current);
    show(this.onAir, inRoom && Boolean(playback?.playing));
    show(this.muteToggle, !inRoom);
    this.seekBar.max = String(Math.floor(current?.duration_s ?? 0));
    this.seekBar.disabled = !controller || !current?.duration_s;
    show(this.controls, controller);
    this.playButton.textContent = playback?.playing ? "Pause" : "Play";
    const state = this.state;
    if (state) this.repeat.checked = state.repeat;
    show(this.skipButton, Boolean(current));
    if (state) this.skipButton.textContent = `Vote to skip (${state.skip_votes}/${state.skip_need})`;
    const queued = this.items.filter((i) => i.approved);
    show(this.empty, queued.length === 0);
    keyed(this.queue, queued, (i) => `${i.id}:${i.position}:${controller}:${i.id === playback?.item_id}`, (i) => this.#row(i, controller), () => {});
    const suggested = this.items.filter((i) => !i.approved);
    show(this.suggestionsBlock, this.staff && suggested.length > 0);
    keyed(this.suggestions, suggested, (i) => i.id, (i) => this.#suggestion(i), () => {});
    show(this.upload, this.staff);
  }

  #row(item, controller) {
    const current = item.id === this.playback?.item_id;
    const act = (label, event, payload) =>
      actionButton(label, { class: "ghost small", "aria-label": `${label}: ${item.title}` }, () =>
        this.view.connection.call(event, payload),
      );
    return h(
      "li",
      { class: current ? "current" : null, "aria-current": current ? "true" : null },
      h("div", { class: "item-main" }, h("span", { class: "item-title" }, item.title), h("span", { class: "item-meta" }, nameLabel(item.added_by), " · ", clock(item.duration_s))),
      controller
        ? h(
            "div",
            { class: "row" },
            current ? null : act("Play", "playlist:play", { room_id: this.view.roomId, item_id: item.id }),
            item.position > 0 ? act("Up", "playlist:move", { item_id: item.id, position: item.position - 1 }) : null,
            act("Remove", "playlist:remove", { item_id: item.id }),
          )
        : null,
    );
  }

  #suggestion(item) {
    const call = (event) => () => this.view.connection.call(event, { item_id: item.id });
    const approve = actionButton("Approve", { class: "primary small", "aria-label": `Approve: ${item.title}` }, call("playlist:approve"));
    const remove = actionButton("Decline", { class: "ghost small", "aria-label": `Decline: ${item.title}` }, call("playlist:remove"));
    return h("li", {}, h("div", { class: "item-main" }, h("span", { class: "item-title" }, item.title), h("span", { class: "item-meta" }, nameLabel(item.added_by))), h("div", { class: "row" }, approve, remove));
  }

  #addForm() {
    const url = h("input", { type: "url", name: "url", required: true, placeholder: "https://…", maxLength: 2000 });
    const title = h("input", { name: "title", maxLength: 200, placeholder: "Optional" });
    const length = h("input", { name: "length", placeholder: "3:45", pattern: "^(\\d+:)?[0-5]?\\d$|^\\d+$", inputMode: "numeric" });
    const submit = h("button", { type: "submit" }, "Add");
    const form = actionForm(
      { class: "stack add-item", "aria-label": "Add to the playlist" },
      submit,
      async () => {
        const payload = { room_id: this.view.roomId, url: url.value.trim() };
        if (title.value.trim()) payload.title = title.value.trim();
        if (length.value.trim()) {
          const [a, b] = length.value.trim().split(":").map(Number);
          payload.duration_s = b === undefined ? a : a * 60 + b;
        }
        const { item } = await this.view.connection.call("playlist:add", payload);
        form.reset();
        notify(item.approved ? "Added to the playlist." : "Suggested: the hosts will look at it.");
      },
      h("div", { class: "row" }, field("Link to a song or video", url), field("Title", title), field("Length", length, "So the room moves on at its end")),
      submit,
    );
    const file = h("input", { type: "file", name: "file", accept: "audio/*,video/*" });
    const send = h("button", { type: "submit" }, "Upload and add");
    this.upload = actionForm(
      { class: "stack", "aria-label": "Upload to the playlist", hidden: true },
      send,
      async () => {
        if (!file.files.length) throw new Error("Choose a file first");
        const body = new FormData();
        body.append("file", file.files[0]);
        const response = await fetch(`/api/rooms/${encodeURIComponent(this.view.roomId)}/media`, {
          method: "POST",
          body,
          headers: { Authorization: `Bearer ${this.view.app.session.token}` },
        });
        const answer = await response.json().catch(() => null);
        if (!response.ok) throw new Error(answer?.error?.message ?? `The server answered ${response.status}`);
        await this.view.connection.call("playlist:add", { room_id: this.view.roomId, media_id: answer.media.id });
        this.upload.reset();
        notify(`Uploaded “${answer.media.title}”.`);
      },
      field("Upload a file", file),
      send,
    );
    return h("div", { class: "stack" }, form, this.upload);
  }
}
