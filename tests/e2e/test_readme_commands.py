"""The README's two set-up commands: the test command is what CI runs, and the serve command,
run as written (the package installed non-editable into a fresh environment), serves /healthz
and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start")[1].split("\n## ")[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    serve, test, *_ = _commands()
    assert serve == "pip install . && liveroom serve"
    assert test == "./scripts/test"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec \./scripts/test$", ci, re.M)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  (loopback only)
        body: bytes = resp.read()
        return body


def test_serve_command_runs_on_embedded_defaults(tmp_path: Path) -> None:
    install, serve = _commands()[0].split(" && ")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # Dependencies come from this environment; the package itself is built and installed as
    # `pip install .` does, so what a wheel leaves out (migrations, py.typed) would show here.
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", *install.split(), "-q", "--no-deps"],
        cwd=ROOT,
        check=True,
    )
    port = free_port()
    env = {
        **os.environ,
        "LIVEROOM_PORT": str(port),
        "LIVEROOM_DATA_DIR": str(tmp_path / "data"),
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
    }
    env.pop("LIVEROOM_DATABASE_URL", None)
    proc = subprocess.Popen(
        serve.split(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = json.loads(_get(f"http://127.0.0.1:{port}/healthz"))
                assert health["ok"] is True and health["media"]["ok"] is True
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"serve did not come up:\n{proc.communicate(timeout=5)[0]}")
                time.sleep(0.2)
        assert b"liveroom" in _get(f"http://127.0.0.1:{port}/")
        assert (tmp_path / "data" / "liveroom.db").exists()
        assert (tmp_path / "data" / "secret").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "stopped" in output
