// The composition root of the web client: the session, the connection and the views, switched
// by the address (#/ home, #/signin, #/room/ID, #/rankings).

import { Blocks, openBlockedDialog } from "./blocks.js";
import { Connection } from "./connection.js";
import { h, fill } from "./dom.js";
import { HomeView } from "./home.js";
import { confirmDialog } from "./moderation.js";
import { notify } from "./notices.js";
import { nameLabel } from "./people.js";
import { RankingsView } from "./rankings.js";
import { RoomView } from "./room.js";
import { Session } from "./session.js";
import { SignInView } from "./signin.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Connection lost — reconnecting…",
  restarting: "The server is restarting — reconnecting…",
  refused: "The server refused this sign-in",
};

class App {
  constructor() {
    this.session = new Session();
    this.connection = null;
    this.blocks = null; // whom this user blocks, once connected
    this.view = null;
    this.hash = null; // the address of the view shown
    this.root = document.getElementById("view");
    window.addEventListener("hashchange", () => this.route());
    document.querySelector(".skip-link").addEventListener("click", (event) => {
      event.preventDefault(); // "#view" is not a view: moving focus is all it asks
      this.root.focus();
    });
  }

  /** The live connection, opened when signed in (reminders reach any page). */
  connect() {
    if (!this.connection) {
      const connection = new Connection(this.session.token);
      connection.addEventListener("status", (e) => this.#showStatus(e.detail, connection.reason));
      connection.addEventListener("refused", (e) => {
        notify(`Signed out: ${e.detail}`, "error");
        this.signOut();
      });
      connection.on("room:started", (e) => {
        notify(`“${e.title}” is live now`, "info", {
          label: "Join",
          run: () => this.go(`#/room/${encodeURIComponent(e.room_id)}`),
        });
      });
      this.connection = connection;
      this.blocks = new Blocks(connection);
    }
    return this.connection;
  }

  signedIn() {
    this.renderAccount();
    this.connect();
  }

  signOut() {
    this.view?.leave?.();
    this.view = null;
    this.connection?.close();
    this.connection = null;
    this.blocks = null;
    this.session.signOut();
    this.renderAccount();
    this.#showStatus(null);
    this.go("#/signin");
  }

  go(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  route() {
    const hash = location.hash || "#/";
    if (!hash.startsWith("#/") && this.view) return; // an in-page anchor, not a view
    const roomMatch = /^#\/room\/([^/?#]+)$/.exec(hash);
    const open = hash === "#/" || hash.startsWith("#/signin") || hash === "#/rankings";
    if (!this.session.signedIn && !open) {
      this.go(`#/signin?next=${encodeURIComponent(hash)}`);
      return;
    }
    if (roomMatch && this.view instanceof RoomView && this.view.roomId === decodeURIComponent(roomMatch[1])) {
      this.view.retry(); // already in this room: never leave and join it again
      return;
    }
    if (this.view?.leaveWarning?.()) {
      // An address change can't be cancelled: put the room's address back, and ask.
      history.replaceState(null, "", this.hash);
      this.#confirmLeave(() => this.go(hash));
      return;
    }
    const next = this.#view(hash, roomMatch);
    this.view?.leave?.();
    this.view = next;
    this.hash = hash;
    fill(this.root, next.element);
    this.root.focus({ preventScroll: true });
    next.enter?.();
  }

  /** Run `then`, once the host agreed that leaving hands the room over or ends it. */
  #confirmLeave(then) {
    const view = this.view;
    const warning = view?.leaveWarning?.();
    if (!warning) {
      then();
      return;
    }
    const dialog = confirmDialog("Leave this room?", warning, "Leave", () => {
      view.leave();
      if (this.view === view) this.view = null;
      then();
    });
    view.track(dialog);
  }

  #view(hash, roomMatch) {
    if (roomMatch) return new RoomView(this, decodeURIComponent(roomMatch[1]));
    if (hash.startsWith("#/signin")) {
      const next = new URLSearchParams(hash.split("?")[1] ?? "").get("next") ?? "#/";
      return new SignInView(this, next.startsWith("#/") ? next : "#/");
    }
    if (hash === "#/rankings") return new RankingsView(this);
    return new HomeView(this);
  }

  renderAccount() {
    const nav = document.getElementById("account");
    const user = this.session.user;
    if (!user) {
      fill(nav, h("a", { class: "button", href: "#/signin" }, "Sign in"));
      return;
    }
    fill(
      nav,
      h(
        "span",
        { class: "account-user" },
        h("span", { class: "visually-hidden" }, "Signed in as "),
        nameLabel(user),
        user.guest ? h("span", { class: "tag" }, "guest") : null,
      ),
      h("button", { class: "ghost blocked-button", "aria-label": "Blocked people", onclick: () => this.showBlocked() }, "Blocked"),
      h("button", { class: "ghost", onclick: () => this.#confirmLeave(() => this.signOut()) }, "Sign out"),
    );
  }

  /** The dialog of the people this user blocks (from the top bar, or the home page on phones). */
  showBlocked() {
    this.connect();
    const dialog = openBlockedDialog(this.blocks);
    if (this.view?.track) this.view.track(dialog);
  }

  /** The connection's state, in a status region that stays in the page (so changes are read):
   * only trouble is shown, "Connected" is for screen readers. */
  #showStatus(status, reason = null) {
    const el = document.getElementById("connection");
    el.textContent = status === "waiting" ? `Can't connect (${reason}) — trying again shortly` : (STATUS_TEXT[status] ?? "");
    el.classList.toggle("visually-hidden", status === "online" || !status);
    el.dataset.status = status ?? "";
  }
}

const app = new App();
window.liveroom = app; // for the browser console (and tests): app.view.audio.stats()
app.renderAccount();
if (app.session.signedIn) app.connect();
app.route();
