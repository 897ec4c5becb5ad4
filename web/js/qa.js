// The room's Q&A: fans ask (with a character counter, optionally anonymously), upvote, see the
// question "on stage now" and what was answered; staff approve, reject, pin, mark answered,
// bring the asker on stage and delete. Kept in step by qa:update (a full list, then deltas
// applied by version; a gap asks qa:list again).

import { blockButton } from "./blocks.js";
import { h, fill, keyed, show } from "./dom.js";
import { actionForm, busy, choices, field } from "./forms.js";
import { notify } from "./notices.js";
import { isStaffView, nameLabel } from "./people.js";

let MAX_CHARS = 280; // the server's --question-max-chars and --qa-gravity, from the full list
let GRAVITY = 1.8;
const HOUR_MS = 3600000;
const STATUS_TEXT = {
  pending: "Waiting for approval",
  rejected: "Not accepted",
  withdrawn: "Withdrawn",
};

function hot(q, now) {
  return q.votes / Math.pow(Math.max(0, (now - q.created_at) / HOUR_MS) + 2, GRAVITY);
}

const SORTS = {
  hot: (a, b, now) => hot(b, now) - hot(a, now) || a.created_at - b.created_at,
  new: (a, b) => b.created_at - a.created_at,
};

export class QaPanel {
  constructor(view) {
    this.view = view;
    this.questions = new Map();
    this.version = null; // null until the first full list
    this.sort = "hot";
    this.pinned = h("div", { class: "pinned", role: "region", "aria-label": "On stage now" });
    this.open = h("ul", { class: "questions", "aria-label": "Questions" });
    this.openEmpty = h("p", { class: "empty" }, "No questions yet. Ask the first one!");
    this.mine = h("ul", { class: "questions", "aria-label": "Your questions waiting" });
    this.mineBlock = h("div", { class: "stack" }, h("h3", {}, "Your questions"), this.mine);
    this.pending = h("ul", { class: "questions", "aria-label": "Waiting for approval" });
    this.pendingTitle = h("h3", {});
    this.pendingBlock = h("div", { class: "stack staff-only" }, this.pendingTitle, this.pending);
    this.answered = h("ul", { class: "questions answered" });
    this.answeredSummary = h("summary", {});
    this.answeredBlock = h("details", { class: "answered-block" }, this.answeredSummary, this.answered);
    this.off = h("p", { class: "empty" }, "Questions are off in this room.");
    this.exportButton = h("button", { class: "ghost small staff-only" }, "Download (CSV)");
    this.exportButton.addEventListener("click", () => busy(this.exportButton, () => this.#download()));
    this.askForm = this.#askForm();
    this.sortBar = choices("Order", { hot: "Popular", new: "Recent" }, this.sort, (sort) => {
      this.sort = sort;
      this.#render();
    });
    this.element = h(
      "section",
      { class: "qa card", "aria-labelledby": "qa-title" },
      h("div", { class: "qa-head" }, h("h2", { id: "qa-title" }, "Questions"), this.sortBar, this.exportButton),
      this.pinned,
      this.askForm,
      this.off,
      this.pendingBlock,
      this.mineBlock,
      this.openEmpty,
      this.open,
      this.answeredBlock,
    );
    this.unsubscribe = view.connection.on("qa:update", (e) => {
      if (e.room_id === view.roomId) this.#update(e);
    });
  }

  leave() {
    this.unsubscribe();
  }

  /** The room changed (qa_mode, roles): show the right controls. */
  update(room) {
    const off = room.settings.qa_mode === "off";
    show(this.askForm, !off && room.status === "live");
    show(this.exportButton, this.staff);
    show(this.off, off);
    this.#render();
  }

  get staff() {
    return isStaffView(this.view.room);
  }

  #update(event) {
    if (event.full) {
      MAX_CHARS = event.max_chars ?? MAX_CHARS;
      GRAVITY = event.gravity ?? GRAVITY;
      this.countChars?.();
      this.questions = new Map();
      for (const q of [...event.full.questions, ...(event.full.pinned ? [event.full.pinned] : [])]) {
        this.questions.set(q.id, q);
      }
      this.version = event.version;
    } else {
      if (this.version === null || event.version <= this.version) return;
      if (event.since > this.version) {
        this.#reload(); // missed a change
        return;
      }
      for (const q of event.changes) {
        const old = this.questions.get(q.id);
        this.questions.set(q.id, { voted: old?.voted ?? false, ...q });
      }
      for (const id of event.removed) this.questions.delete(id);
      this.version = event.version;
    }
    this.#render();
  }

  /** Staff: every question with its real author, as a CSV file (the export needs the token). */
  async #download() {
    const response = await fetch(`/api/rooms/${encodeURIComponent(this.view.roomId)}/questions.csv`, {
      headers: { Authorization: `Bearer ${this.view.app.session.token}` },
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body?.error?.message ?? `The server answered ${response.status}`);
    }
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: `questions-${this.view.roomId}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async #reload() {
    try {
      const listing = await this.view.connection.call("qa:list", { room_id: this.view.roomId });
      this.#update({ version: listing.version, full: listing });
    } catch (error) {
      notify(`Couldn't refresh the questions: ${error.display ?? error.message}`, "error");
    }
  }

  #keep(question) {
    if (question) this.questions.set(question.id, question);
    this.#render();
  }

  #render() {
    const focused = this.element.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    this.#draw();
    if (focused) this.element.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  }

  #draw() {
    const me = this.view.me?.id;
    const all = [...this.questions.values()];
    const now = Date.now();
    const pinned = all.find((q) => q.pinned && q.status === "approved");
    const open = all.filter((q) => q.status === "approved" && !q.pinned).sort((a, b) => SORTS[this.sort](a, b, now));
    const answered = all.filter((q) => q.status === "answered").sort((a, b) => b.answered_at - a.answered_at);
    const pending = all.filter((q) => q.status === "pending");
    const mine = all.filter((q) => q.author?.id === me && ["pending", "rejected"].includes(q.status));
    show(this.pinned, Boolean(pinned));
    if (pinned) {
      fill(this.pinned, h("span", { class: "pinned-label" }, "On stage now"), this.#item(pinned, { big: true }));
    }
    show(this.openEmpty, open.length === 0 && !pinned);
    this.#list(this.open, open);
    show(this.pendingBlock, this.staff && pending.length > 0);
    this.pendingTitle.textContent = `Waiting for approval (${pending.length})`;
    this.#list(this.pending, this.staff ? pending.sort((a, b) => a.created_at - b.created_at) : []);
    show(this.mineBlock, !this.staff && mine.length > 0);
    this.#list(this.mine, this.staff ? [] : mine);
    show(this.answeredBlock, answered.length > 0);
    this.answeredSummary.textContent = `Answered (${answered.length})`;
    this.#list(this.answered, answered);
  }

  #list(container, questions) {
    const staff = this.staff;
    keyed(
      container,
      questions,
      (q) => q.id,
      () => h("li", {}),
      (li, q) => {
        // Rebuilt only when it changed; focus is put back on the same control afterwards.
        const signature = JSON.stringify([q, staff]);
        if (li.dataset.signature === signature) return;
        li.dataset.signature = signature;
        fill(li, this.#item(q));
      },
    );
  }

  #item(q, { big = false } = {}) {
    const conn = this.view.connection;
    const ref = { question_id: q.id };
    const mine = q.author?.id === this.view.me?.id;
    const act = (label, event, payload = ref, kind = "ghost small", done = null) => {
      const button = h("button", { class: kind, "data-focus": `${q.id}:${event}` }, label);
      button.addEventListener("click", () =>
        busy(button, async () => {
          const ack = await conn.call(event, payload);
          if (event === "qa:delete") this.questions.delete(q.id);
          this.#keep(ack.question);
          if (done) notify(done);
        }),
      );
      return button;
    };
    const who = q.author ? nameLabel(q.author) : h("span", { class: "anonymous" }, "Anonymous");
    const meta = h(
      "div",
      { class: "question-meta" },
      who,
      q.anonymous && q.author ? h("span", { class: "tag" }, "asked anonymously") : null,
      STATUS_TEXT[q.status] ? h("span", { class: `tag status-${q.status}` }, STATUS_TEXT[q.status]) : null,
      q.reason ? h("span", { class: "reason" }, `Reason: ${q.reason}`) : null,
    );
    const actions = h("div", { class: "row question-actions" });
    if (this.staff) {
      if (q.status === "pending") {
        actions.append(act("Approve", "qa:approve", ref, "primary small"));
        actions.append(this.#rejectControl(q));
      } else if (q.status === "approved") {
        if (!q.pinned) actions.append(act("Pin", "qa:pin"));
        actions.append(act("Bring to stage", "qa:bring_to_stage", ref, "ghost small", "Invited the asker on stage."));
        actions.append(act("Answered", "qa:answered"));
        actions.append(this.#rejectControl(q));
      }
      actions.append(act("Delete", "qa:delete", ref, "danger small"));
    } else if (mine && q.status !== "answered" && q.status !== "withdrawn") {
      actions.append(act("Withdraw", "qa:withdraw"));
    }
    // Hide this asker's questions and reactions from me (never offered for anonymous ones:
    // their author is not known here).
    if (q.author && !mine && this.view.app.blocks) actions.append(blockButton(this.view.app.blocks, q.author));
    const vote =
      q.status === "approved" || q.status === "answered"
        ? this.#voteButton(q)
        : null;
    return h(
      "article",
      { class: `question${big ? " big" : ""}`, "aria-label": `Question from ${q.author?.name ?? "anonymous"}` },
      vote,
      h("div", { class: "question-body" }, h("p", { class: "question-text" }, q.text), meta, actions.childElementCount ? actions : null),
    );
  }

  #voteButton(q) {
    const open = q.status === "approved";
    const button = h(
      "button",
      {
        class: `vote${q.voted ? " voted" : ""}`,
        "aria-pressed": String(Boolean(q.voted)),
        "aria-label": `Upvote (${q.votes} votes)`,
        "data-focus": `${q.id}:vote`,
        disabled: !open,
      },
      h("span", { "aria-hidden": "true" }, "▲"),
      h("span", { class: "votes" }, String(q.votes)),
    );
    button.addEventListener("click", () =>
      busy(button, async () => {
        const ack = await this.view.connection.call(q.voted ? "qa:unvote" : "qa:vote", { question_id: q.id });
        this.#keep(ack.question);
      }),
    );
    return button;
  }

  #rejectControl(q) {
    const reason = h("input", { name: "reason", maxLength: 500, placeholder: "Reason (optional)" });
    const confirm = h("button", { type: "submit", class: "danger small" }, "Reject");
    const form = actionForm({ class: "row" }, confirm, async () => {
      const payload = { question_id: q.id };
      if (reason.value.trim()) payload.reason = reason.value.trim();
      const ack = await this.view.connection.call("qa:reject", payload);
      this.#keep(ack.question);
    }, field("Reason", reason), confirm);
    return h("details", { class: "reject" }, h("summary", {}, "Reject…"), form);
  }

  #askForm() {
    const text = h("textarea", { name: "question", rows: 2, required: true, placeholder: "Ask the room a question" });
    const counter = h("span", { class: "counter", id: "qa-counter" }, `${MAX_CHARS}`);
    text.setAttribute("aria-describedby", "qa-counter");
    const anonymous = h("input", { type: "checkbox", name: "anonymous" });
    const submit = h("button", { class: "primary", type: "submit" }, "Ask");
    const count = () => {
      const left = MAX_CHARS - Array.from(text.value.trim()).length;
      counter.textContent = left >= 0 ? `${left} characters left` : `${-left} characters too many`;
      counter.classList.toggle("over", left < 0);
      submit.disabled = left < 0;
    };
    text.addEventListener("input", count);
    this.countChars = count;
    count();
    return actionForm(
      { class: "ask stack", "aria-label": "Ask a question" },
      submit,
      async () => {
        const ack = await this.view.connection.call("qa:ask", {
          room_id: this.view.roomId,
          text: text.value,
          anonymous: anonymous.checked,
        });
        text.value = "";
        count();
        this.#keep(ack.question);
        notify(ack.question.status === "pending" ? "Sent: it shows once a moderator approves it." : "Question posted.");
      },
      field("Your question", text),
      h("div", { class: "row ask-row" }, h("label", { class: "toggle" }, anonymous, "Ask anonymously"), counter, submit),
    );
  }
}
