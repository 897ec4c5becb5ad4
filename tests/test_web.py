"""The web client's static serving: offline libraries, and a policy that runs no inline script."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from liveroom.app import RunningServer

WEB = Path(__file__).resolve().parent.parent / "web"


async def test_pages_carry_a_policy_without_inline_script(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/") as resp:
        assert resp.status == 200
        policy = resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy
    assert directives["object-src"] == "'none'"


async def test_vendored_libraries_are_served_with_their_versions(server: RunningServer) -> None:
    versions = (WEB / "vendor" / "VERSIONS").read_text().split("\n")
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"]
    for line in filter(None, versions):
        name, package, licence = line.split()
        package_name, version = package.rsplit("@", 1)
        assert pinned[package_name] == version  # what is vendored is what is pinned
        assert (WEB / "vendor" / f"{name}.LICENSE").is_file()
        assert licence
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/vendor/{name}") as r:
            assert r.status == 200
            assert "javascript" in r.headers["Content-Type"]
