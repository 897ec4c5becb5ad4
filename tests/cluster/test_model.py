"""The cluster's pure rules: placement, claim order, lease trust, heartbeat payloads."""

from __future__ import annotations

import pytest

from liveroom.cluster.model import (
    NodeInfo,
    claim_delay_s,
    first_media_sequence,
    holder,
    lease_trusted,
    least_loaded,
    parse_holder,
    renew_every_s,
    trust_margin_s,
)


def node(node_id: str, **load: float | bool) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}", **load)  # type: ignore[arg-type]


def test_a_new_room_goes_to_the_least_loaded_node() -> None:
    nodes = [node("a", cpu=0.9, peers=200), node("b", cpu=0.1), node("c", cpu=0.5)]
    assert least_loaded(nodes, "a") == "b"
    assert least_loaded(nodes, "c") == "b"


def test_the_local_node_wins_a_near_tie() -> None:
    nodes = [node("a", sockets=1000), node("b", sockets=980), node("c", sockets=1300)]
    assert least_loaded(nodes, "a") == "a"  # 2% more loaded: not worth a hop
    assert least_loaded(nodes, "c") == "b"
    idle = [node("a"), node("b"), node("c")]
    assert [least_loaded(idle, n.id) for n in idle] == ["a", "b", "c"]


def test_draining_nodes_take_no_rooms() -> None:
    nodes = [node("a", cpu=0.9), node("b", draining=True), node("c", cpu=0.95)]
    assert least_loaded(nodes, "b") == "a"
    assert least_loaded([node("a", draining=True)], "a") == "a"  # nowhere else: stays


def test_the_least_loaded_node_claims_first() -> None:
    nodes = [node("a", cpu=0.5), node("b", cpu=0.1), node("c", cpu=0.9)]
    assert [claim_delay_s(nodes, n) for n in ("b", "a", "c")] == [0.0, 0.2, pytest.approx(0.4)]
    assert claim_delay_s(nodes, "unknown") == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("now", "trusted"), [(0.0, True), (3.49, True), (3.5, False), (10.0, False)]
)
def test_an_owner_stops_trusting_its_lease_before_it_could_lapse(now: float, trusted: bool) -> None:
    assert lease_trusted(renewed_at_s=0.0, now_s=now, ttl_s=5.0, margin_s=1.5) is trusted


@pytest.mark.parametrize(
    ("ttl", "margin", "renew_every"), [(5.0, 1.5, 1.0), (3.0, 0.9, 1.0), (1.5, 0.45, 0.5)]
)
def test_a_shorter_lease_is_renewed_more_often_and_trusted_as_long_a_share(
    ttl: float, margin: float, renew_every: float
) -> None:
    assert trust_margin_s(ttl) == pytest.approx(margin)
    assert renew_every_s(ttl) == pytest.approx(renew_every)
    assert renew_every < ttl - margin  # renewed while still trusted, with time to spare


@pytest.mark.parametrize(("token", "first"), [(1, 0), (2, 1_000_000_000), (7, 6_000_000_000)])
def test_each_owner_of_a_room_numbers_its_hls_past_the_ones_before(token: int, first: int) -> None:
    assert first_media_sequence(token) == first


def test_heartbeats_and_holders_round_trip() -> None:
    info = NodeInfo("n1", "http://10.0.0.1:8080", 3, 1200, 40, 0.25, False, 123)
    assert NodeInfo.from_json(info.to_json()) == info
    assert parse_holder(holder("node:with:colons", 42)) == ("node:with:colons", 42)
    assert parse_holder(b"n1:7") == ("n1", 7)
    assert parse_holder(None) is None
    assert parse_holder("garbage") is None
