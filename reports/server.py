"""`sgi report serve`: the report's pages served live from the run's snapshot (Starlette + uvicorn).

Each request renders from the newest snapshot, so a running run can be watched; nothing
here opens the run's own store (see `source.py`). Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import mimetypes

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from sgi.reports.pages import NotFound, Site, assets
from sgi.skills.runs import StoreError

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           # Pages run their own two scripts and nothing else; no request leaves for elsewhere.
           "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"}


def create_app(site: Site) -> Starlette:
    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        files = assets()
        if name not in files:
            return PlainTextResponse("no such file", status_code=404)
        return Response(files[name], media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                        headers={"X-Content-Type-Options": "nosniff"})

    def page(request: Request) -> Response:  # sync: Starlette runs it in a thread, DuckDB blocks
        try:
            return HTMLResponse(site.render(request.path_params.get("name", "index.html")), headers=HEADERS)
        except NotFound:
            return PlainTextResponse("no such page", status_code=404)
        except StoreError as err:  # e.g. a run that has not published its first snapshot yet
            return PlainTextResponse(str(err), status_code=503, headers={"Retry-After": "5"})

    return Starlette(routes=[Route("/", page), Route("/assets/{name}", asset), Route("/{name}", page)])


def serve(site: Site, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(create_app(site), host=host, port=port, log_level="warning")
