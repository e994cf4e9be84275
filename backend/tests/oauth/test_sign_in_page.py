"""The authorization server's sign-in and consent page in headless Chromium, against the app
served on 127.0.0.1, on both engines: a person follows an MCP client's authorization link,
sees which client asks and where they will be sent, signs in and allows (or denies), and the
browser lands on the client's redirect URI with a code that buys a working /mcp token. No CSP
violation on the way: the redirect after the form is allowed by the page's own policy."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import console, csp_violations
from tests.mcp_support import LiveServer
from tests.oauth.test_oauth_server import LIST_TOOLS, MCP_HEADERS, REDIRECT, pkce

PASSWORD = "correct horse battery staple"


def until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, 30).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what} at {driver.current_url}") from None


@pytest.fixture
def account(live: LiveServer) -> tuple[str, str]:
    email = f"signin-{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(live.base + "/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email, r.json()["user"]["id"]


def register(live: LiveServer, name: str) -> str:
    r = httpx.post(
        live.base + "/register",
        json={
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        },
    )
    assert r.status_code == 201, r.text
    client_id: str = r.json()["client_id"]
    return client_id


def authorization_url(live: LiveServer, client_id: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "browser-state",
        "resource": live.mcp_url,
    }
    return str(httpx.URL(live.base + "/authorize", params=params))


def sign_in(driver: WebDriver, email: str, password: str, button: str = "allow") -> None:
    for field, value in (("email", email), ("password", password)):
        driver.find_element(By.ID, field).clear()
        driver.find_element(By.ID, field).send_keys(value)
    driver.find_element(By.ID, button).click()


def test_a_person_signs_in_allows_and_the_client_gets_a_working_code(
    browser: WebDriver, live: LiveServer, account: tuple[str, str]
) -> None:
    email, user_id = account
    driver = browser
    name = '<script>alert("x")</script> Desktop'
    client_id = register(live, name)
    verifier, challenge = pkce()
    console(driver)
    driver.get(authorization_url(live, client_id, challenge))
    until(driver, lambda d: d.find_elements(By.ID, "allow"), "the sign-in page")
    assert driver.title == "Sign in to todochat · todochat"
    # The client's name is shown as text: what it registered never runs as markup.
    assert driver.find_element(By.ID, "client-name").text == name
    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert.text
    assert driver.find_element(By.ID, "destination").text == "127.0.0.1:33418"

    sign_in(driver, email, "not the password")
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".problem"), "the refusal")
    assert driver.find_element(By.CSS_SELECTOR, ".problem").text == "Wrong email or password."
    assert driver.find_element(By.ID, "email").get_attribute("value") == email

    sign_in(driver, email, PASSWORD)
    until(driver, lambda d: d.current_url.startswith(REDIRECT), "the client's redirect URI")
    back = httpx.URL(driver.current_url)
    assert back.params["state"] == "browser-state"
    assert csp_violations(console(driver)) == []

    r = httpx.post(
        live.base + "/token",
        data={
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "client_id": client_id,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT,
        },
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "add_task", "arguments": {"title": "Signed in by browser"}}
    assert httpx.post(live.mcp_url, json=LIST_TOOLS, headers=headers).status_code == 200
    added = httpx.post(live.mcp_url, json=call, headers=headers).json()["result"]
    assert added["structuredContent"]["status"] == "created"
    signin = httpx.post(live.base + "/api/auth/signin", json={"email": email, "password": PASSWORD})
    rest = {"Authorization": f"Bearer {signin.json()['access_token']}"}
    tasks = httpx.get(f"{live.base}/api/{user_id}/tasks", headers=rest).json()
    assert [t["title"] for t in tasks] == ["Signed in by browser"]


def test_a_person_who_denies_sends_the_client_an_error_and_no_code(
    browser: WebDriver, live: LiveServer, account: tuple[str, str]
) -> None:
    driver = browser
    client_id = register(live, "Some client")
    _, challenge = pkce()
    driver.get(authorization_url(live, client_id, challenge))
    until(driver, lambda d: d.find_elements(By.ID, "deny"), "the sign-in page")
    console(driver)
    driver.find_element(By.ID, "deny").click()  # no credentials needed to say no
    until(driver, lambda d: d.current_url.startswith(REDIRECT), "the client's redirect URI")
    back = httpx.URL(driver.current_url)
    assert back.params["error"] == "access_denied"
    assert back.params["state"] == "browser-state"
    assert "code" not in back.params
    assert csp_violations(console(driver)) == []


def test_a_broken_link_says_so(browser: WebDriver, live: LiveServer) -> None:
    driver = browser
    driver.get(live.base + "/oauth/sign-in?request=forged")
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".problem"), "the explanation")
    assert "not valid or has expired" in driver.find_element(By.CSS_SELECTOR, ".problem").text
    assert not driver.find_elements(By.TAG_NAME, "form")
