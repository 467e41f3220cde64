"""Every service's OpenAPI page at ``/docs``, served from the package's own Swagger UI files
(the ``swagger-ui-bundle`` distribution) rather than a CDN: the pages work on a closed network.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_ASSETS", "docs_app_options", "install_docs"]

DOCS_ASSETS = "/docs-assets"


def docs_app_options() -> dict[str, Any]:
    """``FastAPI(**docs_app_options())``: FastAPI's own CDN-backed pages switched off."""
    return {"docs_url": None, "redoc_url": None}


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and its assets under :data:`DOCS_ASSETS`."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), "docs")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
