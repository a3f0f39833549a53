"""`sgi report serve`: the report's pages served live from the run's snapshot (Starlette + uvicorn).

Each request renders from the newest snapshot, so a running run can be watched; nothing
here opens the run's own store (see `source.py`). Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import mimetypes

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from sgi.reports.pages import CSP, NotFound, Site, assets
from sgi.skills.runs import StoreError

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP}


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str) -> list[str]:
    """The Host headers a request may carry: the bound address's names. A page fetched through
    another name (a DNS-rebinding site that points its own name at 127.0.0.1) is refused;
    bound to every interface, the user has chosen to serve any name."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return list(LOOPBACK) if host in LOOPBACK else [host]


def create_app(site: Site, host: str = "127.0.0.1") -> Starlette:
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

    return Starlette(routes=[Route("/", page), Route("/assets/{name}", asset), Route("/{name}", page)],
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host))])


def serve(site: Site, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    uvicorn.run(create_app(site, host), host=host, port=port, log_level="warning")
