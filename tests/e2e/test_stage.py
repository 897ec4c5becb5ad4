"""Host and fans over real Socket.IO: the whole stage, end to end."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from liveroom.app import SESSIONS, RunningServer
from liveroom.client import LiveroomClient, Refused
from liveroom.rooms.store import SqlRoomStore
from tests.conftest import Connect, make_token


async def _room(host: LiveroomClient, **extra: Any) -> str:
    ack = await host.request("room:create", {"title": "Comeback night", **extra})
    return str(ack["room"]["id"])


async def _host_fan_troll(
    connect: Connect,
) -> tuple[LiveroomClient, LiveroomClient, LiveroomClient, str]:
    host = await connect("artist", host=True)
    fan, troll = await connect("fan"), await connect("troll")
    room_id = await _room(host)
    for client in (host, fan, troll):
        await client.request("room:join", {"room_id": room_id})
    return host, fan, troll, room_id


async def test_host_and_three_fans_run_the_stage(connect: Connect) -> None:
    host = await connect("artist", "Artist", host=True)
    fans = [await connect(f"fan{i}", f"Fan {i}") for i in range(3)]
    room_id = await _room(host)
    joined = await host.request("room:join", {"room_id": room_id})
    assert joined["room"]["you"]["role"] == "host"
    for fan in fans:
        ack = await fan.request("room:join", {"room_id": room_id})
        assert ack["room"]["you"]["role"] == "listener"
        assert "requests" not in ack["room"] and "invites" not in ack["room"]
        assert ack["reactions"][0] == "❤️"  # the emoji the client may send with `react`
        # After the ack, the joiner gets room:state.
        assert (await fan.next_event("room:state"))["id"] == room_id

    # Raise hands: the host sees them in order.
    for fan in (fans[2], fans[0]):
        await fan.request("stage:request", {"room_id": room_id})
    staff_view = await host.next_event("room:state", lambda s: len(s.get("requests", [])) == 2)
    assert [u["id"] for u in staff_view["requests"]] == ["fan2", "fan0"]

    # Approve the first hand: fan2 speaks, muted until they unmute themself.
    await host.request("stage:approve", {"room_id": room_id, "user_id": "fan2"})
    mine = await fans[2].next_event("room:state", lambda s: s["you"]["role"] == "speaker")
    assert "fan2" in mine["muted"]
    await fans[2].request("stage:unmute", {"room_id": room_id})

    # Invite → accept.
    await host.request("stage:invite", {"room_id": room_id, "user_id": "fan1", "role": "speaker"})
    invited = await fans[1].next_event("stage:invited")
    assert invited["role"] == "speaker" and invited["by"]["id"] == "artist"
    await fans[1].request("stage:accept", {"room_id": room_id})

    # Mute by authority; a remote unmute does not exist.
    await host.request("stage:mute", {"room_id": room_id, "user_id": "fan2"})
    refused = await host.call("stage:unmute", {"room_id": room_id, "user_id": "fan2"})
    assert refused["error"]["code"] == "invalid"  # no such field: unmute is self only
    await fans[2].request("stage:unmute", {"room_id": room_id})
    # A speaker cannot mute another speaker.
    assert (await fans[2].call("stage:mute", {"room_id": room_id, "user_id": "fan1"}))["error"][
        "code"
    ] == "forbidden"

    # Demote. (A staff view throttled from before the demote may still arrive after the clear:
    # wait for the one that has it.)
    host.clear("room:state")
    await host.request("stage:demote", {"room_id": room_id, "user_id": "fan1"})
    state = await host.next_event(
        "room:state", lambda s: "fan1" not in [u["id"] for u in s["speakers"]]
    )
    assert [u["id"] for u in state["speakers"]] == ["fan2"]

    # Remove + ban: rejoin refused, with this socket and with a fresh token.
    await host.request("room:remove", {"room_id": room_id, "user_id": "fan0", "ban": True})
    assert (await fans[0].next_event("room:removed"))["ban"] is True
    assert (await fans[0].call("room:join", {"room_id": room_id}))["error"]["code"] == "forbidden"
    again = await connect("fan0", "Fan 0 again")
    assert (await again.call("room:join", {"room_id": room_id}))["error"]["code"] == "forbidden"

    # End: everyone still in the room hears it; later events are `gone`.
    await host.request("room:end", {"room_id": room_id})
    for client in (host, fans[1], fans[2]):
        assert (await client.next_event("room:ended"))["room_id"] == room_id
    late = await fans[1].call("stage:request", {"room_id": room_id})
    assert late["error"]["code"] == "gone"


async def test_fans_never_see_the_queue_or_invites(connect: Connect) -> None:
    host = await connect("artist", host=True)
    fan, other = await connect("fan"), await connect("other")
    room_id = await _room(host)
    for client in (host, fan, other):
        await client.request("room:join", {"room_id": room_id})
    await other.request("stage:request", {"room_id": room_id})
    await host.request("stage:invite", {"room_id": room_id, "user_id": "fan", "role": "speaker"})
    await host.next_event("room:state", lambda s: len(s.get("invites", [])) == 1)
    # A view from between the hand and the invitation may come first: wait for the invitation.
    seen = await fan.next_event("room:state", lambda s: s["you"]["invited_as"] == "speaker")
    assert seen["request_count"] == 1
    for state in fan.events("room:state") + other.events("room:state") + [seen]:
        assert "requests" not in state and "invites" not in state


async def test_non_members_and_unknown_rooms(connect: Connect) -> None:
    host = await connect("artist", host=True)
    stranger = await connect("stranger")
    room_id = await _room(host)
    assert (await stranger.call("stage:request", {"room_id": room_id}))["error"]["code"] == (
        "forbidden"
    )
    assert (await stranger.call("room:join", {"room_id": "nope"}))["error"]["code"] == "not_found"
    fan = await connect("fan")
    assert (await fan.call("room:create", {"title": "mine"}))["error"]["code"] == "forbidden"


async def test_moderation_is_audited_before_it_is_acknowledged(
    server: RunningServer, connect: Connect
) -> None:
    host, fan, _troll, room_id = await _host_fan_troll(connect)
    await fan.request("stage:request", {"room_id": room_id})
    await host.request("stage:approve", {"room_id": room_id, "user_id": "fan"})
    await fan.request("stage:unmute", {"room_id": room_id})  # new speakers start muted
    await host.request("stage:mute", {"room_id": room_id, "user_id": "fan"})
    await host.request("room:remove", {"room_id": room_id, "user_id": "troll", "ban": True})
    # Read straight after the acks: written before they were sent.
    log = await SqlRoomStore(server.app[SESSIONS]).audit_log(room_id)
    actions = [(row.actor_id, row.action, row.target_id) for row in log]
    assert ("artist", "approve", "fan") in actions
    assert ("artist", "mute", "fan") in actions
    assert ("artist", "ban", "troll") in actions
    assert all(row.at > 0 for row in log)


async def test_admin_bans_server_wide(server: RunningServer, connect: Connect) -> None:
    host = await connect("artist", host=True)
    admin = await connect("ops", admin=True)
    troll = await connect("troll")
    room_id = await _room(host)
    await troll.request("room:join", {"room_id": room_id})
    await admin.request("room:join", {"room_id": room_id})
    denied = await host.call(
        "room:remove", {"room_id": room_id, "user_id": "troll", "ban": True, "everywhere": True}
    )
    assert denied["error"]["code"] == "forbidden"
    await admin.request(
        "room:remove", {"room_id": room_id, "user_id": "troll", "ban": True, "everywhere": True}
    )
    assert (await troll.next_event("room:removed"))["ban"] is True
    with pytest.raises(Refused, match="banned"):
        await LiveroomClient.connect(server.url, make_token("troll"))


async def test_members_report_users_to_the_moderators(
    server: RunningServer, connect: Connect
) -> None:
    host, fan, _troll, room_id = await _host_fan_troll(connect)
    await fan.request(
        "room:report", {"room_id": room_id, "user_id": "troll", "reason": "  spam   links "}
    )
    queued = await host.next_event("room:reported")  # in the staff's queue at once
    assert queued["report"]["user_id"] == "troll" and queued["report"]["reason"] == "spam links"
    assert not fan.events("room:reported")
    reports = await SqlRoomStore(server.app[SESSIONS]).reports(room_id)
    assert [(r.reporter_id, r.user_id, r.reason) for r in reports] == [
        ("fan", "troll", "spam links")
    ]
    bad = [
        {"room_id": room_id, "reason": "nobody named"},
        {"room_id": room_id, "user_id": "fan", "reason": "myself"},
        {"room_id": room_id, "user_id": "troll", "reason": "   "},
    ]
    for payload in bad:
        assert (await fan.call("room:report", payload))["error"]["code"] == "invalid"
    missing = await fan.call(
        "room:report", {"room_id": room_id, "question_id": "q1", "reason": "rude"}
    )
    assert missing["error"]["code"] == "not_found"
    outsider = await connect("outsider")
    refused = await outsider.call(
        "room:report", {"room_id": room_id, "user_id": "troll", "reason": "x"}
    )
    assert refused["error"]["code"] == "forbidden"
    assert len(await SqlRoomStore(server.app[SESSIONS]).reports(room_id)) == 1


async def test_staff_read_reports_and_the_host_exports_the_audit_log(
    server: RunningServer, connect: Connect
) -> None:
    host, fan, _troll, room_id = await _host_fan_troll(connect)
    await fan.request("room:report", {"room_id": room_id, "user_id": "troll", "reason": "=cmd"})
    await host.request("room:remove", {"room_id": room_id, "user_id": "troll", "ban": True})
    base = f"{server.url}/api/rooms/{room_id}"

    def auth(user: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user, **claims)}"}

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/reports.json", headers=auth("artist", host=True)) as r:
            assert r.status == 200
            reports = (await r.json())["reports"]
        assert [(x["reporter_id"], x["user_id"]) for x in reports] == [("fan", "troll")]
        async with http.get(f"{base}/reports.json", headers=auth("fan")) as r:
            assert r.status == 403
        async with http.get(f"{base}/audit.csv", headers=auth("artist", host=True)) as r:
            assert r.status == 200 and r.content_type == "text/csv"
            lines = (await r.text()).splitlines()
        assert lines[0] == "at,actor_id,action,target_id,detail"
        assert any(",artist,ban,troll," in line for line in lines[1:])
        async with http.get(f"{base}/reports.csv", headers=auth("artist", host=True)) as r:
            assert "'=cmd" in await r.text()  # a formula-looking reason stays text
        async with http.get(f"{base}/audit.json", headers=auth("fan")) as r:
            assert r.status == 403
        async with http.get(f"{base}/audit.json") as r:
            assert r.status == 401
