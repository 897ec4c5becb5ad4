// The JSON API under /api, and the one error type every refused action is shown with.

/** A refused or failed action: `code` is the server's error code, `message` its words. */
export class ActionError extends Error {
  constructor(code, message, retryAfter = null) {
    super(message);
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** What to show people: the server's message, with the wait when it is a rate limit. */
  get display() {
    if (this.code === "rate_limited" && this.retryAfter) {
      return `${this.message} — try again in ${Math.ceil(this.retryAfter)} s`;
    }
    return this.message;
  }
}

async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ActionError("offline", "Can't reach the server — check your connection");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: described below
  }
  if (!response.ok) {
    const error = data?.error;
    if (error) throw new ActionError(error.code, error.message, error.retry_after ?? null);
    throw new ActionError("internal", `The server answered ${response.status}`);
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  guestToken: (name) => request("POST", "/api/tokens", { name }),
  rooms: (status) => request("GET", `/api/rooms?status=${encodeURIComponent(status)}`),
  room: (id) => request("GET", `/api/rooms/${encodeURIComponent(id)}`),
};
