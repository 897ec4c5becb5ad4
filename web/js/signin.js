// Sign in: a display name gets a guest token; an operator-issued token can be pasted instead.

import { h } from "./dom.js";
import { actionForm, field } from "./forms.js";

export class SignInView {
  constructor(app, next) {
    this.app = app;
    this.next = next;
    const name = h("input", {
      name: "name",
      autocomplete: "nickname",
      required: true,
      maxLength: 50,
      placeholder: "Your name",
    });
    const guestButton = h("button", { class: "primary", type: "submit" }, "Continue");
    const guestForm = actionForm(
      { class: "card stack", "aria-labelledby": "guest-title" },
      guestButton,
      async () => {
        await app.session.signInAsGuest(name.value);
        this.#done();
      },
      h("h2", { id: "guest-title" }, "Join as a guest"),
      field("Display name", name, "Shown to everyone in the rooms you join."),
      guestButton,
    );
    const token = h("textarea", { name: "token", rows: 3, required: true, spellcheck: false });
    const tokenButton = h("button", { type: "submit" }, "Sign in with token");
    const tokenForm = actionForm(
      { class: "card stack", "aria-labelledby": "token-title" },
      tokenButton,
      async () => {
        app.session.signInWithToken(token.value);
        this.#done();
      },
      h("h2", { id: "token-title" }, "Artists and staff"),
      field("Access token", token, "Paste the token your team gave you (it starts with “ey”)."),
      tokenButton,
    );
    this.element = h(
      "section",
      { class: "signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title" }, "Sign in to liveroom"),
      h("p", { class: "lead" }, "Listen to live rooms, react, raise your hand and speak."),
      h("div", { class: "signin-forms" }, guestForm, tokenForm),
    );
    this.focus = name;
  }

  enter() {
    if (this.app.session.signedIn) {
      this.app.go(this.next);
      return;
    }
    this.focus.focus();
  }

  #done() {
    this.app.signedIn();
    this.app.go(this.next);
  }
}
