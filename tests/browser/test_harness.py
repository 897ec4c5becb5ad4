"""The browser harness itself: Chromium loads the web client and hears its fake microphone."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveroom.app import RunningServer
from tests.browser.conftest import Launch

pytestmark = pytest.mark.browser

# The microphone without processing, through an analyser for about a second: the loudest bin.
DOMINANT_FREQUENCY_JS = """
async () => {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false},
  });
  const ctx = new AudioContext();
  try {
    await ctx.resume();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const total = new Float64Array(analyser.frequencyBinCount);
    const until = performance.now() + 1000;
    while (performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      analyser.getFloatFrequencyData(bins);
      bins.forEach((db, i) => { if (Number.isFinite(db)) total[i] += 10 ** (db / 10); });
    }
    let best = 1;
    for (let i = 1; i < total.length; i++) if (total[i] > total[best]) best = i;
    return {hz: best * ctx.sampleRate / analyser.fftSize, power: total[best]};
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    await ctx.close();
  }
}
"""


async def test_a_participant_hears_its_fake_microphone(
    web_server: RunningServer, launch: Launch, artifacts_dir: Path
) -> None:
    alice = await launch("alice", mic_hz=440)
    response = await alice.page.goto(web_server.url + "/")
    assert response is not None
    assert response.ok
    assert "content-security-policy" in await response.all_headers()

    heard = await alice.page.evaluate(DOMINANT_FREQUENCY_JS)
    assert abs(heard["hz"] - 440) <= 30, heard
    assert heard["power"] > 0

    shot = await alice.screenshot(artifacts_dir, "home")
    assert shot.stat().st_size > 0
    assert alice.errors == []
    assert alice.dialogs == []
