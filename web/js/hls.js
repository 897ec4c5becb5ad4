// Listening over HLS: the room's program mix as AAC segments, for audiences past the WebRTC
// cap (the join ack's `media.mode`) and for replays. hls.js (vendored from npm, loaded only when
// needed) where the browser lacks native HLS; Safari plays it natively. The same "status" events
// as RoomAudio, so the room view treats both alike.

const RETRY_MS = 3000;

async function hlsLibrary() {
  const module = await import("../vendor/hls.light.min.mjs");
  return module.default;
}

/**
 * Attach `url` to a media element: hls.js wherever Media Source Extensions exist (the same
 * player everywhere), else the browser's own HLS (older iPhones). Returns a function that
 * detaches.
 */
export async function attachHls(element, url, { live, onFatal }) {
  const Hls = await hlsLibrary();
  if (!Hls.isSupported()) {
    if (!element.canPlayType("application/vnd.apple.mpegurl")) throw new Error("This browser cannot play HLS audio");
    element.preload = live ? "auto" : "none";
    element.src = url;
    return () => element.removeAttribute("src");
  }
  // Live: two segments behind the edge (≈ 2.7 s glass to glass with 1 s segments, bench/
  // hls_latency.py), the delay the server announces as hls_delay_ms.
  // A replay loads nothing until it is played: a room's whole audience sees the player when
  // the room ends, and only those who press play fetch it (and count as a play).
  const hls = new Hls(live ? { liveSyncDurationCount: 2, lowLatencyMode: false } : { autoStartLoad: false });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onFatal(data.details);
  });
  hls.attachMedia(element);
  if (live) {
    hls.loadSource(url);
  } else {
    const start = () => {
      element.removeEventListener("play", start);
      hls.loadSource(url);
      hls.once(Hls.Events.MANIFEST_PARSED, () => hls.startLoad());
    };
    element.addEventListener("play", start);
  }
  return () => hls.destroy();
}

/** The live room over HLS, with RoomAudio's interface (connect/close/resume/stats, "status"). */
export class HlsListening extends EventTarget {
  constructor({ url, element }) {
    super();
    this.url = url;
    this.element = element;
    this.detach = null;
    this.blocked = false;
    this.closed = false;
    this.retryTimer = null;
    this.onPlaying = () => {
      this.blocked = false;
      this.#emit("connected");
    };
    element.addEventListener("playing", this.onPlaying);
  }

  async connect() {
    this.#emit("connecting");
    try {
      this.detach = await attachHls(this.element, this.url, { live: true, onFatal: (why) => this.#retry(why) });
    } catch (error) {
      this.#emit("failed", error.message);
      return;
    }
    if (this.closed) {
      this.detach();
      return;
    }
    this.resume();
  }

  resume() {
    this.element.play().catch((error) => {
      if (error.name !== "NotAllowedError" || this.closed) return;
      this.blocked = true;
      this.#emit(this.state ?? "connecting");
    });
  }

  setMicEnabled() {} // listeners over HLS never publish: the stage is always WebRTC
  setOriginalSound() {}

  async stats() {
    const e = this.element;
    return { hls: { currentTime: e.currentTime, paused: e.paused, readyState: e.readyState }, inbound: null, outbound: null, state: this.state };
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.element.removeEventListener("playing", this.onPlaying);
    this.detach?.();
    this.detach = null;
    this.element.pause();
  }

  #retry(why) {
    if (this.closed) return;
    this.detach?.();
    this.detach = null;
    this.#emit("retrying", `The stream stopped (${why}) — retrying`);
    this.retryTimer = setTimeout(() => this.connect(), RETRY_MS);
  }

  #emit(state, message = null) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, message, blocked: this.blocked, micError: null } }));
  }
}
