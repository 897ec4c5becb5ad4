"""How the code is put together: pure models stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "liveroom"
IO_LIBRARIES = {
    "asyncio",
    "aiohttp",
    "socketio",
    "engineio",
    "sqlalchemy",
    "redis",
    "aiortc",
    "av",
    "asyncpg",
    "aiosqlite",
    "socket",
    "time",
    "os",
    "requests",
    "httpx",
}
PURE = sorted(
    [
        *PACKAGE.rglob("model.py"),
        PACKAGE / "permissions.py",
        PACKAGE / "errors.py",
        PACKAGE / "rooms" / "stage.py",
        PACKAGE / "media" / "mixer.py",
        PACKAGE / "qa" / "views.py",
        PACKAGE / "client" / "sync.py",
        PACKAGE / "media" / "ducking.py",
        PACKAGE / "media" / "hls_playlist.py",
        PACKAGE / "media" / "counters.py",
        PACKAGE / "signaling" / "tally.py",
        PACKAGE / "stats" / "queries.py",
        PACKAGE / "webhooks" / "payloads.py",
    ]
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_models_do_no_io(path: Path) -> None:
    assert not _imports(path) & IO_LIBRARIES
