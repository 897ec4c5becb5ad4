// Who is signed in: the token kept in this browser and what it says about its user.

import { ActionError, api } from "./api.js";

const KEY = "liveroom.token";
const REMINDERS_KEY = "liveroom.reminders";

function base64UrlDecode(part) {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a JWT (not verified here: the server checks it on connect). */
function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new ActionError("invalid", "That is not a liveroom token");
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new ActionError("invalid", "That is not a liveroom token");
  }
  if (typeof claims.sub !== "string" || typeof claims.name !== "string") {
    throw new ActionError("invalid", "The token has no user id or name");
  }
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) {
    throw new ActionError("invalid", "This token has expired — ask for a new one");
  }
  return claims;
}

export class Session {
  constructor() {
    this.token = null;
    this.user = null; // {id, name, verified, guest, host, admin}
    const stored = localStorage.getItem(KEY);
    if (stored) {
      try {
        this.#use(stored);
      } catch {
        localStorage.removeItem(KEY);
      }
    }
  }

  get signedIn() {
    return this.token !== null;
  }

  /** Can this user start rooms? (The server decides; this only hides a form it would refuse.) */
  get canHost() {
    return Boolean(this.user && (this.user.host || this.user.admin));
  }

  /** The scheduled rooms this user asked to be reminded of, as kept in this browser. */
  get reminders() {
    try {
      return new Set(JSON.parse(localStorage.getItem(`${REMINDERS_KEY}.${this.user?.id}`) ?? "[]"));
    } catch {
      return new Set();
    }
  }

  setReminder(roomId, on) {
    const set = this.reminders;
    if (on) set.add(roomId);
    else set.delete(roomId);
    localStorage.setItem(`${REMINDERS_KEY}.${this.user?.id}`, JSON.stringify([...set].slice(-200)));
  }

  async signInAsGuest(name) {
    const { token } = await api.guestToken(name);
    this.#use(token);
  }

  signInWithToken(token) {
    this.#use(token.trim());
  }

  signOut() {
    this.token = null;
    this.user = null;
    localStorage.removeItem(KEY);
  }

  #use(token) {
    const claims = claimsOf(token);
    this.token = token;
    this.user = {
      id: claims.sub,
      name: claims.name,
      verified: Boolean(claims.verified),
      guest: Boolean(claims.guest),
      host: Boolean(claims.grants?.host),
      admin: Boolean(claims.grants?.admin),
    };
    localStorage.setItem(KEY, token);
  }
}
