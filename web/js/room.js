// A room: the stage (avatars with speaking rings, mute icons and roles), the listener count,
// reactions, the raised hand and invitations, the microphone, and the staff's tools. The
// server's snapshot is the truth: every control only asks, and a refusal shows its message.

import { RoomAudio } from "./audio.js";
import { HlsListening, attachHls } from "./hls.js";
import { h, fill, keyed, show } from "./dom.js";
import { actionButton, busy } from "./forms.js";
import { remindButton } from "./home.js";
import { ModerationPanel, openMemberMenu } from "./moderation.js";
import { ListenersPanel } from "./listeners.js";
import { PlaylistPanel } from "./playlist.js";
import { QaPanel } from "./qa.js";
import { notify } from "./notices.js";
import { ROLE_LABELS, avatar, formatCount, formatWhen, icon, nameLabel } from "./people.js";
import { ReactionBurst } from "./reactions.js";

const ON_STAGE = new Set(["host", "cohost", "speaker"]);
const STAFF = new Set(["host", "cohost", "moderator"]);
const SILENT_DBOV = -60;
const ORIGINAL_SOUND_KEY = "liveroom.originalSound";

const ERROR_TITLES = {
  not_found: "This room doesn't exist",
  gone: "This room has ended",
  conflict: "This room hasn't started yet",
  forbidden: "You can't join this room",
};

export class RoomView {
  constructor(app, roomId) {
    this.app = app;
    this.roomId = roomId;
    this.room = null;
    this.audio = null;
    this.reactions = [];
    this.levels = {};
    this.unsubscribe = [];
    this.dialogs = new Set(); // open dialogs about this room: closed when it goes away
    this.media = null; // the join's audio settings
    this.built = false;
    this.joined = false;
    this.joining = false;
    this.attempts = 0; // joins sent: only the latest one's answer counts
    this.left = false;
    this.onAudioStatus = (e) => this.#audioStatus(e.detail);
    this.burst = new ReactionBurst();
    this.element = h("section", { class: "room", "aria-busy": "true" }, h("p", { class: "empty" }, "Joining…"));
  }

  get me() {
    return this.app.session.user;
  }

  get role() {
    return this.room?.you?.role ?? null;
  }

  get onStage() {
    return ON_STAGE.has(this.role);
  }

  async enter() {
    this.connection = this.app.connect();
    const on = (event, handler) =>
      this.unsubscribe.push(
        this.connection.on(event, (payload) => {
          if (payload?.room_id === this.roomId || payload?.id === this.roomId) handler(payload);
        }),
      );
    on("room:state", (room) => this.#apply(room));
    on("room:count", (e) => this.#count(e.listeners));
    // Over HLS the room is heard seconds late: rings and reactions wait as long.
    on("speaking", (e) => this.#inStep(() => this.#speaking(e.levels)));
    on("reactions", (e) => this.#inStep(() => this.burst.show(e.counts)));
    on("rtc:restart", (e) => this.#restartAudio(e.reason));
    on("room:ended", () => this.#ended());
    on("room:record", (e) => notify(recordNotice(e)));
    on("room:reported", (e) => this.moderation?.addReport(e.report));
    on("room:removed", (e) => this.#removed(e.ban));
    on("stage:invited", (e) => notify(`${e.by.name} invited you to join as ${ROLE_LABELS[e.role]}`));
    this.qa = new QaPanel(this); // before joining: the full list follows the join's ack
    this.unsubscribe.push(() => this.qa.leave());
    this.playlist = new PlaylistPanel(this); // its state follows the join's ack too
    this.unsubscribe.push(() => this.playlist.leave());
    this.listeners = new ListenersPanel(this.roomId);
    this.unsubscribe.push(() => this.listeners.leave());
    const resumed = () => {
      if (this.room?.status !== "ended") this.#join(true);
    };
    this.connection.addEventListener("resumed", resumed);
    this.unsubscribe.push(() => this.connection.removeEventListener("resumed", resumed));
    await this.#join(false);
  }

  leave() {
    this.left = true;
    for (const stop of this.unsubscribe) stop();
    this.unsubscribe = [];
    this.#stopAudio();
    this.#closeDialogs();
    if (this.joined && this.room?.status !== "ended") {
      this.connection.call("room:leave", { room_id: this.roomId }).catch(() => {});
    }
    this.joined = false;
    document.title = "liveroom";
  }

  /** The room's address was opened again: join again if the last try failed, else nothing. */
  retry() {
    if (this.joined || this.joining || this.left) return;
    this.element.setAttribute("aria-busy", "true");
    fill(this.element, h("p", { class: "empty" }, "Joining…"));
    this.#join(false);
  }

  /** What leaving does to the room when you host it; null when it does nothing to it. */
  leaveWarning() {
    const room = this.room;
    if (!this.joined || this.role !== "host" || room.status !== "live") return null;
    const away = new Set(room.away ?? []);
    const heir = room.cohosts.find((u) => !away.has(u.id)) ?? room.cohosts[0];
    return room.settings?.on_host_leave !== "end" && heir
      ? `You host this room: leaving hands it over to ${heir.name}.`
      : "You host this room: leaving ends the room for everyone.";
  }

  /** Keep a dialog opened about this room, to close it when the room goes away. */
  track(dialog) {
    this.dialogs.add(dialog);
    dialog.addEventListener("close", () => this.dialogs.delete(dialog));
    return dialog;
  }

  #closeDialogs() {
    for (const dialog of [...this.dialogs]) dialog.close();
  }

  async #join(resumed) {
    const attempt = ++this.attempts;
    this.joining = true;
    let ack;
    try {
      ack = await this.connection.call("room:join", { room_id: this.roomId });
    } catch (error) {
      if (this.left || attempt !== this.attempts) return;
      this.joining = false;
      if (resumed && error.code === "offline") return; // the next "resumed" tries again
      this.#failed(error);
      return;
    }
    if (this.left) {
      this.connection.call("room:leave", { room_id: this.roomId }).catch(() => {}); // left meanwhile
      return;
    }
    if (attempt !== this.attempts) return; // a newer join's answer counts
    this.joining = false;
    this.joined = true;
    this.reactions = ack.reactions ?? [];
    this.media = ack.media;
    this.room = null; // take the join's snapshot whatever its version
    if (!this.built) this.#build();
    if (resumed) this.#stopAudio(); // a new connection: #apply offers audio again
    this.#apply(ack.room);
    if (resumed) notify("Reconnected");
  }

  /** Run `show` when the audio this member hears reaches the same moment. */
  #inStep(show) {
    const delay = this.audio instanceof HlsListening ? (this.media?.hls_delay_ms ?? 0) : 0;
    if (delay > 0) setTimeout(() => !this.left && show(), delay);
    else show();
  }

  /** An ended room's replay, when it was recorded (its playlist is written as the room ends). */
  async #offerReplay() {
    if (this.room?.settings?.recording === false) return; // nothing was kept
    const url = `/hls/${encodeURIComponent(this.roomId)}/replay.m3u8`;
    for (let attempt = 0; attempt < 5 && !this.left; attempt++) {
      const found = await fetch(url, { method: "HEAD" }).then((r) => r.ok, () => false);
      if (found) {
        const player = h("audio", { controls: true, preload: "none", "aria-label": "Replay of this room" });
        this.replay.append(h("h3", {}, "Replay"), player);
        this.replay.hidden = false;
        const detach = await attachHls(player, url, { live: false, onFatal: (why) => notify(`The replay stopped: ${why}`, "error") });
        if (this.left) detach();
        else this.unsubscribe.push(detach);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  #startAudio(onStage = this.onStage) {
    const element = document.getElementById("room-audio");
    // A crowded room's audience listens over HLS; the stage always over WebRTC.
    this.audio =
      this.media.mode === "hls" && !onStage
        ? new HlsListening({ url: this.media.hls_url, element })
        : new RoomAudio({
            connection: this.connection,
            roomId: this.roomId,
            iceServers: this.media.ice_servers ?? [],
            element,
            originalSound: localStorage.getItem(ORIGINAL_SOUND_KEY) === "1",
          });
    this.audio.addEventListener("status", this.onAudioStatus);
    this.audio.setMicEnabled(onStage && this.#micOpen());
    this.audio.connect(onStage);
  }

  #stopAudio() {
    this.audio?.removeEventListener("status", this.onAudioStatus);
    this.audio?.close();
    this.audio = null;
    if (this.built) this.#audioStatus({ state: null, blocked: false, micError: null });
  }

  #restartAudio(reason) {
    if (!this.audio) return;
    if (this.audio instanceof HlsListening) {
      if (reason === "on stage") {
        // Brought on stage: WebRTC from now on. (rtc:restart comes before the room:state with
        // the new role, so say it: don't ask onStage.)
        this.#stopAudio();
        this.#startAudio(true);
      }
      return;
    }
    const publish = reason === "on stage" ? true : reason === "off stage" ? false : this.onStage;
    this.audio.setMicEnabled(publish && this.#micOpen());
    this.audio.connect(publish);
  }

  #micOpen() {
    return this.onStage && !this.room.muted.includes(this.me.id);
  }

  // ---- building the page -------------------------------------------------------------------

  #build() {
    this.built = true;
    this.endedShown = false;
    this.invitedAs = null;
    this.title = h("h1", { class: "room-title" });
    this.status = h("span", { class: "badge" });
    this.recorded = h("span", { class: "badge recorded", title: "This room is recorded: it will have a replay", hidden: true }, "● REC");
    this.topics = h("ul", { class: "topics", "aria-label": "Topics" });
    this.count = h("span", { class: "count" });
    this.stage = h("ul", { class: "people", "aria-label": "On stage", tabindex: "-1" });
    this.audienceNote = h("p", { class: "audience-note" });
    this.invite = h("div", { class: "invite-banner", role: "region", "aria-label": "Invitation", hidden: true });
    this.controls = h("div", { class: "controls", role: "toolbar", "aria-label": "Room controls" });
    this.audioState = h("span", { class: "audio-state", role: "status" });
    this.playButton = h("button", { class: "primary", hidden: true, onclick: () => this.audio?.resume() }, "▶ Play audio");
    this.micButton = h("button", { class: "mic" });
    this.micButton.addEventListener("click", () => this.#toggleMic());
    this.micProblem = h("span", { class: "mic-problem", role: "status" });
    this.handButton = h("button", { class: "hand" });
    this.handButton.addEventListener("click", () => this.#toggleHand());
    this.leaveStageButton = h("button", { class: "ghost" }, "Leave stage");
    this.leaveStageButton.addEventListener("click", () =>
      busy(this.leaveStageButton, () =>
        this.connection.call("stage:demote", { room_id: this.roomId, user_id: this.me.id }),
      ),
    );
    const original = h("input", {
      type: "checkbox",
      checked: localStorage.getItem(ORIGINAL_SOUND_KEY) === "1",
      onchange: () => this.#originalSound(original.checked),
    });
    this.originalSound = h(
      "label",
      { class: "toggle", title: "No echo cancellation, noise suppression or gain control: for music" },
      original,
      "Original sound",
    );
    const reactionBar = h(
      "div",
      { class: "reaction-bar", role: "group", "aria-label": "Reactions" },
      this.reactions.map((emoji) =>
        h("button", { class: "reaction", "aria-label": `React ${emoji}`, onclick: () => this.#react(emoji) }, emoji),
      ),
    );
    fill(
      this.controls,
      h("div", { class: "controls-main" }, this.micButton, this.micProblem, this.handButton, this.leaveStageButton, this.originalSound),
      reactionBar,
      h("div", { class: "controls-audio" }, this.audioState, this.playButton),
    );
    const leaveButton = h("a", { class: "button ghost", href: "#/" }, "Leave");
    this.moderation = new ModerationPanel(this);
    this.element.removeAttribute("aria-busy");
    fill(
      this.element,
      h(
        "header",
        { class: "room-head" },
        h("div", { class: "room-heading" }, h("div", { class: "room-status" }, this.status, this.recorded, this.count), this.title, this.topics),
        leaveButton,
      ),
      this.invite,
      h(
        "div",
        { class: "room-body" },
        h(
          "div",
          { class: "room-main" },
          h(
            "section",
            { class: "stage card", "aria-labelledby": "stage-title" },
            h("h2", { id: "stage-title", class: "visually-hidden" }, "Stage"),
            this.burst.layer,
            this.stage,
            this.audienceNote,
          ),
          this.playlist.element,
          this.qa.element,
          this.listeners.element,
        ),
        this.moderation.element,
      ),
      this.controls,
    );
  }

  #apply(room) {
    if (!this.built) return; // the join's ack brings the first snapshot
    if (this.room && room.version < this.room.version) return; // an older view: keep ours
    const roleBefore = this.role;
    this.room = room;
    this.title.textContent = room.title;
    document.title = `${room.title} · liveroom`;
    this.status.textContent = room.status === "live" ? "LIVE" : room.status === "scheduled" ? "Scheduled" : "Ended";
    this.status.dataset.status = room.status;
    fill(this.topics, room.topics.map((t) => h("li", {}, t)));
    this.#count(room.listener_count);
    show(this.recorded, room.status === "live" && Boolean(room.settings?.recording));
    this.#renderStage();
    this.#renderInvite();
    this.#renderControls();
    this.moderation.update(room);
    this.qa.update(room);
    this.playlist.update(room);
    this.audio?.setMicEnabled(this.#micOpen());
    if (roleBefore && roleBefore !== this.role) {
      this.#closeDialogs(); // what they offered was for the role before
      this.#announceRole(roleBefore);
    }
    if (room.status === "ended") this.#ended();
    else if (room.status === "live" && !this.audio) this.#startAudio(); // joined, or just started
  }

  #announceRole(before) {
    const now = this.role;
    if (ON_STAGE.has(now) && !ON_STAGE.has(before)) {
      notify(`You're on stage as ${ROLE_LABELS[now]}. Your microphone is off until you turn it on.`);
    } else if (!ON_STAGE.has(now) && ON_STAGE.has(before)) {
      notify("You're back in the audience.");
    } else if (now) {
      notify(`You're now ${ROLE_LABELS[now]}.`);
    }
  }

  #people() {
    const room = this.room;
    const withRole = (users, role) => users.map((user) => ({ user, role }));
    return [
      { user: room.host, role: "host" },
      ...withRole(room.cohosts, "cohost"),
      ...withRole(room.speakers, "speaker"),
      ...withRole(room.moderators, "moderator"),
    ];
  }

  #renderStage() {
    const room = this.room;
    const muted = new Set(room.muted);
    const away = new Set(room.away ?? []);
    keyed(
      this.stage,
      this.#people(),
      (p) => p.user.id,
      (p) => this.#person(p),
      (el, p) => {
        const isMuted = ON_STAGE.has(p.role) && muted.has(p.user.id);
        const isAway = away.has(p.user.id);
        const you = p.user.id === this.me.id;
        el.dataset.role = p.role;
        el.classList.toggle("muted", isMuted);
        el.classList.toggle("away", isAway);
        el.querySelector(".role").textContent = (you ? "You · " : "") + ROLE_LABELS[p.role] + (isAway ? " · away" : "");
        show(el.querySelector(".mute-icon"), isMuted);
        const parts = [p.user.name, p.user.verified ? "verified" : null, ROLE_LABELS[p.role], isMuted ? "muted" : null, isAway ? "away" : null, you ? "you" : null];
        el.firstElementChild.setAttribute("aria-label", parts.filter(Boolean).join(", "));
        el.person = p;
      },
    );
    this.#speaking(this.levels);
  }

  #person(p) {
    const ring = h("span", { class: "ring" }, avatar(p.user, "l"), h("span", { class: "mute-icon", title: "Muted" }, icon("mic-off")));
    const parts = [ring, nameLabel(p.user), h("span", { class: "role" })];
    if (p.user.id === this.me.id) {
      // Your own tile is only a picture: there is nothing to do to yourself from here.
      return h("li", { class: "person" }, h("div", { class: "person-button", role: "img" }, parts));
    }
    const button = h("button", { class: "person-button" }, parts);
    const li = h("li", { class: "person" }, button);
    button.addEventListener("click", () => openMemberMenu(this, li.person.user, li.person.role, this.stage));
    return li;
  }

  #speaking(levels) {
    this.levels = levels;
    for (const li of this.stage.children) {
      const level = levels[li.dataset.key] ?? -127;
      const speaking = level > SILENT_DBOV && !li.classList.contains("muted");
      li.classList.toggle("speaking", speaking);
      li.style.setProperty("--level", speaking ? String(Math.min(1, (level - SILENT_DBOV) / 60)) : "0");
    }
  }

  #count(listeners) {
    const room = this.room;
    if (!room) return;
    room.listener_count = listeners;
    this.count.textContent = `${formatCount(listeners)} listening`;
    const away = new Set(room.away ?? []);
    const onStage = [room.host, ...room.cohosts, ...room.speakers].filter((u) => !away.has(u.id)).length;
    this.audienceNote.textContent =
      room.status === "scheduled"
        ? `Starts ${room.scheduled_for ? formatWhen(room.scheduled_for) : "soon"}.`
        : `${formatCount(Math.max(0, listeners - onStage))} in the audience`;
  }

  #renderInvite() {
    const role = this.room.you?.invited_as ?? null;
    if (role === this.invitedAs) return; // unchanged: keep the buttons (and the focus on them)
    this.invitedAs = role;
    show(this.invite, Boolean(role));
    if (!role) {
      this.invite.replaceChildren();
      return;
    }
    const answer = (event) => () => this.connection.call(event, { room_id: this.roomId });
    const accept = actionButton("Accept", { class: "primary" }, answer("stage:accept"));
    const decline = actionButton("Decline", { class: "ghost" }, answer("stage:decline"));
    fill(
      this.invite,
      h("p", {}, `You're invited to join as ${ROLE_LABELS[role]}.`),
      h("div", { class: "row" }, accept, decline),
    );
  }

  #renderControls() {
    const room = this.room;
    const live = room.status === "live";
    const micMuted = room.muted.includes(this.me.id);
    const onStage = this.onStage;
    show(this.controls, room.status !== "ended");
    show(this.micButton, live && onStage);
    show(this.micProblem, live && onStage);
    fill(this.micButton, icon(micMuted ? "mic-off" : "mic"), micMuted ? "Unmute" : "Mute");
    this.micButton.classList.toggle("on", !micMuted);
    show(this.originalSound, live && onStage);
    const listener = this.role === "listener";
    show(this.handButton, live && listener && !room.you.invited_as);
    const raised = Boolean(room.you?.hand_raised);
    this.handButton.classList.toggle("raised", raised);
    fill(this.handButton, icon("hand"), raised ? "Lower hand" : "Raise hand");
    show(this.leaveStageButton, live && (this.role === "speaker" || this.role === "cohost" || this.role === "moderator"));
    for (const button of this.controls.querySelectorAll(".reaction")) button.disabled = !live;
  }

  // ---- actions -------------------------------------------------------------------------------

  #toggleMic() {
    const muted = this.room.muted.includes(this.me.id);
    busy(this.micButton, async () => {
      if (!muted) return this.connection.call("stage:mute", { room_id: this.roomId, user_id: this.me.id });
      const audio = this.audio;
      if (audio && !audio.publishing) {
        await audio.connect(true); // the microphone was refused or missing: ask again
        if (!audio.publishing) return null; // still not: said next to this button
      }
      return this.connection.call("stage:unmute", { room_id: this.roomId });
    });
  }

  #toggleHand() {
    const raised = Boolean(this.room.you?.hand_raised);
    busy(this.handButton, async () => {
      await this.connection.call(raised ? "stage:cancel" : "stage:request", { room_id: this.roomId });
      if (!raised) notify("Hand raised: the hosts can see it.");
    });
  }

  #react(emoji) {
    this.connection.call("react", { room_id: this.roomId, emoji }).catch((error) => notify(error.display, "error"));
  }

  #originalSound(on) {
    localStorage.setItem(ORIGINAL_SOUND_KEY, on ? "1" : "0");
    this.audio?.setOriginalSound(on);
  }

  // ---- ends and failures -----------------------------------------------------------------------

  #audioStatus({ state, message, blocked, micError }) {
    const text = {
      connecting: "Connecting audio…",
      connected: this.onStage ? "Audio connected" : "Listening",
      retrying: message,
      failed: message,
    }[state];
    this.audioState.textContent = blocked ? "Tap “Play audio” to listen" : (text ?? "");
    this.audioState.dataset.state = blocked ? "blocked" : (state ?? "");
    show(this.playButton, blocked);
    this.micProblem.textContent = micError ?? "";
  }

  #ended() {
    this.#stopAudio();
    this.#closeDialogs();
    if (!this.built || this.endedShown) return;
    this.endedShown = true;
    this.room.status = "ended";
    this.status.textContent = "Ended";
    this.status.dataset.status = "ended";
    for (const el of [this.controls, this.invite, this.moderation.element, this.recorded]) show(el, false);
    this.qa.update(this.room); // no more asking
    this.playlist.leave(); // and no more music
    const heading = h("h2", { tabindex: "-1" }, "This room has ended");
    this.replay = h("div", { class: "stack replay", hidden: true });
    this.element.append(
      h("div", { class: "card ended" }, heading, h("p", {}, "Thanks for listening!"), this.replay, h("a", { class: "button", href: "#/" }, "Find another room")),
    );
    heading.focus();
    this.#offerReplay();
  }

  #removed(ban) {
    this.joined = false;
    this.#closeDialogs();
    notify(ban ? "You were removed from this room and can't rejoin." : "You were removed from this room.", "error");
    this.app.go("#/");
  }

  #failed(error) {
    this.#stopAudio();
    this.#closeDialogs();
    this.built = false;
    this.joined = false;
    this.room = null;
    this.element.removeAttribute("aria-busy");
    const title = ERROR_TITLES[error.code] ?? "Couldn't join this room";
    const retry = h("button", { onclick: () => this.retry() }, "Try again");
    fill(
      this.element,
      h(
        "div",
        { class: "card failure", role: "alert" },
        h("h1", {}, title),
        h("p", {}, error.display ?? error.message),
        h(
          "div",
          { class: "row" },
          h("a", { class: "button", href: "#/" }, "Back to rooms"),
          error.code === "conflict" ? remindButton(this.app, this.roomId) : null, // not started yet
          error.code === "gone" || error.code === "not_found" ? null : retry,
        ),
      ),
    );
  }
}

const RECORD_WORDS = { peak: "listeners at once", unique: "listeners", minutes: "minutes listened" };

/** `room:record`: the room just beat the all-time record, or its host's own. */
function recordNotice(e) {
  const what = `${formatCount(e.value)} ${RECORD_WORDS[e.metric] ?? e.metric}`;
  return e.scope === "host" ? `A personal best for this host: ${what}!` : `New all-time record: ${what}!`;
}
