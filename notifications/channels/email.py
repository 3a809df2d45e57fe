"""Email over SMTP with the standard library: host, port, STARTTLS or SSL, optional login.

Exactly once, as far as SMTP allows: an error before the message's data was
transmitted is temporary or permanent (by the reply code; no reply: temporary),
so a retry cannot cause a duplicate. Once the data was transmitted, only the
server's final reply says whether it took the message; when that reply is lost
(the connection dropped or stalled), the server may hold the message and the
delivery is *uncertain*: never retried automatically, reported instead.

The message is ``multipart/alternative``: a plain-text part, then a
``multipart/related`` holding the HTML and its charts, which the HTML references
as ``cid:`` (no external resources, so nothing is blocked or tracked).
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from config import Settings
from notifications.channels.base import Channel, DeliveryError, Message


def header_text(value: str) -> str:
    """A header value on one line: control and line-separator characters become spaces.

    A CR or LF in a header either splits it (header injection) or makes the
    standard library refuse the whole message; neither may come from a
    subscription's name or any other text that ends up in a header.
    """
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value)
    return " ".join(cleaned.split())


def build_email(message: Message, recipient: str, sender: str) -> EmailMessage:
    """The MIME message one recipient receives (also what ``digest preview`` writes as .eml)."""
    email = EmailMessage()
    email["Subject"] = header_text(message.subject)
    email["From"] = header_text(sender)
    email["To"] = header_text(recipient)
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


def _classified(code: int, text: bytes | str, stage: str) -> DeliveryError:
    """4xx replies are worth retrying; 5xx are not (RFC 5321 section 4.2.1).

    An explicit reply is authoritative at every stage, after the data too: a
    server that answers 4xx or 5xx to the message has not taken it.
    """
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    return DeliveryError(f"SMTP {code} {detail} (at {stage})".strip(), temporary=400 <= code < 500)


class _Tracking:
    """Remembers the last SMTP command sent, and whether the message data went out.

    ``stage`` is the lower-case command (ehlo, mail, rcpt, data, ...), "connect"
    before the first one and "message" from the server's 354 (go ahead) on: from
    then on the server may hold the message whatever happens next.
    """

    stage = "connect"

    def putcmd(self, cmd: str, args: str = "") -> None:
        verb = cmd.split()[0].lower() if cmd.strip() else ""
        if verb and verb not in ("rset", "noop"):  # smtplib's cleanup after a refusal is not a stage
            self.stage = verb
        super().putcmd(cmd, args)  # type: ignore[misc]

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()  # type: ignore[misc]
        if self.stage == "data" and code == 354:
            self.stage = "message"
        return code, text


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTPSSL(_Tracking, smtplib.SMTP_SSL):
    pass


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

    def send(self, message: Message, recipient: str) -> None:
        email = build_email(message, recipient, self.sender)
        # Created unconnected, so that the stage is known even if connecting fails.
        client: _SMTP = (
            _SMTPSSL(timeout=self.timeout, context=ssl.create_default_context())
            if self.security == "ssl"
            else _SMTP(timeout=self.timeout)
        )
        try:
            code, greeting = client.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, greeting)
            if self.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
            client.send_message(email, from_addr=self.sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (550, b"recipient refused"))
            raise _classified(code, text, "rcpt") from exc
        except smtplib.SMTPResponseException as exc:
            raise _classified(exc.smtp_code, exc.smtp_error, client.stage) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"SMTP server does not support it: {exc}", temporary=False) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, disconnected
            detail = f"{type(exc).__name__}: {exc} (at {client.stage})"
            if client.stage == "message":
                raise DeliveryError(
                    f"{detail}: the message was transmitted but the server's answer was lost; "
                    "it may have arrived, so it is not sent again",
                    temporary=False,
                    uncertain=True,
                ) from exc
            raise DeliveryError(detail, temporary=True) from exc
        else:
            # Accepted: a failing QUIT changes nothing (the context manager would raise).
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
        finally:
            client.close()
