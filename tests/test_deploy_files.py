"""The deployment files agree with each other and with liveroom, as far as can be told without a
Docker engine: ``Dockerfile``, ``.dockerignore``, ``deploy/compose.yaml``, ``deploy/nginx.conf``,
``deploy/turnserver.conf`` and ``deploy/env.example``.

Each container's liveroom settings are worked out the way the container would: the image's
``ENTRYPOINT`` + ``CMD`` (or the service's ``command``) parsed by liveroom's own CLI parser, over
the image's ``ENV`` and the service's ``environment`` (compose variables filled in from
``env.example``), through :func:`liveroom.config.load_config`. Ports, directories, secrets and
addresses are then compared with what nginx, coturn and the volumes expect.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml
from sqlalchemy.engine import make_url

from liveroom.app import RunningServer
from liveroom.cli import build_parser
from liveroom.config import OPTIONS, Config, load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KNOWN_ENV = {opt.env for opt in OPTIONS}
KNOWN_FLAGS = {opt.flag for opt in OPTIONS}
ENV_NAME = re.compile(r"\bLIVEROOM_[A-Z0-9_]+\b")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# ---- Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the runtime stage has no {keyword}"
        return found[-1]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


@cache
def stages() -> list[Stage]:
    args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, rest in dockerfile_instructions((ROOT / "Dockerfile").read_text()):
        if keyword == "ARG" and not found:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(base, stage_name))
        else:
            assert found, f"{keyword} before the first FROM"
            found[-1].instructions.append((keyword, rest))
    return found


def runtime() -> Stage:
    return stages()[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in runtime().all("ENV"):
        for word in shlex.split(rest):
            name, sep, value = word.partition("=")
            assert sep, f"ENV {word!r}: write ENV NAME=value"
            env[name] = value
    return env


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"not exec form (a JSON array): {rest}"
    assert all(isinstance(v, str) for v in value)
    return [str(v) for v in value]


def image_command() -> tuple[list[str], list[str]]:
    return exec_form(runtime().last("ENTRYPOINT")), exec_form(runtime().last("CMD"))


def healthcheck_command() -> list[str]:
    rest = runtime().last("HEALTHCHECK")
    options, sep, command = rest.partition("CMD ")
    assert sep, "HEALTHCHECK without CMD"
    assert all(o.startswith("--") for o in options.split())
    return exec_form(command.strip())


def copy_sources() -> Iterator[tuple[str, str]]:
    """(source, destination) of every COPY from the build context."""
    for stage in stages():
        for rest in stage.all("COPY"):
            words = shlex.split(rest)
            if any(w.startswith("--from=") for w in words):
                continue
            paths = [w for w in words if not w.startswith("--")]
            for source in paths[:-1]:
                yield source, paths[-1]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in patterns
        for prefix in prefixes
    )


def liveroom_argv(command: list[str] | None) -> list[str]:
    """What the container runs, after ``liveroom``: the image's CMD unless compose gives one."""
    entrypoint, cmd = image_command()
    assert entrypoint == ["liveroom"], entrypoint
    return list(command) if command is not None else cmd


def container_config(command: list[str] | None, environment: Mapping[str, str]) -> Config:
    args = build_parser().parse_args(liveroom_argv(command))
    return load_config(args, {**image_env(), **environment})


# ---- compose ----------------------------------------------------------------------------------


@cache
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        name, kind, default = m.group(1), m.group(2), m.group(3)
        if name in env_example():
            return env_example()[name]
        assert kind is not None and "-" in kind, f"${{{name}}} has no value in env.example"
        return default or ""

    return COMPOSE_VAR.sub(one, text)


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def liveroom_services() -> dict[str, dict[str, Any]]:
    """Services that run the image built from the Dockerfile."""
    return {
        name: svc
        for name, svc in services().items()
        if isinstance(svc.get("build"), dict) and svc["build"].get("dockerfile") == "Dockerfile"
    }


def nodes() -> dict[str, dict[str, Any]]:
    """liveroom services running ``serve`` (the image's CMD)."""
    return {name: svc for name, svc in liveroom_services().items() if svc.get("command") is None}


def environment(svc: Mapping[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, please"
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def service_config(svc: Mapping[str, Any]) -> Config:
    return container_config(svc.get("command"), environment(svc))


def mounts(svc: Mapping[str, Any]) -> dict[str, str]:
    """Mount target → source (a named volume, or a path relative to deploy/)."""
    out: dict[str, str] = {}
    for entry in svc.get("volumes") or []:
        assert isinstance(entry, str), "short volume syntax, please"
        source, target = entry.split(":")[:2]
        out[target] = source
    return out


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def network_address(svc: Mapping[str, Any], network: str) -> ipaddress.IPv4Address:
    nets = svc["networks"]
    assert isinstance(nets, dict), "networks as a mapping, with ipv4_address"
    return ipaddress.IPv4Address(nets[network]["ipv4_address"])


def subnet(network: str) -> ipaddress.IPv4Network:
    config = compose()["networks"][network]["ipam"]["config"]
    return ipaddress.IPv4Network(config[0]["subnet"])


# ---- nginx.conf -------------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def find(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> Directive:
        found = self.find(name)
        assert len(found) == 1, f"{self.name} {self.args}: {len(found)} × {name}"
        return found[0]

    def values(self, name: str) -> list[list[str]]:
        return [d.args for d in self.find(name)]


def nginx_tokens(text: str) -> Iterator[str]:
    token = re.compile(r"""'[^']*'|"[^"]*"|[{};]|[^\s{};'"]+""")
    for line in text.splitlines():
        code = line.split("#", 1)[0] if not re.search(r"""['"].*#""", line) else line
        for m in token.finditer(code):
            word = m.group(0)
            yield word[1:-1] if word[:1] in "'\"" and len(word) > 1 else word


def parse_nginx(tokens: Iterator[str]) -> list[Directive]:
    out: list[Directive] = []
    words: list[str] = []
    for tok in tokens:
        if tok == ";":
            out.append(Directive(words[0], words[1:]))
            words = []
        elif tok == "{":
            out.append(Directive(words[0], words[1:], parse_nginx(tokens)))
            words = []
        elif tok == "}":
            assert not words, f"unterminated directive {words}"
            return out
        else:
            words.append(tok)
    assert not words, f"unterminated directive {words}"
    return out


@cache
def nginx() -> Directive:
    return Directive("main", [], parse_nginx(nginx_tokens((DEPLOY / "nginx.conf").read_text())))


def http() -> Directive:
    return nginx().one("http")


def upstreams() -> dict[str, Directive]:
    return {d.args[0]: d for d in http().find("upstream")}


def tls_server() -> Directive:
    found = [s for s in http().find("server") if any("ssl" in a for a in s.values("listen"))]
    assert len(found) == 1, "one server block listens with ssl"
    return found[0]


def location(path: str) -> Directive:
    found = [d for d in tls_server().find("location") if d.args[-1] == path]
    assert len(found) == 1, f"no location {path} in the TLS server"
    return found[0]


def upstream_of(loc: Directive) -> Directive:
    (target,) = loc.one("proxy_pass").args
    name = urlsplit(target).hostname or ""
    assert name in upstreams(), f"{loc.args}: proxy_pass to {target}, not to an upstream"
    return upstreams()[name]


def header_names(block: Directive) -> set[str]:
    return {args[0].lower() for args in block.values("proxy_set_header")}


def nginx_size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].isalpha() else int(text)


def nginx_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text)
    assert m, text
    return int(m.group(1)) * units[m.group(2) or "s"]


# ---- turnserver.conf --------------------------------------------------------------------------


@cache
def turn_conf() -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for raw in (DEPLOY / "turnserver.conf").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            out.append((key.strip(), value.strip() if sep else None))
    return out


def turn_values(key: str) -> list[str]:
    return [v for k, v in turn_conf() if k == key and v is not None]


def turn_has(key: str) -> bool:
    return any(k == key for k, _ in turn_conf())


def ip_range(text: str) -> tuple[int, int, int]:
    """coturn's ``low-high`` (or one address) as (IP version, first, last)."""
    low_text, _, high_text = text.partition("-")
    low, high = ipaddress.ip_address(low_text), ipaddress.ip_address(high_text or low_text)
    assert low.version == high.version and int(low) <= int(high), text
    return low.version, int(low), int(high)


def in_ranges(
    first: ipaddress.IPv4Address | ipaddress.IPv6Address,
    last: ipaddress.IPv4Address | ipaddress.IPv6Address,
    ranges: list[str],
) -> bool:
    """Do ``first``..``last`` lie inside one of coturn's ranges?"""
    for text in ranges:
        version, low, high = ip_range(text)
        if version == first.version and low <= int(first) and int(last) <= high:
            return True
    return False


def covered(net: ipaddress.IPv4Network | ipaddress.IPv6Network, ranges: list[str]) -> bool:
    return in_ranges(net[0], net[-1], ranges)


def coturn_flag(name: str) -> str:
    command = services()["coturn"]["command"]
    found = [c.split("=", 1)[1] for c in command if c.startswith(f"--{name}=")]
    assert len(found) == 1, f"coturn's command gives --{name}= once"
    return str(found[0])


# ---- tests: the Dockerfile --------------------------------------------------------------------


def test_the_image_is_built_in_stages_and_runs_slim_and_unprivileged() -> None:
    assert len(stages()) >= 2
    builder, final = stages()[0], runtime()
    assert builder.name, "the build stage is named, for COPY --from"
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", final.base), final.base
    assert any(f"--from={builder.name}" in rest for rest in final.all("COPY"))
    # Compilers stay in the builder.
    assert not any("build-essential" in rest for rest in final.all("RUN"))
    user = final.last("USER").split(":")[0]
    assert user not in {"root", "0"}
    assert any(user in rest and "useradd" in rest for rest in final.all("RUN"))


def test_the_dockerfile_copies_only_what_the_context_has() -> None:
    patterns = dockerignore_patterns()
    sources = dict(copy_sources())
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # What `pip install .` reads: the project file, its readme, the package.
    for needed in ("pyproject.toml", "README.md", "liveroom"):
        assert needed in sources, f"the build needs {needed}"
    # The web client is not in the package: it is copied where LIVEROOM_WEB_DIR points.
    assert sources["web"] == image_env()["LIVEROOM_WEB_DIR"]
    assert (ROOT / "web" / "index.html").is_file()
    # Nothing the image needs is ignored, and what it must not carry is.
    for unwanted in (".git", "tests", "data", "deploy"):
        assert ignored(unwanted, patterns), f".dockerignore should exclude {unwanted}"


def test_the_image_runs_serve_on_all_interfaces_with_its_volumes_and_port() -> None:
    config = container_config(None, {})
    entrypoint, cmd = image_command()
    assert entrypoint + cmd[:1] == ["liveroom", "serve"]
    assert config.host == "0.0.0.0"
    exposed = {int(p.split("/")[0]) for rest in runtime().all("EXPOSE") for p in rest.split()}
    assert config.port in exposed
    volumes = set(exec_form(runtime().last("VOLUME")))
    assert str(config.data_dir) in volumes
    assert str(config.effective_media_dir) in volumes
    assert config.web_dir is not None
    assert str(config.web_dir) in {dest for _, dest in copy_sources()}


def test_the_healthcheck_asks_healthz_on_the_port_the_server_listens_on() -> None:
    command = healthcheck_command()
    assert command[0] == "python", "Python is in the image; curl is not"
    assert "/healthz" in command[-1]
    assert "LIVEROOM_PORT" in command[-1]
    assert "LIVEROOM_PORT" in image_env()


def test_every_liveroom_variable_and_flag_named_exists() -> None:
    dockerfile_code = "\n".join(
        f"{kw} {rest}" for kw, rest in dockerfile_instructions((ROOT / "Dockerfile").read_text())
    )
    compose_strings = list(strings(compose()))
    docs = (ROOT / "docs" / "deployment.md").read_text()
    for where, text in (
        ("Dockerfile", dockerfile_code),
        ("compose.yaml", "\n".join(compose_strings)),
        ("docs/deployment.md", docs),
    ):
        unknown = set(ENV_NAME.findall(text)) - KNOWN_ENV - {"LIVEROOM_TEST_DATABASE_URL"}
        assert not unknown, f"{where} names variables liveroom does not read: {unknown}"
    argvs = [liveroom_argv(None)] + [
        liveroom_argv(svc.get("command")) for svc in liveroom_services().values()
    ]
    for argv in argvs:
        unknown = set(FLAG.findall(" ".join(argv))) - KNOWN_FLAGS
        assert not unknown, f"liveroom {' '.join(argv)}: unknown flags {unknown}"
        build_parser().parse_args(argv)  # exits on anything the parser refuses


# ---- tests: compose ---------------------------------------------------------------------------


def test_compose_variables_are_all_in_env_example() -> None:
    used = {m.group(1) for s in strings(compose()) for m in COMPOSE_VAR.finditer(s)}
    assert used == set(env_example()), "env.example lists exactly the variables compose uses"
    for s in strings(compose()):
        for m in COMPOSE_VAR.finditer(s):
            assert m.group(2) != "-" and m.group(2) != ":-", f"{m.group(0)}: secrets need a value"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_compose_runs_several_nodes_on_postgres_and_redis() -> None:
    nodes_ = nodes()
    assert len(nodes_) >= 2
    configs = {name: service_config(svc) for name, svc in nodes_.items()}
    for name, config in configs.items():
        assert config.database_url is not None
        url = make_url(config.database_url)
        assert url.drivername == "postgresql+asyncpg", name
        assert url.host in services(), f"{name}: database host {url.host} is not a service"
        assert config.redis_url is not None
        assert urlsplit(config.redis_url).hostname in services()
        assert config.secret, f"{name}: every node needs the same --secret"
        assert config.host == "0.0.0.0"
        # Other nodes reach it by its service name (its own address would be 0.0.0.0).
        assert config.node_url == f"http://{name}:{config.port}"
    # Shared: the database, Redis, the signing key, the TURN secret, the ICE servers.
    for attr in ("database_url", "redis_url", "secret", "turn_secret", "ice_servers"):
        assert len({getattr(c, attr) for c in configs.values()}) == 1, f"{attr} differs by node"
    # The schema is upgraded once, before any node starts (serve refuses an old PostgreSQL one).
    migrators = {n: s for n, s in liveroom_services().items() if s.get("command")}
    (migrate_name, migrate), *_ = migrators.items()
    assert migrate["command"] == ["db", "upgrade"]
    assert service_config(migrate).database_url == next(iter(configs.values())).database_url
    for name, svc in nodes_.items():
        condition = svc["depends_on"][migrate_name]["condition"]
        assert condition == "service_completed_successfully", name


def test_node_volumes_are_mounted_where_the_data_and_media_dirs_point() -> None:
    declared = set(compose()["volumes"])
    media_sources = set()
    data_sources = []
    for name, svc in nodes().items():
        config = service_config(svc)
        mounted = mounts(svc)
        assert str(config.data_dir) in mounted, f"{name}: nothing mounted at the data dir"
        assert str(config.effective_media_dir) in mounted, f"{name}: no media dir mount"
        data_sources.append(mounted[str(config.data_dir)])
        media_sources.add(mounted[str(config.effective_media_dir)])
        for source in mounted.values():
            assert source in declared or source.startswith("."), f"{name}: volume {source}"
    assert len(media_sources) == 1, "every node serves and decodes the same media"
    assert len(set(data_sources)) == len(data_sources), "each node has its own data dir"


def test_nginx_reaches_the_nodes_by_their_service_names_and_port() -> None:
    ports = {name: service_config(svc).port for name, svc in nodes().items()}
    assert upstreams()
    for name, upstream in upstreams().items():
        servers = {}
        for args in upstream.values("server"):
            host, _, port = args[0].rpartition(":")
            servers[host] = int(port)
        assert servers == ports, f"upstream {name} lists {servers}, compose runs {ports}"
    nginx_svc = services()["nginx"]
    assert mounts(nginx_svc).get("/etc/nginx/nginx.conf") == "./nginx.conf"
    assert (DEPLOY / "nginx.conf").is_file()
    assert set(nginx_svc["depends_on"]) == set(nodes())


def test_socket_io_is_sticky_and_upgrades_websockets() -> None:
    loc = location("/socket.io/")
    upstream = upstream_of(loc)
    sticky = upstream.values("hash") + upstream.values("ip_hash") + upstream.values("sticky")
    assert sticky, "Engine.IO's requests of one client must reach one node"
    assert loc.values("proxy_http_version") == [["1.1"]]
    headers = {args[0].lower(): args[1] for args in loc.values("proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    assert any(m.args[1] == "$connection_upgrade" for m in http().find("map"))


def test_hls_and_media_are_cached_as_the_nodes_say() -> None:
    zones = {
        arg.split("=")[1].split(":")[0]
        for args in http().values("proxy_cache_path")
        for arg in args
        if arg.startswith("keys_zone=")
    }
    cache_mount = [t for t in mounts(services()["nginx"]) if t.startswith("/var/cache/nginx")]
    for args in http().values("proxy_cache_path"):
        assert any(args[0].startswith(t) for t in cache_mount), f"{args[0]} is not on a volume"
    for path in ("/hls/", "/media/"):
        loc = location(path)
        upstream_of(loc)  # any node: the media volume is shared
        (zone,) = loc.one("proxy_cache").args
        assert zone in zones
        assert loc.values("proxy_cache_lock") == [["on"]]
        # The node's Cache-Control decides: nothing forces a lifetime or ignores its headers.
        for block in (http(), tls_server(), loc):
            assert not block.find("proxy_cache_valid"), f"{path}: proxy_cache_valid overrides"
            assert not block.find("proxy_ignore_headers"), f"{path}: upstream headers ignored"
        key = loc.one("proxy_cache_key").args[0]
        assert "$args" not in key and "$request_uri" not in key, "nothing per user in the key"


def test_every_proxied_location_passes_the_client_address() -> None:
    server_headers = header_names(tls_server())
    needed = {"host", "x-forwarded-for", "x-forwarded-proto"}
    assert needed <= server_headers
    for loc in tls_server().find("location"):
        if not loc.find("proxy_pass"):
            continue
        # A location with any proxy_set_header of its own inherits none of the server's.
        own = header_names(loc)
        assert not own or needed <= own, f"location {loc.args}: loses {needed - own}"
    # liveroom believes X-Forwarded-For from nginx's address only.
    nginx_address = network_address(services()["nginx"], "internal")
    for name, svc in nodes().items():
        proxies = [ipaddress.ip_network(p) for p in service_config(svc).trusted_proxies]
        assert any(nginx_address in p for p in proxies), f"{name} does not trust nginx"
        assert "internal" in svc["networks"]


def test_nginx_takes_uploads_as_large_as_the_nodes_accept() -> None:
    limit = nginx_size(tls_server().one("client_max_body_size").args[0])
    for svc in nodes().values():
        assert limit >= service_config(svc).media_max_bytes
    certs = mounts(services()["nginx"])
    for name in ("ssl_certificate", "ssl_certificate_key"):
        (path,) = tls_server().one(name).args
        assert any(path.startswith(t + "/") for t in certs), f"{path} is not mounted"


# ---- tests: coturn ----------------------------------------------------------------------------


def test_turn_secret_is_the_one_liveroom_signs_credentials_with() -> None:
    assert turn_has("use-auth-secret")
    # The secret comes from compose; no passwords; no relaying to loopback.
    for forbidden in ("static-auth-secret", "lt-cred-mech", "user", "no-auth"):
        assert not turn_has(forbidden), f"turnserver.conf must not set {forbidden}"
    given = coturn_flag("static-auth-secret")
    variables = {m.group(1) for m in COMPOSE_VAR.finditer(given)}
    assert len(variables) == 1
    for name, svc in nodes().items():
        raw = str(svc["environment"]["LIVEROOM_TURN_SECRET"])
        assert {m.group(1) for m in COMPOSE_VAR.finditer(raw)} == variables, name
        assert service_config(svc).turn_secret == interpolate(given)
    conf_path = services()["coturn"]["command"][1]
    assert mounts(services()["coturn"])[conf_path] == "./turnserver.conf"


def test_turn_urls_point_at_coturn_and_its_ports() -> None:
    (port,) = turn_values("listening-port")
    min_port, max_port = int(turn_values("min-port")[0]), int(turn_values("max-port")[0])
    assert 1024 < min_port < max_port <= 65535
    realm = coturn_flag("realm")
    for svc in nodes().values():
        urls = service_config(svc).ice_servers
        turn = [u for u in urls if u.startswith(("turn:", "turns:"))]
        assert turn, "clients behind strict NATs need a TURN server"
        for url in turn:
            host_port = url.split(":", 1)[1].split("?")[0]
            host, _, url_port = host_port.partition(":")
            assert host == interpolate(realm)
            if url.startswith("turn:"):
                assert url_port == port


def test_turn_is_no_open_relay_but_reaches_the_nodes() -> None:
    for flag in ("no-tcp-relay", "no-multicast-peers", "fingerprint"):
        assert turn_has(flag), flag
    assert not turn_has("allow-loopback-peers")
    denied = turn_values("denied-peer-ip")
    for private in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ):
        assert covered(ipaddress.ip_network(private), denied), f"{private} is not denied"
    allowed = turn_values("allowed-peer-ip")
    media = subnet("media")
    assert allowed
    for text in allowed:
        version, low, high = ip_range(text)
        inside = version == 4 and int(media[0]) <= low and high <= int(media[-1])
        assert inside, f"allowed-peer-ip {text} reaches beyond the nodes' network {media}"
    for name, svc in nodes().items():
        address = network_address(svc, "media")
        assert in_ranges(address, address, allowed), f"coturn may not relay to {name}"
    # Nothing else sits on the network TURN may relay to.
    on_media = [n for n, s in services().items() if "media" in (s.get("networks") or {})]
    others = sorted(set(on_media) - set(nodes()))
    assert not others, f"only liveroom nodes belong on the media network: {others}"
    assert services()["coturn"].get("network_mode") == "host"


# ---- tests: against a real server -------------------------------------------------------------


async def test_healthcheck_command_and_proxy_timeouts_against_a_real_server(
    server: RunningServer,
) -> None:
    port = urlsplit(server.url).port
    assert port is not None
    assert any(r.canonical == "/healthz" for r in server.app.router.resources())
    command = [sys.executable, *healthcheck_command()[1:]]

    async def health(on_port: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            *command,
            env={**os.environ, "LIVEROOM_PORT": str(on_port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(proc.wait(), 30)

    assert await health(port) == 0
    assert await health(1) != 0, "a server that does not answer is unhealthy"

    # nginx must hold a socket at least as long as Engine.IO's ping interval plus its timeout.
    async with (
        aiohttp.ClientSession() as http_client,
        http_client.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as response,
    ):
        opening = json.loads((await response.text())[1:])
    patience_s = (opening["pingInterval"] + opening["pingTimeout"]) / 1000
    loc = location("/socket.io/")
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = loc.one(name).args
        assert nginx_seconds(value) > patience_s, f"{name} {value} cuts live sockets"
