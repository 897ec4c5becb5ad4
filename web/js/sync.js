// Keeping a player in step with the room — the web twin of liveroom/client/sync.py (same
// numbers): the server clock offset from the least-delayed of the last 8 time:sync samples, and
// the drift rules (≥ 400 ms: seek; ≥ 60 ms: ±5 % rate until within 20 ms; one correction per
// 1.5 s at most).

export const RULES = { seekAtMs: 400, nudgeAtMs: 60, settleAtMs: 20, nudge: 0.05, minIntervalMs: 1500 };

export class ServerClock {
  constructor(connection, keep = 8) {
    this.connection = connection;
    this.keep = keep;
    this.samples = [];
  }

  get offsetMs() {
    if (!this.samples.length) return 0;
    return this.samples.reduce((best, s) => (s.delay < best.delay ? s : best)).offset;
  }

  get rttMs() {
    return this.samples.length ? Math.min(...this.samples.map((s) => s.delay)) : null;
  }

  now() {
    return Date.now() + this.offsetMs;
  }

  /** A few round trips; each reports the best round trip so far (starts are scheduled by it). */
  async sync(count = 4) {
    for (let i = 0; i < count; i++) {
      const t0 = Date.now();
      const payload = { t0 };
      if (this.rttMs !== null) payload.rtt = Math.max(0, this.rttMs); // whole-ms stamps can dip below 0
      const ack = await this.connection.call("time:sync", payload);
      const t3 = Date.now();
      this.samples.push({ offset: (ack.t1 - t0 + (ack.t2 - t3)) / 2, delay: t3 - t0 - (ack.t2 - ack.t1) });
      if (this.samples.length > this.keep) this.samples.shift();
    }
  }
}

/** Where the room's item is at server time `serverNow` (held before a scheduled start). */
export function roomPosition(playback, serverNow) {
  let position = playback.position_s;
  if (playback.playing && serverNow > playback.at) position += ((serverNow - playback.at) / 1000) * playback.rate;
  return position;
}

/**
 * What a player `driftMs` off (positive: ahead) should do: {seek: seconds} | {rate} | null.
 */
export function correct(driftMs, targetS, rate, roomRate, nowMs, lastCorrectionMs, rules = RULES) {
  const size = Math.abs(driftMs);
  if (rate !== roomRate && size <= rules.settleAtMs) return { rate: roomRate };
  if (lastCorrectionMs !== null && nowMs - lastCorrectionMs < rules.minIntervalMs) return null;
  if (size >= rules.seekAtMs) return { seek: targetS };
  if (size >= rules.nudgeAtMs) {
    const wanted = roomRate * (driftMs > 0 ? 1 - rules.nudge : 1 + rules.nudge);
    return rate === wanted ? null : { rate: wanted };
  }
  return null;
}
