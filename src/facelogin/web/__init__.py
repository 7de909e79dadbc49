"""The profile page and the browser login (`facelogin web`): Starlette, Jinja2 and the login engine.

    from facelogin.web import create_app
    app = create_app(settings)   # settings naming a MongoDB; `facelogin web` runs it with Uvicorn

Never imports Prefect: the web side needs the login engine, the store and the catalog only.
"""

from facelogin.web.app import create_app

__all__ = ["create_app"]
