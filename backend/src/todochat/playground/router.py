"""/playground: one page to try the chat in a browser, the chat's counterpart of /docs.

An HTML file, a script and a stylesheet from the package, no framework and nothing from another
host; the page calls the same public API any client does (decision D39)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import APIRouter, Response

# 'self' only, and no inline script or style: the page's one script is a file of its own.
# form-action 'none': the forms are sent by the script; without it, never as a URL query.
PLAYGROUND_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "/playground.css": ("playground.css", "text/css; charset=utf-8"),
}


def playground_router() -> APIRouter:
    """The page's three files, read once from the installed package."""
    static = resources.files("todochat.playground").joinpath("static")
    router = APIRouter(prefix="/playground", include_in_schema=False)
    for path, (name, media_type) in _FILES.items():
        content = static.joinpath(name).read_bytes()
        router.add_api_route(path, _file(content, media_type), methods=["GET"])
    return router


def _file(content: bytes, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        headers = {"content-security-policy": PLAYGROUND_CSP}
        return Response(content, media_type=media_type, headers=headers)

    return serve
