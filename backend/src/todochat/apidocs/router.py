"""/docs: Swagger UI with its script, stylesheet and icon served by the app, so that it works with
no internet and its Content-Security-Policy names no other host (decision D39)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

# fastapi-offline ships a current Swagger UI 5 (OpenAPI 3.1, which FastAPI writes); only its files
# are used, not its app factory.
_ASSET_PACKAGE = "fastapi_offline"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
_SCRIPT_OPEN, _SCRIPT_CLOSE = "<script>", "</script>"


def _inline_script_hashes(html: str) -> list[str]:
    """CSP source expressions for the page's inline scripts (Swagger UI's start-up call), so
    that script-src needs no 'unsafe-inline'."""
    hashes = []
    start = html.find(_SCRIPT_OPEN)
    while start != -1:
        end = html.find(_SCRIPT_CLOSE, start)
        body = html[start + len(_SCRIPT_OPEN) : end].encode()
        hashes.append("'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'")
        start = html.find(_SCRIPT_OPEN, end)
    return hashes


def docs_csp(html: str) -> str:
    # Swagger UI (React) sets style attributes, hence 'unsafe-inline' for styles only.
    return (
        "default-src 'none'; script-src 'self' "
        + " ".join(_inline_script_hashes(html))
        + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def docs_router(*, title: str, openapi_url: str) -> APIRouter:
    """The /docs page and its assets, read once from the installed package."""
    files = resources.files(_ASSET_PACKAGE).joinpath("static")
    assets = {name: files.joinpath(name).read_bytes() for name in _ASSETS}
    router = APIRouter(prefix="/docs", include_in_schema=False)

    @router.get("")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/favicon.png",
        )
        html = bytes(page.body).decode()
        page.headers["content-security-policy"] = docs_csp(html)
        return page

    for name, media_type in _ASSETS.items():
        router.add_api_route(f"/{name}", _file(assets[name], media_type), methods=["GET"])
    return router


def _file(content: bytes, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        return Response(content, media_type=media_type)

    return serve
