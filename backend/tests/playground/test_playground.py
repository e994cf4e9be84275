"""/playground and /docs in a real browser: Debian's Chromium driven by selenium, against the real
app served by uvicorn on 127.0.0.1, on both engines. A person signs up, adds a task by chat, sees
the answer stream in, the tool call and the new task, reloads and finds the conversation again;
wrong passwords, expired sessions, rate limits and a failing model get clear messages; /docs
renders its operations with nothing from another host.

Chromium comes from Debian (`chromium`, `chromium-driver`): installed here when missing. Under
CI=true a failed install fails the tests; locally they are skipped with the reason."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import console, csp_violations
from tests.conftest import make_settings, token_for
from tests.faults import free_port
from todochat.config import Settings
from todochat.main import create_app

SESSION_KEY = "todochat.playground.session"
PASSWORD = "correct horse battery staple"
WAIT_S = 30


# --- the app, served ------------------------------------------------------------------------


class Served:
    """The real app under uvicorn, in a thread of this process, on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,  # the app configured its own logging
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def served(database_url: str) -> Iterator[Served]:
    with Served(make_settings(database_url)) as running:
        yield running


@pytest.fixture(scope="module")
def strict(database_url: str) -> Iterator[Served]:
    """One chat message a day, and a model upstream that is not there. (A day: the limiter's
    sliding window counter lets a second message through just after a window's end.)"""
    settings = make_settings(
        database_url,
        rate_limit_chat="1/day",
        model_provider="openai",
        openai_api_key="sk-test-playground-not-a-key",
        openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
    )
    with Served(settings) as running:
        yield running


# --- driving the page ----------------------------------------------------------------------------


def until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT_S).until(condition)
    except TimeoutException:
        page = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"timed out waiting for {what}; the page says:\n{page}") from None


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def open_fresh(driver: WebDriver, served: Served) -> None:
    """The playground with no session of an earlier test."""
    driver.get(served.base + "/playground")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    until(driver, lambda d: by_id(d, "auth").is_displayed(), "the sign-in form")
    console(driver)


def fill_credentials(driver: WebDriver, email: str, password: str) -> None:
    for field, value in (("email", email), ("password", password)):
        by_id(driver, field).clear()
        by_id(driver, field).send_keys(value)


def notice(driver: WebDriver) -> str:
    element = by_id(driver, "notice")
    return element.text if element.is_displayed() else ""


def session(driver: WebDriver) -> dict[str, Any]:
    stored = driver.execute_script(f"return sessionStorage.getItem('{SESSION_KEY}')")
    assert stored, "no session stored"
    return dict(json.loads(stored))


# Records, in order, each tool call drawn and each change of a text in the chat.
RECORD_DRAWING = """
window.drawn = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (r.type === "characterData") window.drawn.push(["text", r.target.data]);
    for (const n of r.addedNodes) {
      if (n.nodeType === 1 && n.matches(".tool")) window.drawn.push(["tool", n.dataset.tool]);
    }
  }
}).observe(document.getElementById("messages"),
           {subtree: true, childList: true, characterData: true});
"""


def test_a_new_user_chats_a_task_into_the_list_and_finds_the_conversation_after_a_reload(
    browser: WebDriver, served: Served, tmp_path: Path
) -> None:
    driver = browser
    open_fresh(driver, served)
    email = f"playground-{uuid.uuid4().hex[:10]}@example.com"

    fill_credentials(driver, email, PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#auth-form button[value=signup]").click()
    until(driver, lambda d: by_id(d, "workspace").is_displayed(), "the workspace")
    assert by_id(driver, "who-email").text == email
    until(driver, lambda d: "No tasks yet" in by_id(d, "tasks").text, "the empty task list")

    driver.execute_script(RECORD_DRAWING)
    by_id(driver, "message").send_keys("add a task to buy milk")
    by_id(driver, "send").click()

    until(driver, lambda d: "Buy milk" in by_id(d, "tasks").text, "the new task in the list")
    reply = until(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, ".message.assistant[aria-busy=false]"),
        "the finished answer",
    )
    assert "Buy milk" in reply.find_element(By.CSS_SELECTOR, ".text").text
    tool = reply.find_element(By.CSS_SELECTOR, ".tool")
    assert tool.get_attribute("data-tool") == "add_task"
    assert tool.get_attribute("data-state") == "done"
    assert "Buy milk" in tool.find_element(By.CSS_SELECTOR, ".tool-input").text
    assert "created" in tool.find_element(By.CSS_SELECTOR, ".tool-output").text

    # Streamed: the tool call was drawn first, then the answer grew delta by delta.
    drawn = driver.execute_script("return window.drawn")
    kinds = [kind for kind, _ in drawn]
    texts = [value for kind, value in drawn if kind == "text"]
    assert kinds[0] == "tool", drawn
    assert len(texts) >= 3, drawn
    assert all(a != b and b.startswith(a) for a, b in itertools.pairwise(texts)), texts
    assert texts[-1] == reply.find_element(By.CSS_SELECTOR, ".text").text

    # What the page shows is what the API stored.
    stored = session(driver)
    user_id, token = stored["user"]["id"], stored["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=served.base, headers=headers) as api:
        body = api.get(f"/api/{user_id}/tasks").json()
        tasks = body if isinstance(body, list) else body["items"]
        assert [t["title"] for t in tasks] == ["Buy milk"]
        conversations = api.get(f"/api/{user_id}/conversations").json()
    assert len(conversations) == 1
    conversation_id = conversations[0]["id"]

    screenshot = tmp_path / "playground.png"
    assert driver.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")

    # Reload: still signed in, the conversation is listed, and reopening it shows the turn.
    driver.refresh()
    listed = f"#conversations button[data-id='{conversation_id}']"
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, listed), "the conversation listed")
    by_id(driver, "new-conversation").click()
    until(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".message"), "an empty chat")
    driver.find_element(By.CSS_SELECTOR, listed).click()
    until(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message")) == 2, "the turn")
    messages = by_id(driver, "messages")
    assert "add a task to buy milk" in messages.find_element(By.CSS_SELECTOR, ".user").text
    assert messages.find_element(By.CSS_SELECTOR, ".tool").get_attribute("data-tool") == "add_task"
    assert "Buy milk" in messages.find_element(By.CSS_SELECTOR, ".assistant .text").text
    current = driver.find_element(By.CSS_SELECTOR, listed).get_attribute("aria-current")
    assert current == "true"
    assert "Buy milk" in by_id(driver, "tasks").text

    assert console(driver) == []  # no CSP violation, no failed request, no script error


def test_the_page_explains_a_wrong_password_a_failing_model_a_rate_limit_and_an_expiry(
    browser: WebDriver, strict: Served
) -> None:
    driver = browser
    email = f"playground-{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(strict.base + "/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user"]["id"]
    open_fresh(driver, strict)

    fill_credentials(driver, email, "not the password")
    driver.find_element(By.CSS_SELECTOR, "#auth-form button[value=signin]").click()
    until(driver, lambda d: notice(d) == "Wrong email or password.", "the wrong-password notice")
    assert by_id(driver, "auth").is_displayed()

    fill_credentials(driver, email, PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#auth-form button[value=signin]").click()
    until(driver, lambda d: by_id(d, "workspace").is_displayed(), "the workspace")
    assert notice(driver) == ""

    # The model's upstream is not there: the server's friendly 503 text, before or in the stream.
    by_id(driver, "message").send_keys("add a task to call mom")
    by_id(driver, "send").click()
    until(driver, lambda d: "trouble processing your request" in notice(d), "the 503 notice")
    until(driver, lambda d: by_id(d, "send").is_enabled(), "the composer")

    # One message a day: the second is refused, says when to retry, and is kept for then.
    box = by_id(driver, "message")
    box.clear()
    box.send_keys("list my tasks")
    by_id(driver, "send").click()
    until(driver, lambda d: "faster than allowed" in notice(d), "the 429 notice")
    assert re.search(r"Please try again in \d+ (second|minute|hour)s?\.$", notice(driver))
    assert box.get_attribute("value") == "list my tasks"

    # The token expires: the next call is refused, and the page asks to sign in again.
    expired = {**session(driver), "token": token_for(user_id, ttl=-60)}
    driver.execute_script(
        "sessionStorage.setItem(arguments[0], arguments[1])", SESSION_KEY, json.dumps(expired)
    )
    driver.refresh()
    until(driver, lambda d: "session has expired" in notice(d), "the expired-session notice")
    assert by_id(driver, "auth").is_displayed()
    assert not by_id(driver, "workspace").is_displayed()
    assert by_id(driver, "email").get_attribute("value") == email

    assert csp_violations(console(driver)) == []


def test_docs_render_every_operation_with_nothing_from_another_host(
    browser: WebDriver, served: Served
) -> None:
    driver = browser
    driver.get(served.base + "/docs")
    console(driver)
    until(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) >= 10,
        "the operations",
    )
    paths = {
        e.get_attribute("data-path")
        for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    openapi = httpx.get(served.base + "/openapi.json").json()
    assert paths == set(openapi["paths"])
    assert "/api/{user_id}/tasks" in paths
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert loaded, "no resource loaded"
    assert all(url.startswith(served.base + "/") for url in loaded), loaded
    assert csp_violations(console(driver)) == []
