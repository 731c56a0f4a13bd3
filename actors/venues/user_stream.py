"""Pushed order updates from a live venue: what a gateway with a user stream hands the venue actor.

Why a protocol of its own: the venue actor is one shell over any gateway; a gateway that can push
(Binance's user data stream) yields the domain's ``OrderUpdate`` (its ``seq`` is the actor's to
give) and ``StreamState`` whenever the stream connects or drops, so the actor can catch up by REST
on what was pushed while it was down and poll less while it is up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from actors.domain.messages import OrderUpdate
from actors.domain.model import Frozen
from config.models import UserStreamConfig


class StreamState(Frozen):
    """The stream connected (``opened`` times so far, this one included: 2+ is a reconnect) or dropped."""

    connected: bool
    opened: int

    @property
    def reconnect(self) -> bool:
        return self.connected and self.opened > 1


UserStreamEvent = OrderUpdate | StreamState


@runtime_checkable
class UserStreamGateway(Protocol):
    """A gateway whose venue pushes our order updates and fills."""

    def user_updates(self, config: UserStreamConfig) -> AsyncIterator[UserStreamEvent]:
        """Updates as pushed, for ever: a dropped stream is re-opened (a ``StreamState`` each way)."""
        ...
