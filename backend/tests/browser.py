"""Headless Chromium for the page tests (/playground, /docs, the OAuth sign-in page): Debian's
`chromium` and `chromium-driver`, installed here when missing, driven by selenium. Under
CI=true a failed install fails the tests; locally they are skipped with the reason."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _chromium_installed() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def _install_chromium() -> str | None:
    """Installs Debian's chromium and chromium-driver; returns why it could not, or None."""
    if _chromium_installed():
        return None
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "installing chromium needs root"
    # One install for all the xdist workers; apt waits for dpkg's lock rather than failing.
    lock_path = Path(tempfile.gettempdir()) / "todochat-chromium-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _chromium_installed():
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", "DPkg::Lock::Timeout=300"]
        for command in (
            ["apt-get", *wait, "update", "-qq"],
            ["apt-get", *wait, "install", "-y", "-qq", "chromium", "chromium-driver"],
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                return f"{' '.join(command)} failed: {done.stderr.strip()[-400:]}"
    return None if _chromium_installed() else "apt-get ran, but chromium is still missing"


@pytest.fixture(scope="session")
def chromium() -> None:
    problem = _install_chromium()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Chromium is required in CI: {problem}")
    pytest.skip(f"Chromium unavailable ({problem})")


@pytest.fixture(scope="module")
def browser(chromium: None) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def console(driver: WebDriver) -> list[str]:
    """The browser console's messages since the last call."""
    return [str(entry["message"]) for entry in driver.get_log("browser")]


def csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
