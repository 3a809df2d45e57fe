"""Channels by kind. Adding one (Slack, Teams) is one module and one line here."""

from __future__ import annotations

from config import Settings
from notifications.channels.base import Channel, DeliveryError, InlineImage, Message
from notifications.channels.email import EmailChannel

CHANNELS: dict[str, type[Channel]] = {EmailChannel.kind: EmailChannel}


def channel_for(kind: str, settings: Settings) -> Channel:
    try:
        return CHANNELS[kind].from_settings(settings)
    except KeyError:
        raise ValueError(f"unknown channel {kind!r}; known: {', '.join(sorted(CHANNELS))}") from None


__all__ = ["CHANNELS", "Channel", "DeliveryError", "InlineImage", "Message", "channel_for"]
