"""A real headless Chromium against ``mspmon serve`` (gunicorn): sign in, drill down, label.

Uses Debian's chromium (installed by ``.ci/run``) through playwright's
``executable_path``; no browser is downloaded. Screenshots of each step are saved
in the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(seeded: Flask, web_settings, tmp_path: Path) -> Iterator[str]:
    """``mspmon serve`` on the seeded database, in its own process."""
    port = free_port()
    env = {
        **os.environ,
        "MSPMON_DATABASE_URL": web_settings.database_url,
        "MSPMON_SECRET_KEY": web_settings.secret_key,
        "MSPMON_CONFIG": "",
    }
    env.pop("MSPMON_CONFIG")
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-c", "from monitor.cli.commands import main; main()", "serve", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/login", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail("server exited: " + (tmp_path / "server.log").read_text())
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_sign_in_drill_down_two_levels_and_label_a_finding(server, people, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (`apt-get install chromium`; .ci/run does it)")
    from playwright.sync_api import expect, sync_playwright

    # The test asserts what the pages do, not how fast: on a loaded 2-core machine the
    # first page after sign-in (the analysis behind it) can take longer than 5 s.
    expect.set_options(timeout=30_000)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))

        page.goto(server + "/")
        expect(page).to_have_url(re.compile(r"/login\?next=/$"))
        # Keyboard only: the email field has the focus, Tab goes on to the password.
        page.keyboard.type(people.admin)
        page.keyboard.press("Tab")
        page.keyboard.type(people.password)
        page.screenshot(path=shots / "1-login.png")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Transitions", exact=True)).to_be_visible()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
        page.screenshot(path=shots / "2-overview.png", full_page=True)

        page.get_by_role("link", name="Service desk to MSP").click()
        expect(page.get_by_role("heading", name="Service desk to MSP")).to_be_visible()
        expect(page.locator("figure.chart svg")).to_be_visible()
        page.screenshot(path=shots / "3-transition.png", full_page=True)

        page.locator("#where").locator("xpath=..").get_by_role("link", name="Finland", exact=True).click()
        expect(page.get_by_role("heading", name="country = Finland")).to_be_visible()
        page.screenshot(path=shots / "4-finland.png", full_page=True)
        page.get_by_role("link", name="SAP", exact=True).click()
        expect(page.get_by_role("heading", name="country = Finland × service = SAP")).to_be_visible()
        factors = page.locator("section[aria-labelledby=factors] tbody tr")
        expect(factors.first).to_contain_text("Lack of business knowledge")
        page.screenshot(path=shots / "5-finland-sap.png", full_page=True)

        page.locator("section[aria-labelledby=segfindings] a.rowlink").first.click()
        expect(page.get_by_role("heading", name="Label")).to_be_visible()
        page.get_by_label("Confirmed").check()
        page.get_by_label("Note").fill("SAP key users in Finland confirm it")
        page.get_by_role("button", name="Save label").click()
        expect(page.get_by_role("status").first).to_contain_text("Labelled confirmed")
        expect(page.locator("#label-h").locator("xpath=..")).to_contain_text("SAP key users in Finland confirm it")
        page.screenshot(path=shots / "6-finding-labelled.png", full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(server + "/transitions/1")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 400  # no sideways scrolling
        phone.screenshot(path=shots / "7-phone-transition.png", full_page=True)
        browser.close()
    assert problems == []
    assert len(list(shots.glob("*.png"))) == 7
