"""The permission table: complete against PROTOCOL.md, right on authority, and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from liveroom.errors import Forbidden
from liveroom.permissions import RULES, Role, Standing, authorize
from liveroom.permissions_doc import render

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT.parent / "shared" / "PROTOCOL.md"


def test_docs_permissions_md_is_current() -> None:
    on_disk = (ROOT / "docs" / "permissions.md").read_text()
    assert on_disk == render(), "run: liveroom docs permissions > docs/permissions.md"


def test_every_client_event_of_the_protocol_has_a_rule() -> None:
    if not PROTOCOL.exists():
        pytest.fail(f"{PROTOCOL} is missing: shared/ must sit beside the checkout")
    section = PROTOCOL.read_text().split("## Client → server events")[1].split("\n## ")[0]
    events = {
        e
        for row in section.splitlines()
        if row.startswith("| `")
        for e in re.findall(r"`([a-z_]+:[a-z_]+|react)`", row.split("|")[1])
    }
    assert len(events) > 40
    assert events <= set(RULES), f"no rule for {sorted(events - set(RULES))}"


def _allowed(event: str, actor: Role, target: Role | None = None, **kw: object) -> bool:
    try:
        authorize(
            RULES[event],
            Standing(role=actor),
            target=Standing(role=target) if target else None,
            **kw,  # type: ignore[arg-type]
        )
    except Forbidden:
        return False
    return True


H, C, M, S, L = Role.HOST, Role.COHOST, Role.MODERATOR, Role.SPEAKER, Role.LISTENER


@pytest.mark.parametrize(
    ("event", "actor", "target", "allowed"),
    [
        ("stage:mute", M, C, False),  # a moderator cannot mute a co-host
        ("stage:mute", M, S, True),
        ("stage:mute", C, C, False),  # equal rank
        ("stage:mute", S, S, False),  # speakers do not moderate
        ("room:remove", C, H, False),  # nobody removes the host
        ("room:remove", M, H, False),
        ("room:remove", C, M, False),  # only the host removes moderators, though cohost outranks
        ("room:remove", H, M, True),
        ("room:remove", H, C, True),
        ("room:remove", M, L, True),
        ("stage:demote", C, C, False),
        ("stage:demote", H, C, True),
        ("stage:approve", M, L, True),
        ("stage:approve", S, L, False),
    ],
)
def test_authority(event: str, actor: Role, target: Role, allowed: bool) -> None:
    assert _allowed(event, actor, target) is allowed


@pytest.mark.parametrize("role", list(Role))
def test_anyone_may_mute_and_demote_themself(role: Role) -> None:
    me = Standing(role=role)
    authorize(RULES["stage:mute"], me, target=me, is_self=True)
    authorize(RULES["stage:demote"], me, target=me, is_self=True)


def test_nobody_removes_themself_with_a_moderation_action() -> None:
    me = Standing(role=Role.HOST)
    with pytest.raises(Forbidden):
        authorize(RULES["room:remove"], me, target=me, is_self=True)


@pytest.mark.parametrize(
    ("actor", "granted", "allowed"),
    [
        (H, C, True),
        (H, M, True),
        (C, C, False),
        (C, M, False),
        (C, S, True),
        (M, S, True),
        (M, C, False),
    ],
)
def test_only_the_host_names_cohosts_and_moderators(
    actor: Role, granted: Role, allowed: bool
) -> None:
    assert _allowed("stage:invite", actor, L, granted_role=granted) is allowed


def test_admin_acts_as_host_anywhere_and_banned_users_do_nothing() -> None:
    admin = Standing(role=None, admin=True)
    authorize(RULES["room:end"], admin)
    authorize(RULES["room:remove"], admin, target=Standing(role=Role.COHOST))
    banned = Standing(role=Role.LISTENER, banned=True)
    for event in ("room:join", "react", "qa:ask"):
        with pytest.raises(Forbidden, match="banned"):
            authorize(RULES[event], banned)


def test_non_members_must_join_first() -> None:
    with pytest.raises(Forbidden, match="join the room first"):
        authorize(RULES["react"], Standing())


def test_playlist_control_follows_the_room_mode() -> None:
    speaker = Standing(role=Role.SPEAKER)
    with pytest.raises(Forbidden):
        authorize(RULES["playlist:play"], speaker)
    authorize(RULES["playlist:play"], Standing(role=Role.SPEAKER, playlist_open=True))
    with pytest.raises(Forbidden):
        authorize(RULES["playlist:play"], Standing(role=Role.LISTENER, playlist_open=True))
