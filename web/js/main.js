// The composition root of the web client: the session, the connection and the views, switched
// by the address (#/ home, #/signin, #/room/ID).

import { Connection } from "./connection.js";
import { h, fill, show } from "./dom.js";
import { HomeView } from "./home.js";
import { notify } from "./notices.js";
import { nameLabel } from "./people.js";
import { RoomView } from "./room.js";
import { Session } from "./session.js";
import { SignInView } from "./signin.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  reconnecting: "Connection lost — reconnecting…",
  refused: "The server refused this sign-in",
};

class App {
  constructor() {
    this.session = new Session();
    this.connection = null;
    this.view = null;
    this.root = document.getElementById("view");
    window.addEventListener("hashchange", () => this.route());
  }

  /** The live connection, opened on first use after signing in. */
  connect() {
    if (!this.connection) {
      const connection = new Connection(this.session.token);
      connection.addEventListener("status", (e) => this.#showStatus(e.detail));
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
    }
    return this.connection;
  }

  signedIn() {
    this.renderAccount();
  }

  signOut() {
    this.view?.leave?.();
    this.view = null;
    this.connection?.close();
    this.connection = null;
    this.session.signOut();
    this.renderAccount();
    this.#showStatus("online");
    this.go("#/signin");
  }

  go(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  route() {
    const hash = location.hash || "#/";
    const roomMatch = /^#\/room\/([^/?#]+)$/.exec(hash);
    if (!this.session.signedIn && hash !== "#/" && !hash.startsWith("#/signin")) {
      this.go(`#/signin?next=${encodeURIComponent(hash)}`);
      return;
    }
    const next = this.#view(hash, roomMatch);
    this.view?.leave?.();
    this.view = next;
    fill(this.root, next.element);
    this.root.focus({ preventScroll: true });
    next.enter?.();
  }

  #view(hash, roomMatch) {
    if (roomMatch) return new RoomView(this, decodeURIComponent(roomMatch[1]));
    if (hash.startsWith("#/signin")) {
      const next = new URLSearchParams(hash.split("?")[1] ?? "").get("next") ?? "#/";
      return new SignInView(this, next.startsWith("#/") ? next : "#/");
    }
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
      h("button", { class: "ghost", onclick: () => this.signOut() }, "Sign out"),
    );
  }

  #showStatus(status) {
    const el = document.getElementById("connection");
    const text = STATUS_TEXT[status];
    show(el, Boolean(text));
    el.textContent = text ?? "";
    el.dataset.status = status;
  }
}

const app = new App();
window.liveroom = app; // for the browser console (and tests): app.view.audio.stats()
app.renderAccount();
app.route();
