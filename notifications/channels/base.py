"""The channel interface: one rendered message, one recipient, success or a classified error.

Kept deliberately small (compare Redash's eight-argument ``notify``): a channel gets
everything it may show in one ``Message`` and says, by raising ``DeliveryError``,
whether trying again later could help. Retries, backoff and the record of every
attempt live in ``notifications.outbox``, once for all channels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from config import Settings


@dataclass(frozen=True)
class InlineImage:
    """A chart referenced from the HTML as ``cid:<cid>``."""

    cid: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class Message:
    """A rendered digest, channel-neutral: each channel takes the parts it can show."""

    subject: str
    text: str
    html: str
    images: tuple[InlineImage, ...]
    # Stable per digest: lets a receiving system recognise a repeat if one ever happens.
    message_key: str


class DeliveryError(Exception):
    """The channel could not deliver, or cannot tell whether it did.

    ``temporary``: a retry may succeed and cannot cause a duplicate (nothing was
    handed over). ``uncertain``: the message may have arrived (it was transmitted,
    then the answer was lost); it is never retried automatically, so that it can
    never arrive twice, and it is reported.
    """

    def __init__(self, message: str, *, temporary: bool, uncertain: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary and not uncertain
        self.uncertain = uncertain


class Channel(ABC):
    """One way of reaching people. Subclasses set ``kind`` and are listed in ``CHANNELS``."""

    kind: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Channel:
        """Build the channel from the validated settings (nothing is read at import)."""

    @abstractmethod
    def send(self, message: Message, recipient: str) -> None:
        """Deliver ``message`` to one recipient or raise ``DeliveryError``."""
