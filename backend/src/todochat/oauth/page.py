"""The sign-in and consent page of the authorization server: plain HTML, one stylesheet from
this origin, no script. Everything a client registered (its name, its redirect URI) is escaped."""

from __future__ import annotations

from html import escape
from importlib import resources
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

STYLESHEET_PATH = "/oauth/sign-in.css"
STYLESHEET = resources.files("todochat.oauth").joinpath("static", "sign-in.css").read_bytes()


def _csp(redirect_uri: str | None) -> str:
    # The form posts here, and the answer redirects to the client: browsers hold that redirect
    # to form-action too, so the client's origin is allowed, and nothing else.
    target = ""
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        target = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; style-src 'self'; img-src 'none'; base-uri 'none'; "
        f"form-action 'self'{target}; frame-ancestors 'none'"
    )


def _page(title: str, body: str, *, status: int, redirect_uri: str | None = None) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(title)} · todochat</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head>
<body>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>
"""
    headers = {"content-security-policy": _csp(redirect_uri), "cache-control": "no-store"}
    return HTMLResponse(html, status_code=status, headers=headers)


def sign_in_page(
    *,
    client_name: str,
    redirect_uri: str,
    signed_request: str,
    email: str = "",
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    destination = urlsplit(redirect_uri).netloc
    alert = f'<p class="problem" role="alert">{escape(problem)}</p>' if problem else ""
    body = f"""<p class="who"><strong id="client-name">{escape(client_name)}</strong> wants to
use your todo list: see, add, change and delete your tasks.</p>
<p class="where">You will be sent back to
<strong id="destination">{escape(destination)}</strong>.</p>
{alert}
<form method="post" action="/oauth/sign-in">
<input type="hidden" name="request" value="{escape(signed_request)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" maxlength="320"
 value="{escape(email)}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
 maxlength="128" required>
<div class="actions">
<button id="allow" type="submit" name="decision" value="allow">Sign in and allow</button>
<button id="deny" type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>"""
    return _page("Sign in to todochat", body, status=status, redirect_uri=redirect_uri)


def broken_link_page() -> HTMLResponse:
    body = """<p class="problem" role="alert">This sign-in link is not valid or has expired.
Go back to the app you came from and connect again.</p>"""
    return _page("This link does not work", body, status=400)
