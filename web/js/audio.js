// The room's audio over WebRTC: one connection per room, offered again whenever the server
// asks (rtc:restart) or the connection fails. On stage it sends the microphone and plays the
// mix-minus; otherwise it plays the program mix.

import { ActionError } from "./api.js";

const GATHER_TIMEOUT_MS = 5000;
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];

/** Resolve when ICE gathering is complete (the server takes complete SDP, no trickle). */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    // Send what was gathered so far rather than never: host candidates come first.
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

/**
 * Events (EventTarget): "status" with detail {state, message, blocked, micError}: state is
 * "connecting", "connected", "retrying" or "failed"; `blocked` is true while the browser refuses
 * to play (call resume() from a click); `micError` says why the microphone could not be had.
 */
export class RoomAudio extends EventTarget {
  constructor({ connection, roomId, iceServers, element, originalSound }) {
    super();
    this.connection = connection;
    this.roomId = roomId;
    this.iceServers = iceServers;
    this.element = element;
    this.originalSound = originalSound;
    this.pc = null;
    this.microphone = null; // MediaStream while on stage
    this.microphoneRequest = null; // the getUserMedia every waiting offer shares
    this.microphoneWanted = 0; // bumped when the microphone is released: a late one is stopped
    this.micError = null;
    this.blocked = false;
    this.state = null;
    this.message = null;
    this.publishing = false;
    this.micEnabled = false;
    this.generation = 0;
    this.retries = 0;
    this.retryTimer = null;
    this.closed = false;
    this.onPlaying = () => {
      if (!this.blocked) return;
      this.blocked = false;
      this.#emit(this.state, this.message);
    };
    element.addEventListener("playing", this.onPlaying);
  }

  /** (Re)negotiate: publish=true sends the microphone (on stage), false only listens. */
  async connect(publish) {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    const generation = ++this.generation;
    this.publishing = publish;
    this.#emit("connecting");
    try {
      const track = publish ? await this.#microphoneTrack() : null;
      if (generation !== this.generation) return;
      if (!publish) this.#releaseMicrophone();
      const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
      this.#replace(pc);
      if (track) {
        pc.addTransceiver(track, { direction: "sendrecv", streams: [this.microphone] });
      } else {
        pc.addTransceiver("audio", { direction: "recvonly" });
      }
      pc.addEventListener("track", (event) => this.#play(event.track, generation));
      pc.addEventListener("connectionstatechange", () => this.#stateChanged(pc, generation));
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (generation !== this.generation) return;
      const answer = await this.connection.call("rtc:offer", {
        room_id: this.roomId,
        sdp: pc.localDescription.sdp,
        type: "offer",
      });
      if (generation !== this.generation) return;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (error) {
      if (generation !== this.generation || this.closed) return;
      if (error instanceof ActionError && error.code === "microphone") {
        // Still hear the room (micError says why not speaking); unmuting asks again.
        this.micError = error.display;
        this.connect(false);
        return;
      }
      if (error instanceof ActionError && ["gone", "forbidden", "conflict"].includes(error.code)) {
        this.#emit("failed", error.display);
        return;
      }
      const wait = error instanceof ActionError && error.code === "rate_limited" ? error.retryAfter : 0;
      this.#retry(generation, error instanceof ActionError ? error.display : String(error), wait * 1000);
    }
  }

  /** Open or close the microphone locally (the server also keeps muted members out of the mix). */
  setMicEnabled(enabled) {
    this.micEnabled = enabled;
    for (const track of this.microphone?.getAudioTracks() ?? []) track.enabled = enabled;
  }

  /** Music or voice: a new microphone with or without the browser's voice processing. */
  setOriginalSound(on) {
    this.originalSound = on;
    if (!this.publishing) return;
    this.#releaseMicrophone();
    this.connect(true);
  }

  /** Retry playback after the browser refused to autoplay (call from a user gesture). */
  resume() {
    this.#startPlaying(this.generation);
  }

  /** What the browser receives, for the connection panel (and tests). */
  async stats() {
    const report = { inbound: null, outbound: null, state: this.pc?.connectionState ?? "new" };
    if (!this.pc) return report;
    for (const s of (await this.pc.getStats()).values()) {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        report.inbound = {
          packetsReceived: s.packetsReceived,
          packetsLost: s.packetsLost,
          jitter: s.jitter,
          audioLevel: s.audioLevel ?? 0,
          totalAudioEnergy: s.totalAudioEnergy ?? 0,
        };
      } else if (s.type === "outbound-rtp" && s.kind === "audio") {
        report.outbound = { packetsSent: s.packetsSent, bytesSent: s.bytesSent };
      }
    }
    return report;
  }

  close() {
    this.closed = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    this.element.removeEventListener("playing", this.onPlaying);
    this.#replace(null);
    this.#releaseMicrophone();
    this.element.srcObject = null;
  }

  async #microphoneTrack() {
    if (!this.microphone) {
      this.microphoneRequest ??= this.#openMicrophone();
      await this.microphoneRequest;
    }
    const track = this.microphone?.getAudioTracks()[0] ?? null;
    if (track) track.enabled = this.micEnabled;
    return track;
  }

  /** Ask the browser for the microphone; one that arrives after it was released is stopped. */
  async #openMicrophone() {
    const wanted = this.microphoneWanted;
    const processing = !this.originalSound;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: processing,
          noiseSuppression: processing,
          autoGainControl: processing,
          channelCount: 1,
        },
      });
    } catch (error) {
      throw new ActionError(
        "microphone",
        `Your microphone is not available (${error.name}): allow it, then press Unmute`,
      );
    } finally {
      if (wanted === this.microphoneWanted) this.microphoneRequest = null;
    }
    if (wanted !== this.microphoneWanted || this.closed || !this.publishing) {
      for (const track of stream.getTracks()) track.stop(); // closed, off stage or new settings
      return;
    }
    this.microphone = stream;
    this.micError = null;
  }

  #releaseMicrophone() {
    this.microphoneWanted++;
    this.microphoneRequest = null;
    for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = null;
  }

  #replace(pc) {
    const old = this.pc;
    this.pc = pc;
    if (old) old.close();
  }

  #play(track, generation) {
    if (generation !== this.generation) return;
    this.element.srcObject = new MediaStream([track]);
    this.#startPlaying(generation);
  }

  /** play(); only the browser's autoplay refusal counts as blocked (not an interrupted play). */
  #startPlaying(generation) {
    this.element.play().catch((error) => {
      if (error.name !== "NotAllowedError" || this.closed || generation !== this.generation) return;
      this.blocked = true;
      this.#emit(this.state, this.message);
    });
  }

  #stateChanged(pc, generation) {
    if (generation !== this.generation) return;
    if (pc.connectionState === "connected") {
      this.retries = 0;
      this.#emit("connected");
    } else if (pc.connectionState === "failed") {
      this.#retry(generation, "The audio connection failed");
    }
  }

  #retry(generation, message, atLeastMs = 0) {
    const delay = Math.max(atLeastMs, RETRY_DELAYS_MS[Math.min(this.retries, RETRY_DELAYS_MS.length - 1)]);
    this.retries++;
    this.#emit("retrying", `${message} — retrying in ${Math.round(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => {
      if (generation === this.generation) this.connect(this.publishing);
    }, delay);
  }

  #emit(state, message = null) {
    this.state = state;
    this.message = message;
    const detail = { state, message, blocked: this.blocked, micError: this.micError };
    this.dispatchEvent(new CustomEvent("status", { detail }));
  }
}
