"""The table of event handlers a server answers, and what a handler is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol

from liveroom.auth import Identity
from liveroom.permissions import RULES, Role, Rule, Scope, Standing
from liveroom.ratelimit import DEFAULT_RATE_LIMITS
from liveroom.signaling.payloads import P, Payload

Ack = dict[str, Any]
"""What a handler returns: the ack's fields besides ``ok``."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom an event concerns, as the permission check needs it."""

    actor: Standing
    target: Standing | None = None
    is_self: bool = False
    granted_role: Role | None = None


@dataclass(frozen=True, slots=True)
class EventContext:
    sid: str
    identity: Identity
    subject: Subject
    remote: str | None = None
    region: str | None = None


class Resolver(Protocol):
    """Finds the actor's (and any target's) standing for events of one :class:`Scope`."""

    async def __call__(self, identity: Identity, payload: Payload) -> Subject: ...


async def server_scope(identity: Identity, payload: Payload) -> Subject:
    """Events that concern no room: the token's grants are all that matters."""
    return Subject(Standing(host_grant=identity.grants.host, admin=identity.grants.admin))


@dataclass(frozen=True, slots=True)
class Handler(Generic[P]):
    rule: Rule
    payload: type[P]
    run: Callable[[EventContext, P], Awaitable[Ack]]
    limit: str | None = None
    """The rate limit charged per user and per IP once the event is authorized."""


@dataclass
class EventRegistry:
    """Events by name, and the resolver of each scope. Features add theirs at start-up."""

    handlers: dict[str, Handler[Any]] = field(default_factory=dict)
    resolvers: dict[Scope, Resolver] = field(default_factory=lambda: {Scope.SERVER: server_scope})

    def add(
        self,
        event: str,
        payload: type[P],
        run: Callable[[EventContext, P], Awaitable[Ack]],
        rule: Rule | None = None,
        *,
        limit: str | None = None,
    ) -> None:
        """Answer ``event``: parse into ``payload``, authorize by ``rule`` (default: the
        permission table's row), charge the rate limit ``limit`` (see
        :meth:`RateLimits.charge`), then ``run``."""
        rule = rule or RULES.get(event)
        if rule is None:
            raise ValueError(f"{event!r} has no row in the permission table")
        if event in self.handlers:
            raise ValueError(f"{event!r} already has a handler")
        if rule.scope not in self.resolvers:
            # Without a resolver the actor's standing is unknown: refuse at start-up, not at run.
            raise ValueError(f"{event!r}: register a resolver for {rule.scope} first")
        if limit is not None and limit not in DEFAULT_RATE_LIMITS:
            raise ValueError(f"{event!r}: no rate limit named {limit!r}")
        self.handlers[event] = Handler(rule, payload, run, limit)

    def resolve_with(self, scope: Scope, resolver: Resolver) -> None:
        self.resolvers[scope] = resolver
