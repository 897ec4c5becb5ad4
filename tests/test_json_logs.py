"""``--log-format json``: one JSON object a line, and the room and user of every line about
them — passed by the call site, or known from the Socket.IO event being handled."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from liveroom.app import REGISTRY, RunningServer
from liveroom.logs import log_context, log_handler
from liveroom.signaling.registry import Ack, EventContext
from tests.conftest import Connect

ROOT = Path(__file__).resolve().parent.parent


class JsonLines:
    """What a ``--log-format json`` handler on the ``liveroom`` logger wrote, parsed."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def about(self, words: str) -> dict[str, Any]:
        matching = [line for line in self.lines() if words in line["message"]]
        assert matching, f"no line says {words!r}"
        return matching[-1]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    captured = JsonLines()
    handler = log_handler("json", captured.stream)
    logger = logging.getLogger("liveroom")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield captured
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_line_is_one_json_object_with_the_standard_fields(json_lines: JsonLines) -> None:
    log = logging.getLogger("liveroom.test")
    log.info("room %s opened", "r1", extra={"room_id": "r1"})
    try:
        raise RuntimeError("broken mixer")
    except RuntimeError:
        log.exception("tick failed")
    with log_context(room_id="r2", user_id="u2"):
        log.warning("inside an event")
        log.warning("about someone else", extra={"user_id": "u3"})
    log.info("outside again")

    lines = json_lines.stream.getvalue().splitlines()
    assert len(lines) == 5  # one object a line: a traceback stays inside its line
    opened, failed, inside, other, outside = json_lines.lines()
    assert list(opened)[:4] == ["time", "level", "logger", "message"]
    assert opened["level"] == "INFO" and opened["logger"] == "liveroom.test"
    assert opened["message"] == "room r1 opened" and opened["room_id"] == "r1"
    assert opened["time"].endswith("+00:00")  # ISO 8601, UTC
    assert "user_id" not in opened
    assert "RuntimeError: broken mixer" in failed["exception"]
    assert (inside["room_id"], inside["user_id"]) == ("r2", "u2")
    assert (other["room_id"], other["user_id"]) == ("r2", "u3")  # the call site's wins
    assert "room_id" not in outside and "user_id" not in outside


async def test_lines_logged_while_an_event_is_handled_name_its_user_and_room(
    server: RunningServer, connect: Connect, json_lines: JsonLines
) -> None:
    host = await connect("host-1", host=True)
    room_id = (await host.request("room:create", {"title": "Logs"}))["room"]["id"]
    created = json_lines.about(f"created room {room_id}")
    assert (created["room_id"], created["user_id"]) == (room_id, "host-1")

    # A handler deep in the server that passes no ids at all: the dispatcher's context does.
    registry = server.app[REGISTRY]
    react = registry.handlers["react"]

    async def quiet_handler(ctx: EventContext, payload: Any) -> Ack:
        logging.getLogger("liveroom.somewhere.deep").info("a tap, said plainly")
        raise RuntimeError("and then it broke")

    registry.handlers["react"] = replace(react, run=quiet_handler)
    await host.request("room:join", {"room_id": room_id})
    ack = await host.call("react", {"room_id": room_id, "emoji": "🔥"})
    assert ack["error"]["code"] == "internal"

    plain = json_lines.about("a tap, said plainly")
    assert (plain["room_id"], plain["user_id"]) == (room_id, "host-1")
    internal = json_lines.about("internal error")
    assert (internal["room_id"], internal["user_id"]) == (room_id, "host-1")
    assert "RuntimeError: and then it broke" in internal["exception"]
    joined = json_lines.about(f"joined room {room_id}")
    assert (joined["room_id"], joined["user_id"]) == (room_id, "host-1")


async def test_moderation_is_logged_with_the_room_and_the_user_it_was_done_to(
    server: RunningServer, connect: Connect, json_lines: JsonLines
) -> None:
    host = await connect("host-2", host=True)
    room_id = (await host.request("room:create", {"title": "Moderation"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    fan = await connect("fan-2")
    await fan.request("room:join", {"room_id": room_id})
    await host.request("room:remove", {"room_id": room_id, "user_id": "fan-2", "ban": True})
    line = json_lines.about("of user fan-2 by host-2")
    assert (line["room_id"], line["user_id"]) == (room_id, "fan-2")


def test_the_command_line_switches_to_json(tmp_path: Path) -> None:
    env = {**os.environ, "LIVEROOM_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    command = ["token", "--data-dir", str(tmp_path), "--user", "u", "--name", "U"]
    result = subprocess.run(
        [sys.executable, "-m", "liveroom", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any("generated a new secret" in line["message"] for line in lines)
    assert all(line["level"] and line["logger"] and line["time"] for line in lines)
