"""Digest content to text and HTML with Jinja2 (no browser, no screenshots).

The HTML is what mail clients render reliably: nested tables for layout, inline
CSS, no scripts, no web fonts, no external images (charts are ``cid:`` parts; the
web preview swaps them for ``data:`` URIs).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifications.channels.base import InlineImage, Message
from notifications.content import DigestContent

METRIC_NAMES = {"happiness": "Happiness", "lost_time": "Lost time", "volume": "Response volume", "sla_met": "SLA met"}
UNITS = {"happiness": "pts", "lost_time": "min", "volume": "/week"}


def metric_name(metric: str) -> str:
    if metric.startswith("factor:"):
        return f"\u201c{metric.removeprefix('factor:')}\u201d"
    return METRIC_NAMES.get(metric, metric)


def number(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """A figure as people read it; a typographic minus; n/a for missing values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    return text.replace("-", "\u2212")


def finding_title(metric: str, before: float, after: float, delta: float) -> str:
    """One sentence saying what changed, in the metric's own terms."""
    moved = "rose" if delta > 0 else "fell"
    if metric == "happiness":
        return f"Happiness {moved} {number(abs(delta))} points, {number(before, signed=True)} \u2192 {number(after, signed=True)}"
    if metric.startswith("factor:"):
        return f"{metric_name(metric)} cited by {number(after)}% of respondents, up from {number(before)}%"
    relative = delta / before * 100 if before else float("nan")
    unit = "minutes" if metric == "lost_time" else "responses a week"
    return f"{metric_name(metric)} {moved} {number(abs(relative), 0)}%, {number(before)} \u2192 {number(after)} {unit}"


def subject(content: DigestContent) -> str:
    week = content.period.split("-W")[-1]
    if content.quiet:
        return f"[mspmon] {content.subscription}, week {week}: all quiet"
    parts = []
    if content.new or content.more_new:
        count = len(content.new) + len(content.more_new)
        parts.append(f"{count} new finding{'s' if count != 1 else ''}")
    if content.recovered:
        parts.append(f"{len(content.recovered)} recovered")
    if content.ongoing:
        parts.append(f"{len(content.ongoing)} still open")
    if content.health:
        parts.append("data health warning")
    off_track = [t.name for t in content.transitions if not t.on_track]
    if off_track:
        parts.append(f"{', '.join(off_track)} off track")
    return f"[mspmon] {content.subscription}, week {week}: {', '.join(parts)}"


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = number
    environment.filters["metric_name"] = metric_name
    environment.globals["finding_title"] = finding_title
    environment.globals["UNITS"] = UNITS
    return environment


_ENVIRONMENT = _environment()


def cid_source(image: InlineImage) -> str:
    return f"cid:{image.cid}"


def data_uri_source(image: InlineImage) -> str:
    """For browsers (the web preview and the .html files), which do not resolve cid:."""
    return "data:image/png;base64," + base64.b64encode(image.png).decode()


def render_text(content: DigestContent) -> str:
    return _ENVIRONMENT.get_template("digest.txt").render(d=content, subject=subject(content))


def render_html(content: DigestContent, image_source: Callable[[InlineImage], str] = cid_source) -> str:
    return _ENVIRONMENT.get_template("digest.html").render(d=content, subject=subject(content), src=image_source)


def render_message(content: DigestContent) -> Message:
    return Message(
        subject=subject(content),
        text=render_text(content),
        html=render_html(content),
        images=content.images,
        message_key=f"digest-{content.subscription_id}-{content.period}",
    )
