"""A headless Debian Chromium, logged in to the live server: shared by the browser tests."""

from __future__ import annotations

import os

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def open_browser(pw, live_server, username: str, password: str = "pw-for-browser"):
    """``(browser, page)``: a 1400x1000 page with a 30 s default timeout, signed in as ``username``."""
    browser = pw.chromium.launch(
        executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    return browser, page
