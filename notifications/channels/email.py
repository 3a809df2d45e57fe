"""Email over SMTP with the standard library: host, port, STARTTLS or SSL, optional login.

The message is ``multipart/alternative``: a plain-text part, then a
``multipart/related`` holding the HTML and its charts, which the HTML references
as ``cid:`` (no external resources, so nothing is blocked or tracked).
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from config import Settings
from notifications.channels.base import Channel, DeliveryError, Message


def build_email(message: Message, recipient: str, sender: str) -> EmailMessage:
    """The MIME message one recipient receives (also what ``digest preview`` writes as .eml)."""
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = sender
    email["To"] = recipient
    email["Date"] = formatdate(localtime=False)
    domain = sender.rpartition("@")[2] or "mspmon.invalid"
    token = hashlib.blake2b(f"{message.message_key}|{recipient}".encode(), digest_size=10).hexdigest()
    email["Message-ID"] = f"<{message.message_key}.{token}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    html_part = email.get_payload()[1]
    for image in message.images:
        html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>", filename=f"{image.cid}.png")
    return email


def _classified(code: int, text: bytes | str) -> DeliveryError:
    """4xx replies are worth retrying; 5xx are not (RFC 5321 section 4.2.1)."""
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    return DeliveryError(f"SMTP {code} {detail}".strip(), temporary=400 <= code < 500)


@dataclass(frozen=True)
class EmailChannel(Channel):
    kind = "email"

    host: str
    port: int
    security: str  # none, starttls or ssl
    username: str
    password: str
    sender: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_sender,
            timeout=settings.smtp_timeout_seconds,
        )

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        return client

    def send(self, message: Message, recipient: str) -> None:
        email = build_email(message, recipient, self.sender)
        try:
            with self._connect() as client:
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(email, from_addr=self.sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (550, b"recipient refused"))
            raise _classified(code, text) from exc
        except smtplib.SMTPResponseException as exc:
            raise _classified(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server does not support it: {exc}", temporary=False) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, disconnected
            raise DeliveryError(f"{type(exc).__name__}: {exc}", temporary=True) from exc
