"""``liveroom doctor``: one plain line per check, exit 0 when all is well and 1 naming what is
not; it changes nothing and no check takes longer than its limit. And ``liveroom --version``."""

from __future__ import annotations

import asyncio
import importlib.metadata
from dataclasses import replace
from pathlib import Path

import pytest

from liveroom import doctor
from liveroom.cli import main
from liveroom.config import Config
from liveroom.db.migrate import head_revision, upgrade
from liveroom.db.session import create_engine
from tests.conftest import TEST_SECRET

CHECKS = ["settings", "secret", "data dir", "database", "redis", "media dir", "ice", "webhooks"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["doctor", *argv])
    return code, capsys.readouterr().out.splitlines()


def line(lines: list[str], check: str) -> str:
    return next(entry for entry in lines if entry[2:].startswith(check + ":"))


def test_all_good_exits_0_with_a_line_per_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    code, lines = run(["--data-dir", str(tmp_path)], capsys)
    assert code == 0, lines
    assert [entry[2:].split(":")[0] for entry in lines] == CHECKS
    assert all(entry.startswith("✓ ") for entry in lines), lines
    assert f"schema at {head_revision()} (current)" in line(lines, "database")
    assert "GiB free" in line(lines, "media dir")


def test_a_fresh_data_dir_is_fine_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "not-yet"
    code, lines = run(["--data-dir", str(fresh)], capsys)
    assert code == 0, lines
    assert "serve` makes it" in line(lines, "database")
    assert "will be created" in line(lines, "data dir")
    assert not fresh.exists()  # no database, secret or directory made by looking


def test_a_database_nobody_answers_for_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://liveroom:hunter2@127.0.0.1:1/liveroom"
    code, lines = run(["--data-dir", str(tmp_path), "--database-url", url], capsys)
    assert code == 1
    database = line(lines, "database")
    assert database.startswith("✗ database: cannot connect to postgresql+asyncpg://liveroom:***@")
    assert "hunter2" not in "\n".join(lines)


def test_a_bad_database_url_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(["--data-dir", str(tmp_path), "--database-url", "not a url"], capsys)
    assert code == 1
    assert line(lines, "database") == "✗ database: --database-url is not a database URL"


@pytest.mark.postgres
async def test_a_postgres_database_behind_the_code_says_to_upgrade(
    tmp_path: Path, pg_url: str
) -> None:
    config = Config(data_dir=tmp_path, database_url=pg_url)
    findings = {f.check: f for f in await doctor.examine(config)}
    assert findings["database"].status is doctor.Status.FAIL
    assert "run `liveroom db upgrade`" in findings["database"].message
    engine = create_engine(pg_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    findings = {f.check: f for f in await doctor.examine(config)}
    assert findings["database"].status is doctor.Status.OK


def test_an_unwritable_media_dir_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    for media in (blocker, blocker / "media"):
        code, lines = run(["--data-dir", str(tmp_path), "--media-dir", str(media)], capsys)
        assert code == 1
        assert line(lines, "media dir").startswith("✗ media dir: ")
        assert "not a directory" in line(lines, "media dir")


def test_a_short_secret_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(["--data-dir", str(tmp_path), "--secret", "too-short"], capsys)
    assert code == 1
    assert line(lines, "secret") == "✗ secret: --secret is 9 bytes; it must be at least 32"
    (tmp_path / "secret").write_text("short\n")
    code, lines = run(["--data-dir", str(tmp_path)], capsys)
    assert code == 1 and "holds 5 bytes" in line(lines, "secret")


def test_webhooks_without_a_secret_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data-dir", str(tmp_path), "--webhook-url", "https://hooks.example/in"]
    code, lines = run(argv, capsys)
    assert code == 1
    assert line(lines, "webhooks").startswith("✗ webhooks: --webhook-secret is 0 bytes")
    code, lines = run([*argv, "--webhook-secret", "s" * 16], capsys)
    assert code == 0 and line(lines, "webhooks") == "✓ webhooks: 1 URL(s), signed"


def test_a_setting_that_does_not_parse_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["--data-dir", str(tmp_path), "--port", "eighty"], capsys)
    assert code == 1 and lines[0].startswith("✗ configuration: --port")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("stun:stun.example.org", None),
        ("stun:stun.example.org:3478", None),
        ("turns:turn.example.org:5349?transport=tcp", None),
        ("turn:[2001:db8::1]:3478?transport=udp", None),
        ("http://stun.example.org", "must start with"),
        ("stun://stun.example.org", "no //"),
        ("turn:user@turn.example.org", "no //"),
        ("stun:", "write it as"),
        ("stun:host:70000", "bad port"),
        ("stun:host?transport=udp", "only TURN"),
        ("turn:host?transport=sctp", "transport=udp or"),
    ],
)
def test_ice_urls(url: str, problem: str | None) -> None:
    found = doctor.ice_url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({}, doctor.Status.OK, "none by default"),
        ({"ice_servers": ("stun:stun.example.org",)}, doctor.Status.OK, "1 server"),
        ({"ice_servers": ("turn:turn.example.org",)}, doctor.Status.FAIL, "--turn-secret"),
        (
            {"ice_servers": ("turn:turn.example.org",), "turn_secret": "k"},
            doctor.Status.OK,
            "1 server",
        ),
        ({"turn_secret": "k"}, doctor.Status.WARN, "no TURN server"),
        ({"ice_loopback": True}, doctor.Status.OK, "none by default"),  # a local demo
        ({"ice_loopback": True, "host": "0.0.0.0"}, doctor.Status.WARN, "only 127.0.0.1"),
    ],
)
def test_ice_settings(changes: dict[str, object], status: doctor.Status, words: str) -> None:
    finding = doctor.ice_finding(replace(Config(), **changes))  # type: ignore[arg-type]
    assert finding.status is status and words in finding.message


@pytest.mark.redis
async def test_redis_answers_ping(tmp_path: Path, redis_url: str) -> None:
    findings = {
        f.check: f for f in await doctor.examine(Config(data_dir=tmp_path, redis_url=redis_url))
    }
    assert findings["redis"].status is doctor.Status.OK
    assert findings["redis"].message.endswith("answers PING")


async def test_a_check_that_hangs_is_cut_off_at_its_limit(tmp_path: Path) -> None:
    """A 'Redis' that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = Config(data_dir=tmp_path, secret=TEST_SECRET, redis_url=f"redis://127.0.0.1:{port}")
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        findings = {f.check: f for f in await doctor.examine(config, timeout_s=0.3)}
        assert loop.time() - began < 3
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert findings["redis"].line() == "✗ redis: no answer within 0.3 s"


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"liveroom {importlib.metadata.version('liveroom')}"
