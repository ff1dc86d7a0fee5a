"""A username is unique: claimed by at most one user at a time; released, it can be claimed
again. No stream per username: the events carry a ``username:<name>`` tag, and a claim is
appended under the condition that no event with that tag came after the one it read."""

from __future__ import annotations

import eventkeep
from eventkeep import DecisionProjection, DecisionState, Query, QueryItem
from eventkeep.store import Writer

__all__ = [
    "UsernameClaimed",
    "UsernameError",
    "UsernameReleased",
    "claim_username",
    "owner_of",
    "release_username",
]


class UsernameClaimed(eventkeep.Event):
    __event_type__ = "dcb.UsernameClaimed"
    __tags__ = ("username:{username}",)
    username: str
    user_id: str


class UsernameReleased(eventkeep.Event):
    __event_type__ = "dcb.UsernameReleased"
    __tags__ = ("username:{username}",)
    username: str
    user_id: str


class UsernameError(Exception):
    """A claim or release the rules refuse."""


def owner_of(username: str) -> DecisionProjection[str | None]:
    """Who holds ``username`` now (None: nobody)."""

    def evolve(owner: str | None, event: eventkeep.Event | eventkeep.RawEvent) -> str | None:
        return event.user_id if isinstance(event, UsernameClaimed) else None

    query = Query(
        [QueryItem(types=[UsernameClaimed, UsernameReleased], tags=[f"username:{username}"])]
    )
    return DecisionProjection(query, None, evolve)


def claim_username(writer: Writer, username: str, user_id: str) -> eventkeep.AppendResult:
    def decide(state: DecisionState) -> list[eventkeep.Event]:
        if state.owner is not None:
            raise UsernameError(f"username {username!r} is taken")
        return [UsernameClaimed(username=username, user_id=user_id)]

    result = eventkeep.execute_decision(writer, decide, owner=owner_of(username))
    assert result is not None
    return result


def release_username(writer: Writer, username: str, user_id: str) -> eventkeep.AppendResult:
    def decide(state: DecisionState) -> list[eventkeep.Event]:
        if state.owner != user_id:
            raise UsernameError(f"username {username!r} is not held by {user_id!r}")
        return [UsernameReleased(username=username, user_id=user_id)]

    result = eventkeep.execute_decision(writer, decide, owner=owner_of(username))
    assert result is not None
    return result
