"""A small, approximate reading of a ``User-Agent`` header: browser and operating system.

Enough for a "your sessions" page to tell "Firefox 128 on Linux" from "Safari on iOS 17"; no
database of devices, no dependency. User agents lie and change (Chrome freezes most of its
string, Windows 11 still says "Windows NT 10.0"), so the answer is a hint for a person, never
something to decide on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNKNOWN = "Unknown"
MAX_LENGTH = 512  # longer headers are cut before matching; real ones are far shorter

# (pattern, name): the first match wins, so browsers that also say "Chrome" or "Safari" (Edge,
# Opera, Samsung Internet, every Chromium derivative) come before Chrome, and Chrome before
# Safari. Group 1 is the version.
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bEdg(?:e|A|iOS)?/(\d+)", "Edge"),
        (r"\bOPR/(\d+)", "Opera"),
        (r"\bOpera[/ ](\d+)", "Opera"),
        (r"\bSamsungBrowser/(\d+)", "Samsung Internet"),
        (r"\bVivaldi/(\d+)", "Vivaldi"),
        (r"\bYaBrowser/(\d+)", "Yandex Browser"),
        (r"\bFxiOS/(\d+)", "Firefox"),
        (r"\bFirefox/(\d+)", "Firefox"),
        (r"\bCriOS/(\d+)", "Chrome"),
        (r"\bHeadlessChrome/(\d+)", "Headless Chrome"),
        (r"\bChromium/(\d+)", "Chromium"),
        (r"\bChrome/(\d+)", "Chrome"),
        (r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/", "Safari"),
        (r"\bMSIE (\d+)", "Internet Explorer"),
        (r"\bTrident/.*rv:(\d+)", "Internet Explorer"),
        (r"^curl/(\d+)", "curl"),
        (r"^Wget/(\d+)", "Wget"),
        (r"^python-httpx/(\d+)", "HTTPX (Python)"),
        (r"^python-requests/(\d+)", "Requests (Python)"),
        (r"^Python-urllib/(\d+)", "urllib (Python)"),
    )
)

_OS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\b(?:iPhone|CPU) OS (\d+)", "iOS"),
        (r"\biPad\b", "iPadOS"),
        (r"\biPhone\b", "iOS"),
        (r"\bAndroid (\d+)", "Android"),
        (r"\bAndroid\b", "Android"),
        (r"\bCrOS\b", "ChromeOS"),
        (r"\bWindows Phone\b", "Windows Phone"),
        (r"\bWindows\b", "Windows"),
        (r"\bMac OS X\b", "macOS"),
        (r"\bMacintosh\b", "macOS"),
        (r"\bUbuntu\b", "Ubuntu"),
        (r"\bFedora\b", "Fedora"),
        (r"\bLinux\b|\bX11\b", "Linux"),
        (r"\bFreeBSD\b", "FreeBSD"),
    )
)


@dataclass(frozen=True, slots=True)
class Device:
    """What a user agent says about itself: ``browser`` and ``os`` as people name them
    ("Firefox 128", "Android 14"), each :data:`UNKNOWN` when the header does not say."""

    browser: str
    os: str

    @property
    def label(self) -> str:
        """One line for a listing: "Firefox 128 on Linux", or "Unknown device"."""
        if self.browser == UNKNOWN and self.os == UNKNOWN:
            return "Unknown device"
        if self.os == UNKNOWN:
            return self.browser
        if self.browser == UNKNOWN:
            return f"Unknown browser on {self.os}"
        return f"{self.browser} on {self.os}"


def parse_user_agent(header: str | None) -> Device:
    """The browser and operating system a ``User-Agent`` header names (approximate, never
    raises: an empty, missing or unrecognised header gives :data:`UNKNOWN`)."""
    text = (header or "").strip()[:MAX_LENGTH]
    return Device(_first(_BROWSERS, text), _first(_OS, text))


def _first(rules: tuple[tuple[re.Pattern[str], str], ...], text: str) -> str:
    for pattern, name in rules:
        found = pattern.search(text)
        if found:
            version = found.group(1) if found.groups() else None
            return f"{name} {version}" if version else name
    return UNKNOWN
