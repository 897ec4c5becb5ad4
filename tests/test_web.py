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
            kind = "text/css" if name.endswith(".css") else "javascript"
            assert kind in r.headers["Content-Type"]


def test_the_client_writes_user_text_only_as_text() -> None:
    """No HTML parsing of strings anywhere in the client: names and titles can't become markup."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(")
    scripts = sorted((WEB / "js").glob("*.js"))
    assert scripts
    for script in scripts:
        source = script.read_text()
        assert not [s for s in sinks if s in source], script.name
        assert 'setAttribute("style"' not in source, script.name  # inline style: CSP refuses


def test_the_page_has_no_inline_script_or_style() -> None:
    page = (WEB / "index.html").read_text()
    assert "<style" not in page and " style=" not in page
    for tag in page.split("<script")[1:]:
        assert 'src="' in tag.split(">", 1)[0]  # every script is a file
        assert tag.split(">", 1)[1].startswith("</script>")  # with nothing inline


async def test_every_module_the_client_imports_is_served(server: RunningServer) -> None:
    scripts = sorted((WEB / "js").glob("*.js"))
    async with aiohttp.ClientSession() as http:
        for script in scripts:
            for line in script.read_text().splitlines():
                if line.startswith("import ") and " from " in line:
                    target = line.rsplit(" from ", 1)[1].strip(' ";')
                    url = f"{server.url}/js/{target}" if target.startswith("./") else None
                    url = url or f"{server.url}/{target.removeprefix('../')}"
                    async with http.get(url) as r:
                        assert r.status == 200, (script.name, target)
                        assert "javascript" in r.headers["Content-Type"]
