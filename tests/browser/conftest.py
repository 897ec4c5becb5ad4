"""The browser-test harness: a real server and headless Chromium participants driven by Playwright.

Each participant is its own Chromium process (the fake microphone is per process) with a fresh
profile; its microphone loops a WAV file, a sine of a chosen pitch or silence. Debian's
``chromium`` is used as it is installed: ``playwright install`` is never run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    Playwright,
    async_playwright,
)

from liveroom.app import RunningServer
from tests.conftest import need_service
from tests.hearing import tones, wav
from tests.peers import Peers

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 48_000
DEFAULT_TIMEOUT_MS = 15_000

# DESIGN.md, "Known traps here": fake devices with no permission prompt, loopback ICE, autoplay
# without a gesture, and nothing that reaches outside (no sandbox: tests run as root).
CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def tone_wav(path: Path, hz: int, seconds: float = 4.0) -> Path:
    """A 48 kHz mono 16-bit PCM sine at half full scale (``hz=0``: silence); Chromium loops it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav(tones([(hz, seconds)])))
    return path


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


@dataclass
class Participant:
    """One Chromium process: its persistent context, first page and what went wrong in it."""

    name: str
    context: BrowserContext
    page: Page
    test_name: str
    errors: list[str] = field(default_factory=list)  # page errors and console errors
    dialogs: list[str] = field(default_factory=list)  # messages of dialogs (all dismissed)

    async def screenshot(self, artifacts_dir: Path, name: str) -> Path:
        """A full-page screenshot saved as ``<artifacts_dir>/<test>-<name>.png``."""
        path = artifacts_dir / f"{self.test_name}-{_file_safe(name)}.png"
        # From the top: a page scrolled by clicks draws its sticky bar mid-page otherwise.
        await self.page.evaluate("() => window.scrollTo(0, 0)")
        await self.page.screenshot(path=path, full_page=True)
        return path

    def watch(self, page: Page) -> None:
        """Collect ``page``'s errors and dialogs into this participant's lists."""

        def on_page_error(error: Error) -> None:
            self.errors.append(f"{self.name}: pageerror: {error}")

        def on_console(message: ConsoleMessage) -> None:
            url = message.location.get("url", "")
            if message.type == "error" and not url.endswith("/favicon.ico"):
                self.errors.append(f"{self.name}: console: {message.text} ({url})")

        async def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("pageerror", on_page_error)
        page.on("console", on_console)
        page.on("dialog", on_dialog)


class Launch(Protocol):
    def __call__(
        self, name: str, mic_hz: int | None = None, *, viewport: tuple[int, int] = (1280, 800)
    ) -> Awaitable[Participant]: ...


@pytest.fixture
def web_server(audio_server: RunningServer) -> RunningServer:
    """A real server (web client at ``/``) whose media offers 127.0.0.1 candidates only."""
    return audio_server


@pytest.fixture
def artifacts_dir() -> Path:
    """``$LIVEROOM_ARTIFACTS_DIR``, else ``artifacts/browser/`` at the repository root."""
    given = os.environ.get("LIVEROOM_ARTIFACTS_DIR")
    path = Path(given) if given else REPO / "artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium: skipped without it on a developer machine, a failure in CI."""
    if not CHROMIUM.exists():
        need_service("chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def launch(
    chromium: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Launch]:
    """``await launch("alice", mic_hz=440)``: a headless Chromium whose microphone plays a tone
    (silence without ``mic_hz``); every browser is closed after the test, passed or failed."""
    test_name = _file_safe(request.node.name)
    playwright: Playwright | None = None
    participants: list[Participant] = []

    async def _launch(
        name: str, mic_hz: int | None = None, *, viewport: tuple[int, int] = (1280, 800)
    ) -> Participant:
        nonlocal playwright
        if playwright is None:
            playwright = await async_playwright().start()
        hz = mic_hz or 0
        wav = tone_wav(tmp_path / "mic" / f"{hz}hz.wav", hz)
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "profiles" / _file_safe(name),
            executable_path=chromium,
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.pages[0] if context.pages else await context.new_page()
        participant = Participant(name, context, page, test_name)
        participants.append(participant)
        participant.watch(page)
        context.on("page", participant.watch)
        return participant

    try:
        yield _launch
    finally:
        try:
            for participant in participants:
                with contextlib.suppress(Error):  # already gone: crashed or closed by the test
                    await participant.context.close()
        finally:
            if playwright is not None:
                await playwright.stop()


@pytest.fixture
async def python(web_server: RunningServer) -> AsyncIterator[Peers]:
    """SDK clients beside the browsers."""
    peers = Peers(web_server)
    yield peers
    await peers.close()


async def sign_in_with_token(p: Participant, token: str) -> None:
    await p.page.get_by_label("Access token").fill(token)
    await p.page.get_by_role("button", name="Sign in with token").click()


async def sign_in_as_guest(p: Participant, name: str) -> None:
    await p.page.get_by_label("Display name").fill(name)
    await p.page.get_by_role("button", name="Continue").click()


async def audio_stats(p: Participant) -> dict[str, Any]:
    stats: dict[str, Any] = await p.page.evaluate(
        "() => window.liveroom.view?.audio?.stats() ?? null"
    )
    return stats or {}


async def until_hearing(p: Participant, timeout: float = 30) -> dict[str, Any]:
    """getStats of the room's connection until audio arrives and is loud: packets received,
    totalAudioEnergy rising between two looks, audioLevel over 0.05."""
    previous = 0.0
    async with asyncio.timeout(timeout):
        while True:
            inbound = (await audio_stats(p)).get("inbound") or {}
            energy = inbound.get("totalAudioEnergy", 0.0)
            if (
                inbound.get("packetsReceived", 0) >= 50
                and energy > previous > 0
                and inbound.get("audioLevel", 0.0) > 0.05
            ):
                return inbound
            previous = energy
            await asyncio.sleep(0.5)
