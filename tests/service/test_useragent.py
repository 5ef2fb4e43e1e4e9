"""The sessions page's user-agent reading: real headers of current browsers and tools."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck.service.pages.useragent import UNKNOWN, Device, parse_user_agent

REAL = [
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox 128",
        "Linux",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Chrome 126",
        "Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
        "Edge 126",
        "Windows",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Safari/605.1.15",
        "Safari 17",
        "macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Safari 17",
        "iOS 17",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
        "Chrome 126",
        "iOS 17",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
        "Firefox 127",
        "iOS 16",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.6478.71 Mobile Safari/537.36",
        "Chrome 126",
        "Android 14",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        "Samsung Internet 25",
        "Android 13",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
        "Opera 111",
        "Windows",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Chrome 126",
        "ChromeOS",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.6478.126 Safari/537.36",
        "Headless Chrome 126",
        "Linux",
    ),
    ("curl/8.5.0", "curl 8", UNKNOWN),
    ("python-httpx/0.27.0", "HTTPX (Python) 0", UNKNOWN),
]


@pytest.mark.parametrize(("header", "browser", "system"), REAL)
def test_real_user_agents(header: str, browser: str, system: str) -> None:
    assert parse_user_agent(header) == Device(browser, system)


@pytest.mark.parametrize("header", [None, "", "   ", "garbage", "\x00\xff"])
def test_missing_or_unrecognised_headers_are_unknown(header: str | None) -> None:
    device = parse_user_agent(header)
    assert device == Device(UNKNOWN, UNKNOWN)
    assert device.label == "Unknown device"


def test_labels() -> None:
    assert Device("Firefox 128", "Linux").label == "Firefox 128 on Linux"
    assert Device("curl 8", UNKNOWN).label == "curl 8"
    assert Device(UNKNOWN, "Android").label == "Unknown browser on Android"


def test_a_name_far_down_a_huge_header_is_not_read() -> None:
    assert parse_user_agent("x" * 10_000 + " Firefox/128.0").browser == UNKNOWN


@given(st.text(max_size=600))
def test_never_raises(header: str) -> None:
    device = parse_user_agent(header)
    assert device.browser and device.os and device.label
