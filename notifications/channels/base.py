"""The channel interface: one rendered message, one recipient, success or a classified error.

Kept deliberately small (compare Redash's eight-argument ``notify``): a channel gets
everything it may show in one ``Message`` and says, by raising ``DeliveryError``,
whether trying again later could help. Retries, backoff and the record of every
attempt live in ``notifications.outbox``, once for all channels.
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from config import Settings


def single_line_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be a one-line name (it goes into subjects and headers), or None.

    Control characters (CR, LF, tab, NUL ...) and Unicode line or paragraph
    separators are refused where names are made (web form, command line);
    ``build_email`` also flattens header values, for names stored before this check.
    """
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return f"{what} must be one line without control characters; it contains {ch!r}"
    return None


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
