"""Configuration: flags over environment over defaults, the secret kept in the data dir."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from liveroom.config import (
    OPTIONS,
    Config,
    add_arguments,
    load_config,
    load_or_create_secret,
    option_table,
)

ROOT = Path(__file__).resolve().parent.parent


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_win_over_environment_over_defaults() -> None:
    env = {"LIVEROOM_PORT": "9000", "LIVEROOM_HOST": "0.0.0.0", "LIVEROOM_GUESTS": "false"}
    config = load_config(_args("--port", "9100"), env)
    assert config.port == 9100  # flag
    assert config.host == "0.0.0.0"  # environment
    assert config.guests is False
    assert config.data_dir == Path("data")  # default
    assert load_config(_args("--no-guests"), {}).guests is False
    assert load_config(_args(), {}).guests is True


def test_database_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    config = load_config(_args("--data-dir", str(tmp_path)), {})
    assert config.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'liveroom.db'}"
    pg = "postgresql+asyncpg://u@db/liveroom"
    assert load_config(None, {"LIVEROOM_DATABASE_URL": pg}).effective_database_url == pg


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LIVEROOM_PORT": "eighty"}, "--port"),
        ({"LIVEROOM_PORT": "70000"}, "--port"),
        ({"LIVEROOM_GUESTS": "maybe"}, "--no-guests"),
        ({"LIVEROOM_LOG_LEVEL": "loud"}, "--log-level"),
        ({"LIVEROOM_RATE_LIMITS": "events=fast"}, "--rate-limits"),
    ],
)
def test_bad_values_name_their_option(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        load_config(None, env)


def test_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "d")
    mode = stat.S_IMODE((tmp_path / "d" / "secret").stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 32
    assert load_or_create_secret(tmp_path / "d") == first
    assert Config(data_dir=tmp_path / "d").with_secret().secret == first


def test_short_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Config(data_dir=tmp_path, secret="hunter2").with_secret()


def test_readme_configuration_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert option_table() in readme, "paste liveroom.config.option_table() into the README"
    assert all(f"`{opt.env}`" in readme for opt in OPTIONS)
