"""Tokens: what verifies, and every way a token is refused."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from liveroom.auth import Grants, Identity, TokenService, accept_language_region
from liveroom.errors import Invalid, Unauthorized
from tests.conftest import TEST_SECRET
from tests.fakes import FakeClock


@pytest.fixture
def tokens(fake_clock: FakeClock) -> TokenService:
    return TokenService(TEST_SECRET, fake_clock, guest_ttl_s=3600)


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_operator_token_round_trips_every_claim(tokens: TokenService) -> None:
    ident = Identity("artist-1", "Artist", True, "KR", Grants(host=True, admin=False))
    assert tokens.verify(tokens.issue(ident, 60)) == ident


def test_guest_token_is_a_fan_with_nothing_else(tokens: TokenService) -> None:
    token, ident = tokens.issue_guest("  Mina   Kim ")
    verified = tokens.verify(token)
    assert verified == ident
    assert verified.name == "Mina Kim"
    assert verified.guest and verified.user_id.startswith("g_")
    assert verified.grants == Grants() and not verified.verified and verified.market is None


def test_guest_identity_cannot_be_issued_with_grants(tokens: TokenService) -> None:
    with pytest.raises(Invalid):
        tokens.issue(Identity("g_1", "x", grants=Grants(host=True), guest=True), 60)


def test_signed_guest_token_claiming_host_is_refused(tokens: TokenService) -> None:
    claims = {"sub": "g_1", "name": "x", "exp": 2**40, "guest": True, "grants": {"host": True}}
    with pytest.raises(Unauthorized, match="guest"):
        tokens.verify(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


async def test_expired_token_is_refused(tokens: TokenService, fake_clock: FakeClock) -> None:
    token = tokens.issue(Identity("u1", "U"), 60)
    tokens.verify(token)
    await fake_clock.advance(61)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not.a.jwt", "invalid token"),
        (jwt.encode({"sub": "u", "name": "n", "exp": 2**40}, "another-key" * 4), "signature"),
        (jwt.encode({"sub": "u", "name": "n", "exp": 2**40}, TEST_SECRET, "HS512"), "alg"),
        (jwt.encode({"name": "n", "exp": 2**40}, TEST_SECRET), "sub"),
        (jwt.encode({"sub": "u", "name": "n"}, TEST_SECRET), "exp"),
        (jwt.encode({"sub": "u", "name": "", "exp": 2**40}, TEST_SECRET), "name"),
        (
            jwt.encode({"sub": "u", "name": "n", "exp": 2**40, "market": "Korea"}, TEST_SECRET),
            "market",
        ),
        (
            jwt.encode(
                {"sub": "u", "name": "n", "exp": 2**40, "grants": {"host": "yes"}}, TEST_SECRET
            ),
            "grants",
        ),
    ],
    ids=[
        "none",
        "empty",
        "garbage",
        "wrong-key",
        "hs512",
        "no-sub",
        "no-exp",
        "empty-name",
        "bad-market",
        "grant-not-bool",
    ],
)
def test_bad_tokens_are_refused_with_a_reason(
    tokens: TokenService, token: str | None, reason: str
) -> None:
    with pytest.raises(Unauthorized) as refused:
        tokens.verify(token)
    assert reason in refused.value.message.lower()


def test_alg_none_is_refused(tokens: TokenService) -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'u', 'name': 'n', 'exp': 2**40, 'grants': {'admin': True}})}."  # noqa: E501
    with pytest.raises(Unauthorized):
        tokens.verify(unsigned)


def test_forged_payload_fails_the_signature(tokens: TokenService) -> None:
    header, _, signature = tokens.issue(Identity("fan", "Fan"), 60).split(".")
    forged = _b64({"sub": "fan", "name": "Fan", "exp": 2**40, "grants": {"admin": True}})
    with pytest.raises(Unauthorized, match=r"(?i)signature"):
        tokens.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("name", ["", "   ", "x" * 51, "bad\x00name"])
def test_guest_names_are_checked(tokens: TokenService, name: str) -> None:
    with pytest.raises(Invalid):
        tokens.issue_guest(name)


def test_operator_ids_may_not_pose_as_guests(tokens: TokenService) -> None:
    with pytest.raises(Invalid):
        tokens.issue(Identity("g_123", "x"), 60)


@pytest.mark.parametrize(
    ("header", "region"),
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8", "KR"),
        ("en,fr-FR;q=0.5", "FR"),  # the first tag has no region: the best one that does
        ("en-US;q=0.2,pt-BR;q=0.9", "BR"),  # by quality, not order
        ("zh-Hant-TW", "TW"),  # a script subtag before the region
        ("es-419", None),  # a UN M.49 area, not a market
        ("en", None),
        ("", None),
        (None, None),
        ("de-DE;q=0", None),  # q=0: not acceptable
        ("xx-YY;q=abc", None),
        ("a-" + "b" * 5000, None),  # bounded work
    ],
)
def test_a_browsers_language_names_a_market(header: str | None, region: str | None) -> None:
    assert accept_language_region(header) == region
