// Tools for the room's staff (host, co-hosts, moderators): the raised-hand queue, pending
// invitations, member search, the member menu, room settings and ending the room. Shown when
// the server sends the staff view (it carries `requests`); the server checks every action.

import { h, fill, keyed, show } from "./dom.js";
import { blockButton } from "./blocks.js";
import { actionForm, busy, field } from "./forms.js";
import { notify } from "./notices.js";
import { ROLE_LABELS, avatar, formatWhen, isStaffView, nameLabel } from "./people.js";

const RANK = { host: 4, cohost: 3, moderator: 2, speaker: 1, listener: 0 };

function personRow(user, ...actions) {
  return [h("span", { class: "who" }, avatar(user, "s"), nameLabel(user)), h("span", { class: "row" }, actions)];
}

export class ModerationPanel {
  constructor(view) {
    this.view = view;
    this.requests = h("ul", { class: "queue", "aria-labelledby": "hands-title" });
    this.handsTitle = h("h3", { id: "hands-title", tabindex: "-1" });
    this.handsEmpty = h("p", { class: "empty" }, "No raised hands.");
    this.invites = h("ul", { class: "queue", "aria-label": "Pending invitations" });
    this.invitesBlock = h("div", {}, h("h3", {}, "Invited"), this.invites);
    this.results = h("ul", { class: "queue", "aria-label": "Search results" });
    this.found = h("p", { class: "visually-hidden", role: "status" });
    this.query = h("input", { type: "search", name: "q", maxLength: 50, placeholder: "Name" });
    this.more = h("button", { class: "ghost", hidden: true }, "More");
    this.cursor = null;
    this.search = null; // the last search, run again after a member action changes someone
    this.hostTools = h("div", { class: "stack" });
    this.reports = h("ul", { class: "queue", "aria-labelledby": "reports-title" });
    this.reportsBlock = h("details", { class: "reports-block" }, h("summary", {}, h("span", { id: "reports-title" }, "Reports")), this.reports);
    this.reportsLoaded = false;
    this.element = h(
      "aside",
      { class: "moderation card", "aria-labelledby": "moderation-title", hidden: true },
      h("h2", { id: "moderation-title" }, "Moderation"),
      h("section", { class: "stack" }, this.handsTitle, this.handsEmpty, this.requests),
      this.invitesBlock,
      this.reportsBlock,
      this.#search(),
      this.hostTools,
    );
  }

  /** A member's report, live (`room:reported`) or from the room's list when staff first look. */
  addReport(report) {
    if (this.reports.querySelector(`[data-report="${CSS.escape(String(report.id))}"]`)) return;
    const what = report.question_id ? `question ${report.question_id}` : `user ${report.user_id}`;
    this.reports.prepend(h("li", { "data-report": String(report.id) }, h("span", {}, `${what}: “${report.reason}”`), h("span", { class: "item-meta" }, ` — reported by ${report.reporter_id}, ${formatWhen(report.at)}`)));
    this.reportsBlock.querySelector("summary span").textContent = `Reports (${this.reports.children.length})`;
  }

  async #loadReports(roomId) {
    this.reportsLoaded = true;
    try {
      const response = await fetch(`/api/rooms/${encodeURIComponent(roomId)}/reports.json`, {
        headers: { Authorization: `Bearer ${this.view.app.session.token}` },
      });
      if (!response.ok) throw new Error(`The server answered ${response.status}`);
      for (const report of (await response.json()).reports) this.addReport(report);
    } catch (error) {
      notify(`Reports could not be loaded: ${error.message}`, "error");
    }
  }

  update(room) {
    const staffView = isStaffView(room);
    show(this.element, staffView && room.status !== "ended");
    if (!staffView) return;
    if (!this.reportsLoaded) this.#loadReports(room.id);
    this.handsTitle.textContent = `Raised hands (${room.requests.length})`;
    show(this.handsEmpty, room.requests.length === 0);
    keyed(
      this.requests,
      room.requests,
      (u) => u.id,
      (u) => {
        const approve = h("button", { class: "primary small", "aria-label": `Approve ${u.name}` }, "Approve");
        approve.addEventListener("click", () =>
          busy(approve, () => this.view.connection.call("stage:approve", { room_id: room.id, user_id: u.id })),
        );
        const menu = h("button", { class: "icon-button", "aria-label": `More for ${u.name}`, onclick: () => openMemberMenu(this.view, u, "listener", this.handsTitle) }, "⋯");
        return h("li", {}, personRow(u, approve, menu));
      },
      () => {},
    );
    show(this.invitesBlock, room.invites.length > 0);
    keyed(
      this.invites,
      room.invites,
      (i) => `${i.id}:${i.role}`,
      (i) => {
        const withdraw = h("button", { class: "ghost small", "aria-label": `Withdraw invitation of ${i.name}` }, "Withdraw");
        withdraw.addEventListener("click", () =>
          busy(withdraw, () => this.view.connection.call("stage:demote", { room_id: room.id, user_id: i.id })),
        );
        return h("li", {}, personRow({ id: i.id, name: i.name, verified: false }, h("span", { class: "tag" }, ROLE_LABELS[i.role]), withdraw));
      },
      () => {},
    );
    const host = room.you.role === "host" || this.view.app.session.user.admin;
    if (host && !this.hostToolsBuilt) this.#buildHostTools(room);
    show(this.hostTools, host);
    if (this.startButton) show(this.startButton, room.status === "scheduled");
  }

  #search() {
    const query = this.query;
    const submit = h("button", { type: "submit" }, "Search");
    const run = async (cursor) => {
      const payload = { room_id: this.view.roomId, query: query.value.trim() };
      if (cursor) payload.cursor = cursor;
      const { members, cursor: next } = await this.view.connection.call("room:members", payload);
      if (!cursor) this.results.replaceChildren();
      if (!members.length && !cursor) this.results.append(h("li", { class: "empty" }, "Nobody by that name here."));
      for (const m of members) {
        const menu = h("button", { class: "icon-button", "aria-label": `Actions for ${m.name}`, onclick: () => openMemberMenu(this.view, m, m.role, query) }, "⋯");
        this.results.append(h("li", { class: "member" }, personRow(m, h("span", { class: "tag" }, ROLE_LABELS[m.role] ?? m.role), menu)));
      }
      const n = this.results.querySelectorAll(".member").length;
      this.found.textContent = n === 0 ? "Nobody found" : n === 1 ? "1 person found" : `${n} people found`;
      this.cursor = next;
      show(this.more, Boolean(next));
    };
    this.more.addEventListener("click", () => busy(this.more, () => run(this.cursor)));
    this.search = run;
    return actionForm(
      { class: "stack", role: "search", "aria-label": "Find people in the room" },
      submit,
      () => {
        this.searched = true;
        return run(null);
      },
      h("h3", {}, "People in the room"),
      h("div", { class: "row" }, field("Find people", query), submit),
      this.found,
      this.results,
      this.more,
    );
  }

  /** Show the last search's results again, as they are now. */
  refreshSearch() {
    if (this.searched) this.search(null).catch(() => {});
  }

  #buildHostTools(room) {
    this.hostToolsBuilt = true;
    const conn = this.view.connection;
    const title = h("input", { name: "title", maxLength: 120, required: true, value: room.title });
    // A room setting as a <select> showing its current value.
    const setting = (name, options) => {
      const select = h("select", { name }, Object.entries(options).map(([value, label]) => h("option", { value }, label)));
      select.value = room.settings[name];
      return select;
    };
    const onLeave = setting("on_host_leave", { handover: "Hand over to a co-host", end: "End the room" });
    const qaMode = setting("qa_mode", {
      premoderated: "Moderated: approve each question",
      open: "Open: questions show at once",
      off: "Off: no new questions",
    });
    const playlistMode = setting("playlist_mode", {
      host: "Hosts and moderators control it; others suggest",
      open: "Everyone on stage controls it",
    });
    const playlistOutput = setting("playlist_output", {
      clients: "In each member's own player",
      room: "In the room's audio (DJ mode, for uploaded files)",
    });
    const returns = h("input", { type: "checkbox", name: "qa_return_to_audience", checked: room.settings.qa_return_to_audience });
    const recording = h("input", { type: "checkbox", name: "recording", checked: room.settings.recording });
    const save = h("button", { type: "submit" }, "Save");
    const settings = h(
      "details",
      { class: "settings" },
      h("summary", {}, "Room settings"),
      actionForm(
        { class: "stack" },
        save,
        async () => {
          await conn.call("room:update", {
            room_id: room.id,
            title: title.value.trim(),
            settings: {
              on_host_leave: onLeave.value,
              qa_mode: qaMode.value,
              playlist_mode: playlistMode.value,
              playlist_output: playlistOutput.value,
              qa_return_to_audience: returns.checked,
              recording: recording.checked,
            },
          });
          notify("Settings saved.");
        },
        field("Title", title),
        field("When the host leaves", onLeave),
        field("Questions in this room", qaMode),
        field("Playlist", playlistMode),
        field("Where the playlist plays", playlistOutput, "DJ mode: the server plays uploads into the room, ducked while someone speaks"),
        h("label", { class: "toggle" }, returns, "A fan brought on stage for a question returns to the audience when it is answered"),
        h("label", { class: "toggle" }, recording, "Record this room: a replay stays after it ends (for the replay retention)"),
        save,
      ),
    );
    this.startButton = h("button", { class: "primary" }, "Start the room now");
    // Started, the room's next snapshot says "live" and the view starts its audio.
    this.startButton.addEventListener("click", () =>
      busy(this.startButton, () => conn.call("room:start", { room_id: room.id })),
    );
    const end = h("button", { class: "danger" }, "End room");
    end.addEventListener("click", () =>
      this.view.track(
        confirmDialog("End this room for everyone?", "Everyone leaves and the audio stops.", "End room", () =>
          conn.call("room:end", { room_id: room.id }),
        ),
      ),
    );
    fill(this.hostTools, settings, this.startButton, end);
  }
}

/** A modal confirmation; `action` runs on confirm, a refusal is shown and the dialog stays.
 * Returns the dialog. */
export function confirmDialog(title, text, confirmLabel, action) {
  const confirm = h("button", { class: "danger", type: "button" }, confirmLabel);
  const cancel = h("button", { type: "button", class: "ghost" }, "Cancel");
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "confirm-title" }, h("h2", { id: "confirm-title" }, title), h("p", {}, text), h("div", { class: "row" }, cancel, confirm));
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", () =>
    busy(confirm, async () => {
      await action();
      dialog.close();
    }),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  cancel.focus();
  return dialog;
}

/**
 * The member menu: what the viewer may do to `user` (role `role`) — staff actions by rank,
 * and a report for everyone. The server has the last word on each. After an action the focus
 * goes to `after` (the list it was opened from may change under it).
 */
export function openMemberMenu(view, user, role, after) {
  const conn = view.connection;
  const room = view.room;
  const myRole = room.you.role;
  const admin = view.app.session.user.admin;
  const outranks = admin || (RANK[myRole] ?? 0) > (RANK[role] ?? 0);
  const staff = admin || ["host", "cohost", "moderator"].includes(myRole);
  const host = admin || myRole === "host";
  const onStage = ["host", "cohost", "speaker"].includes(role);
  const muted = room.muted.includes(user.id);
  const ref = { room_id: room.id, user_id: user.id };
  const actions = [];
  const add = (label, event, payload, done, kind = "") => actions.push({ label, event, payload, done, kind });
  if (staff && outranks) {
    if (role === "listener") {
      add("Invite to speak", "stage:invite", { ...ref, role: "speaker" }, `Invited ${user.name} to speak.`);
      if (host) {
        add("Invite as co-host", "stage:invite", { ...ref, role: "cohost" }, `Invited ${user.name} as co-host.`);
        add("Invite as moderator", "stage:invite", { ...ref, role: "moderator" }, `Invited ${user.name} as moderator.`);
      }
    }
    if (onStage && !muted) add("Mute", "stage:mute", ref, `${user.name} is muted.`);
    if (role !== "listener") add("Move to audience", "stage:demote", ref, `${user.name} is back in the audience.`);
    add("Remove from room", "room:remove", ref, `${user.name} was removed.`, "danger");
    add("Remove and ban", "room:remove", { ...ref, ban: true }, `${user.name} was removed and banned.`, "danger");
  }
  const list = h("div", { class: "menu-actions" });
  const dialog = h(
    "dialog",
    { class: "dialog member-menu", "aria-labelledby": "member-title" },
    h("div", { class: "who" }, avatar(user, "m"), h("h2", { id: "member-title" }, nameLabel(user))),
    h("p", { class: "muted-text" }, ROLE_LABELS[role] ?? role),
    list,
  );
  for (const a of actions) {
    const button = h("button", { class: a.kind }, a.label);
    button.addEventListener("click", () =>
      busy(button, async () => {
        await conn.call(a.event, a.payload);
        notify(a.done);
        dialog.close();
        after.focus();
        view.moderation.refreshSearch();
      }),
    );
    list.append(button);
  }
  const reason = h("input", { name: "reason", maxLength: 500, required: true, placeholder: "What happened?" });
  const send = h("button", { type: "submit" }, "Send report");
  const report = h(
    "details",
    { class: "report" },
    h("summary", {}, "Report to moderators"),
    actionForm(
      { class: "stack" },
      send,
      async () => {
        await conn.call("room:report", { ...ref, reason: reason.value.trim() });
        notify("Thanks — the moderators will look at it.");
        dialog.close();
      },
      field("Reason", reason),
      send,
    ),
  );
  const close = h("button", { class: "ghost", type: "button", onclick: () => dialog.close() }, "Close");
  // Anyone may block anyone but themself: it hides their reactions and questions from you.
  const blocks = view.app.blocks;
  const blockSlot = h("div", { class: "row" });
  const showBlock = () => {
    const focused = blockSlot.contains(document.activeElement);
    fill(blockSlot, blockButton(blocks, user, "ghost"));
    if (focused) blockSlot.firstElementChild.focus();
  };
  if (blocks && user.id !== view.me.id) {
    showBlock();
    blocks.addEventListener("change", showBlock);
    dialog.addEventListener("close", () => blocks.removeEventListener("change", showBlock));
  }
  dialog.append(report, blockSlot, close);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  view.track(dialog);
  dialog.showModal();
  (list.querySelector("button") ?? close).focus();
}
