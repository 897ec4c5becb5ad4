// The people this user blocks: their reactions and questions are hidden from this user only.
// The server does the hiding (it sends the questions again after each change); this keeps the
// list, in step with every tab through `user:blocks`, and offers Block / Unblock.

import { h, keyed, show } from "./dom.js";
import { busy } from "./forms.js";
import { notify } from "./notices.js";
import { avatar, nameLabel } from "./people.js";

/** Events dispatched (EventTarget): "change" when the list changed. */
export class Blocks extends EventTarget {
  constructor(connection) {
    super();
    this.connection = connection;
    this.users = []; // [{id, name, verified, at}], latest first
    connection.on("user:blocks", (e) => this.#set(e.blocked));
    // Also after a reconnect: another tab may have changed it meanwhile.
    connection.addEventListener("status", (e) => {
      if (e.detail === "online") this.load();
    });
    if (connection.status === "online") this.load();
  }

  has(userId) {
    return this.users.some((u) => u.id === userId);
  }

  async load() {
    try {
      this.#set((await this.connection.call("user:blocks")).blocked);
    } catch {
      // Offline or refused: the list stays as it was; the next connection loads it.
    }
  }

  /** Block (`on`) or unblock `user`; a refusal rejects with the server's message. */
  async set(user, on) {
    const ack = await this.connection.call("user:block", { user_id: user.id, on });
    this.#set(ack.blocked);
    notify(on ? `Blocked ${user.name}: you won't see their reactions or questions.` : `Unblocked ${user.name}.`);
  }

  #set(list) {
    this.users = Array.isArray(list) ? list : [];
    this.dispatchEvent(new Event("change"));
  }
}

/** A Block / Unblock button for `user`, as the list is now (rebuild it to follow changes). */
export function blockButton(blocks, user, kind = "ghost small") {
  const button = h("button", { class: kind });
  const blocked = blocks.has(user.id);
  button.textContent = blocked ? "Unblock" : "Block";
  button.setAttribute("aria-label", `${blocked ? "Unblock" : "Block"} ${user.name}`);
  button.title = blocked ? "Show their reactions and questions again" : "Hide their reactions and questions from you";
  button.addEventListener("click", () => busy(button, () => blocks.set(user, !blocks.has(user.id))));
  return button;
}

/** The list of blocked people, each with Unblock, in a dialog. */
export function openBlockedDialog(blocks) {
  const list = h("ul", { class: "queue", "aria-label": "Blocked people" });
  const empty = h("p", { class: "empty" }, "You haven't blocked anyone.");
  const render = () => {
    show(empty, blocks.users.length === 0);
    keyed(
      list,
      blocks.users,
      (u) => u.id,
      (u) => {
        const unblock = h("button", { class: "ghost small", "aria-label": `Unblock ${u.name}` }, "Unblock");
        unblock.addEventListener("click", () => busy(unblock, () => blocks.set(u, false)));
        return h("li", {}, h("span", { class: "who" }, avatar(u, "s"), nameLabel(u)), unblock);
      },
      () => {},
    );
  };
  const close = h("button", { class: "ghost", type: "button" }, "Close");
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": "blocked-title" },
    h("h2", { id: "blocked-title" }, "Blocked people"),
    h("p", { class: "muted-text" }, "You don't see their reactions or questions. They aren't told."),
    empty,
    list,
    close,
  );
  close.addEventListener("click", () => dialog.close());
  blocks.addEventListener("change", render);
  dialog.addEventListener("close", () => {
    blocks.removeEventListener("change", render);
    dialog.remove();
  });
  render();
  document.body.append(dialog);
  dialog.showModal();
  blocks.load(); // the latest, from the server
  close.focus();
  return dialog;
}
