"""``liveroom token`` and ``liveroom db upgrade`` read the same config as ``serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveroom.auth import GUEST_PREFIX, TokenService
from liveroom.cli import main
from liveroom.clock import SystemClock
from liveroom.config import load_or_create_secret
from liveroom.db.migrate import head_revision


def test_token_is_signed_with_the_data_dir_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "token",
        "--data-dir",
        str(tmp_path),
        "--user",
        "artist-7",
        "--name",
        "Artist",
        "--host",
        "--verified",
        "--market",
        "kr",
        "--ttl",
        "600",
    ]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    identity = TokenService(load_or_create_secret(tmp_path), SystemClock(), 60).verify(token)
    assert identity.user_id == "artist-7" and identity.grants.host and not identity.grants.admin
    assert identity.verified and identity.market == "KR" and not identity.guest


@pytest.mark.parametrize(
    "extra",
    [
        ["--user", GUEST_PREFIX + "1", "--name", "x"],
        ["--user", "u", "--name", ""],
        ["--user", "u", "--name", "x", "--market", "Korea"],
    ],
)
def test_token_refuses_bad_input(
    tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--data-dir", str(tmp_path), *extra]) == 2
    assert capsys.readouterr().err.startswith("liveroom: ")


def test_db_upgrade_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert f"database at {head_revision()}" in capsys.readouterr().out
    assert (tmp_path / "liveroom.db").exists()
