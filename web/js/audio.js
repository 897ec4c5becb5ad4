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
 * Events (EventTarget): "status" with detail {state, message?}: state is "connecting",
 * "connected", "retrying", "blocked" (autoplay refused: call resume() from a click), "failed".
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
    this.publishing = false;
    this.micEnabled = false;
    this.generation = 0;
    this.retries = 0;
    this.retryTimer = null;
    this.closed = false;
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
      pc.addEventListener("track", (event) => this.#play(event.track));
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
        // Still hear the room; speaking waits for the microphone (the next offer asks again).
        this.#emit("failed", error.display);
        if (publish) this.connect(false);
        return;
      }
      if (error instanceof ActionError && ["gone", "forbidden", "conflict"].includes(error.code)) {
        this.#emit("failed", error.display);
        return;
      }
      this.#retry(generation, error instanceof ActionError ? error.display : String(error));
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
  async resume() {
    try {
      await this.element.play();
      this.#emit(this.pc?.connectionState === "connected" ? "connected" : "connecting");
    } catch {
      this.#emit("blocked", "Tap “Play audio” to listen");
    }
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
    this.#replace(null);
    this.#releaseMicrophone();
    this.element.srcObject = null;
  }

  async #microphoneTrack() {
    if (!this.microphone) {
      const processing = !this.originalSound;
      try {
        this.microphone = await navigator.mediaDevices.getUserMedia({
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
          `Your microphone is not available (${error.name}): allow it to speak`,
        );
      }
    }
    const [track] = this.microphone.getAudioTracks();
    track.enabled = this.micEnabled;
    return track;
  }

  #releaseMicrophone() {
    for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = null;
  }

  #replace(pc) {
    const old = this.pc;
    this.pc = pc;
    if (old) old.close();
  }

  #play(track) {
    this.element.srcObject = new MediaStream([track]);
    this.element.play().catch(() => this.#emit("blocked", "Tap “Play audio” to listen"));
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

  #retry(generation, message) {
    const delay = RETRY_DELAYS_MS[Math.min(this.retries, RETRY_DELAYS_MS.length - 1)];
    this.retries++;
    this.#emit("retrying", `${message} — retrying in ${Math.round(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => {
      if (generation === this.generation) this.connect(this.publishing);
    }, delay);
  }

  #emit(state, message = null) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, message } }));
  }
}
