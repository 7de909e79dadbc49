"""The Face Login web app: a login page on the browser's camera, the profile page, a small JSON API.

Routes:
    GET  /                                  to the profile when logged in, else to the login page
    GET  /login                             the camera login page
    POST /login/challenge                   a one-time liveness challenge: {"id", "actions", ...}
    POST /login                             {"challenge": id, "frames": [{"t": ms, "image": data URL}]}
                                            -> accepted (session cookie) or why not, in words
                                            (with FACELOGIN_LIVENESS=off: {"frames": [data URLs]})
    POST /logout                            ends the session
    GET  /profile                           the logged-in user's profile page
    GET  /users/{username}/image            a thumbnail from the store, to its owner (or the admin token)
    GET  /api/profile-image                 the logged-in user's profile image URL (JSON)
    GET  /api/users/{username}/profile-image  any user's, with the admin token (JSON)
    GET  /healthz                           the bundle in use and whether MongoDB answers (JSON)

Blocking work (pymongo, boto3, dlib) runs in Starlette's thread pool: plain `def` endpoints, or
`run_in_threadpool` inside the async ones that read a request body.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from facelogin import audit, login
from facelogin.adapters.catalog import Catalog, failure_message
from facelogin.adapters.connect import open_store
from facelogin.adapters.mongo import CHECK_TIMEOUT_MS, mongo_client
from facelogin.adapters.store import MissingObject, ObjectStore, StoreError
from facelogin.login.challenge import ChallengeRefused, ChallengeStore, draw_actions
from facelogin.settings import Settings
from facelogin.web import sessions
from facelogin.web.engine import (
    BadFrames,
    Engine,
    FrameLimits,
    NoBundle,
    decode_burst,
    decode_frames,
    message_for,
)
from facelogin.web.limits import AttemptLimiter
from facelogin.web.profile import ProfileImage, profile_image

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
WINDOW = 60.0  # seconds over which FACELOGIN_WEB_ATTEMPTS are counted
RECENT_LOGINS = 5
LIVENESS_OFF = (
    "FACELOGIN_LIVENESS=off: a photo of an enrolled person logs in as them; set it to `challenge` "
    "(the default) to ask for a blink or a head turn"
)
BURST_BODY_LIMIT = 16_000_000  # bytes: a 4 s burst of 640x480 JPEGs is 1-3 MB


@dataclass
class Site:
    """Everything the routes share, built once by `create_app`."""

    settings: Settings
    engine: Engine
    catalog: Catalog
    store: ObjectStore
    key: bytes
    limiter: AttemptLimiter
    limits: FrameLimits
    templates: Jinja2Templates
    clock: Callable[[], float]
    challenges: ChallengeStore

    @property
    def liveness(self) -> bool:
        return self.settings.liveness == "challenge"

    def session(self, request: Request) -> sessions.Session | None:
        return sessions.verify(request.cookies.get(sessions.COOKIE), self.key, self.clock())

    def is_admin(self, request: Request) -> bool:
        token = self.settings.admin_token.get_secret_value() if self.settings.admin_token else ""
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def create_app(
    settings: Settings,
    bundle: str | None = None,
    *,
    clock: Callable[[], float] = time.time,
    check_seconds: float = 2.0,
    challenge_actions: Callable[[], tuple[str, ...]] | None = None,
) -> Starlette:
    """The app for `settings`, which must name a MongoDB (`facelogin web` starts the embedded one).

    `bundle` is where the login reads the encodings (default: where the sync publishes them on this
    machine, settings.bundle_dir); it is looked at again for a new version every `check_seconds`.
    `challenge_actions` replaces the random draw of each challenge's actions: for tests that play a
    recorded clip, set from Python only (`facelogin web` never passes it; no setting reaches it).
    """
    uri = settings.mongodb()
    if not uri:
        raise ValueError("no MongoDB URI: `facelogin web` starts the embedded server and sets it")
    if settings.web_agree > settings.web_frames:
        raise ValueError(
            f"FACELOGIN_WEB_AGREE ({settings.web_agree}) is more than FACELOGIN_WEB_FRAMES "
            f"({settings.web_frames}): no login could ever be accepted"
        )
    where = settings.where()["catalog"]
    options = login.LoginOptions(frames=settings.web_frames, agree=settings.web_agree)
    site = Site(
        settings=settings,
        engine=Engine(bundle or str(settings.bundle_dir), settings.login_cache_dir, options, check_seconds),
        catalog=Catalog(mongo_client(uri, CHECK_TIMEOUT_MS)[settings.database], where=where),
        store=open_store(settings),
        key=sessions.session_key(
            settings.session_secret.get_secret_value() if settings.session_secret else None,
            settings.web_secret_file,
        ),
        limiter=AttemptLimiter(settings.web_attempts, WINDOW, time.monotonic),
        limits=FrameLimits(
            settings.web_frames, settings.web_agree, settings.web_frame_bytes, settings.web_frame_pixels
        ),
        templates=Jinja2Templates(directory=HERE / "templates"),
        clock=clock,
        challenges=ChallengeStore(clock, actions=challenge_actions or draw_actions),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Load the bundle and the face model now, not on the first person's login.
        status = await run_in_threadpool(site.engine.status)
        if not status["ready"]:
            log.warning("%s", status["problem"])
        if site.liveness:
            await run_in_threadpool(site.engine.load_liveness)
        else:
            log.warning(LIVENESS_OFF)
        try:
            await run_in_threadpool(site.catalog.ensure_login_indexes)
        except PyMongoError as exc:
            log.warning("%s", failure_message(exc, where))
        yield

    routes = [
        Route("/", _threaded(home, site), name="home"),
        Route("/login", _threaded(login_page, site), methods=["GET"], name="login"),
        Route("/login", _bound(login_post, site), methods=["POST"], name="login_post"),
        Route("/login/challenge", _bound(challenge_post, site), methods=["POST"], name="login_challenge"),
        Route("/logout", _bound(logout, site), methods=["POST"], name="logout"),
        Route("/profile", _threaded(profile_page, site), name="profile"),
        Route("/users/{username}/image", _threaded(user_image, site), name="user_image"),
        Route("/api/profile-image", _threaded(api_my_image, site), name="api_my_image"),
        Route("/api/users/{username}/profile-image", _threaded(api_user_image, site), name="api_user_image"),
        Route("/healthz", _threaded(healthz, site), name="healthz"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def on_catalog_error(request: Request, exc: Exception) -> Response:
        message = failure_message(exc, where)
        log.warning("%s %s: %s", request.method, request.url.path, message)
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=503)
        return site.templates.TemplateResponse(
            request, "error.html", {"title": "Database unreachable", "message": message}, status_code=503
        )

    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={PyMongoError: on_catalog_error},
        lifespan=lifespan,
    )
    app.state.site = site
    return app


def _bound(endpoint: Callable[..., Any], site: Site) -> Callable[[Request], Any]:
    async def call(request: Request) -> Response:
        response: Response = await endpoint(site, request)
        return response

    return call


def _threaded(endpoint: Callable[[Site, Request], Response], site: Site) -> Callable[[Request], Any]:
    """A blocking endpoint (pymongo, boto3) run in the thread pool."""

    async def call(request: Request) -> Response:
        return await run_in_threadpool(endpoint, site, request)

    return call


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path == "/healthz" or request.method == "POST"


class SecurityHeaders(BaseHTTPMiddleware):
    """No framing, no sniffing, no referrer (a presigned URL must not leak), scripts from us only."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        images = response.headers.get("x-image-origin", "")
        if "x-image-origin" in response.headers:
            del response.headers["x-image-origin"]
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; img-src 'self' {images}".rstrip()
            + "; media-src 'self' blob: mediastream:; script-src 'self'; style-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(self)")
        if request.url.path != "/static" and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def home(site: Site, request: Request) -> Response:
    target = "profile" if site.session(request) else "login"
    return RedirectResponse(request.url_for(target), status_code=303)


def login_page(site: Site, request: Request) -> Response:
    status = site.engine.status()
    session = site.session(request)
    context = {
        "status": status,
        "username": session.username if session else None,
        "frames": site.limits.most,
        "liveness": site.liveness,
        "notice": _NOTICES.get(request.query_params.get("notice", "")),
    }
    return site.templates.TemplateResponse(request, "login.html", context, status_code=200)


_NOTICES = {
    "expired": "Your session has ended: log in again.",
    "gone": "Your account is no longer enrolled.",
    "logged-out": "You are logged out.",
}


async def challenge_post(site: Site, request: Request) -> Response:
    """A one-time challenge for the login page (or any client) to answer with a burst of frames."""
    if not site.liveness:
        return JSONResponse({"error": "liveness is off here: post frames to /login"}, status_code=404)
    try:
        await run_in_threadpool(site.engine.authenticator)
    except NoBundle as exc:
        return JSONResponse({"error": f"Login is not available: {exc}."}, status_code=503)
    challenge = site.challenges.issue()
    return JSONResponse(challenge.public(site.clock()))


async def login_post(site: Site, request: Request) -> Response:
    client = request.client.host if request.client else "unknown"
    wait = site.limiter.hit(client)
    if wait > 0:
        seconds = max(1, round(wait))
        return JSONResponse(
            {
                "error": f"Too many login attempts from your address: try again in {seconds} s.",
                "retry_after": seconds,
            },
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    try:
        await run_in_threadpool(site.engine.authenticator)
    except NoBundle as exc:
        return JSONResponse({"error": f"Login is not available: {exc}."}, status_code=503)
    if site.liveness:
        limit = BURST_BODY_LIMIT
    else:
        limit = site.limits.most * (site.limits.max_bytes * 4 // 3 + 64) + 1024
    try:
        body = await _read_capped(request, limit)
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    try:
        sent = json.loads(body)
        if not isinstance(sent, dict):
            raise BadFrames('send a JSON object: {"challenge": id, "frames": [...]}')
        if site.liveness:
            result = await _decide_burst(site, sent)
        else:
            height = login.LoginOptions().height
            frames = await run_in_threadpool(decode_frames, sent.get("frames"), site.limits, height)
            result = await run_in_threadpool(site.engine.decide, frames, site.limits.agree)
            result["liveness"] = {"mode": "off"}
    except json.JSONDecodeError:
        return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except NoBundle as exc:
        return JSONResponse({"error": f"Login is not available: {exc}."}, status_code=503)
    now = site.clock()
    event = audit.login_event(result, audit.WEB, client, datetime.fromtimestamp(now, UTC))
    accepted = result["decision"] == audit.ACCEPTED
    try:
        login_id = await run_in_threadpool(site.catalog.record_login, event)
    except PyMongoError as exc:
        if accepted:  # no session that the profile page could not show, and no login left unrecorded
            raise
        log.warning("login not recorded: %s", failure_message(exc, site.catalog.where))
    answer = public_answer(result)
    if not accepted:
        return JSONResponse(answer, status_code=403)
    if not site.liveness:
        log.warning("%s logged in without a liveness check: %s", result["user"], LIVENESS_OFF)
    session = sessions.Session(result["user"], login_id, now, now + site.settings.session_minutes * 60)
    response = JSONResponse({**answer, "redirect": str(request.url_for("profile"))})
    response.set_cookie(
        sessions.COOKIE,
        sessions.sign(session, site.key),
        max_age=site.settings.session_minutes * 60,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


async def _decide_burst(site: Site, sent: dict[str, Any]) -> dict[str, Any]:
    """Take the challenge the burst answers (once only), then decide on its frames."""
    try:
        challenge = site.challenges.take(sent.get("challenge"))
    except ChallengeRefused as exc:
        return {
            "decision": "rejected",
            "user": None,
            "reason": "challenge",
            "liveness": {"mode": "challenge", "passed": False, "check": "challenge", "detail": exc.reason},
        }
    pixels, times = await run_in_threadpool(decode_burst, sent.get("frames"), site.limits)
    window = site.clock() - challenge.issued
    return await run_in_threadpool(site.engine.decide_burst, challenge.actions, pixels, times, window)


def public_answer(result: dict[str, Any]) -> dict[str, Any]:
    """What a client that has not logged in is told: the decision and what to do, in words; never a
    distance, margin, threshold or count an attacker could climb."""
    live = result.get("liveness") or {}
    answer: dict[str, Any] = {
        "decision": result["decision"],
        "user": result["user"],
        "reason": result["reason"],
        "message": message_for(result),
    }
    if live.get("mode") == "challenge":
        answer["liveness"] = {
            "checked": True,
            "passed": bool(live.get("passed")),
            "check": live.get("check"),
            "seen": [a["action"] for a in live.get("actions", []) if a.get("seen")],
        }
    else:
        answer["liveness"] = {"checked": False}
    return answer


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadFrames(f"request too large: more than {limit:,} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadFrames(f"request too large: more than {limit:,} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def logout(site: Site, request: Request) -> Response:
    response = RedirectResponse(str(request.url_for("login")) + "?notice=logged-out", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax")
    return response


def _to_login(request: Request, notice: str | None = None) -> Response:
    url = str(request.url_for("login")) + (f"?notice={notice}" if notice else "")
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax")
    return response


def _image(site: Site, request: Request, doc: dict[str, Any], size: int | None) -> ProfileImage | None:
    username = doc["username"]

    def local_url(chosen: int) -> str:
        return str(request.url_for("user_image", username=username)) + f"?size={chosen}"

    return profile_image(doc, site.store, size, local_url)


def profile_page(site: Site, request: Request) -> Response:
    session = site.session(request)
    if session is None:
        notice = "expired" if sessions.COOKIE in request.cookies else None
        return _to_login(request, notice)
    doc = site.catalog.user(session.username)
    if doc is None:
        return _to_login(request, "gone")
    image = _image(site, request, doc, None)
    recent = site.catalog.accepted_logins(session.username, limit=RECENT_LOGINS)
    index = next((i for i, e in enumerate(recent) if e["id"] == session.login_id), None)
    # The previous login is the next one in the newest-first list; a query on time is the fallback
    # only, for a session older than the list (nx-27017 compares dates to the whole second).
    if index is not None and index + 1 < len(recent):
        this, earlier = recent[index], recent[index + 1 : index + 2]
    else:
        this = recent[index] if index is not None else {
            "time": datetime.fromtimestamp(session.issued, UTC), "source": audit.WEB, "client": None
        }  # fmt: skip
        earlier = site.catalog.accepted_logins(session.username, before=_as_datetime(this["time"]), limit=1)
    counts = doc.get("counts") or {}
    context = {
        "username": session.username,
        "image": image,
        "photos": counts.get("encoded", 0),
        "photos_total": counts.get("photos", 0),
        "this_login": _shown(this),
        "previous_login": _shown(earlier[0]) if earlier else None,
        "recent": [_shown(e) for e in recent],
    }
    headers = {"x-image-origin": _origin(image.url)} if image else None
    return site.templates.TemplateResponse(request, "profile.html", context, headers=headers)


def _as_datetime(value: Any) -> datetime:
    """A stored time, aware (a client without tz_aware, or nx-27017, may hand back naive UTC or text)."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _shown(event: dict[str, Any]) -> dict[str, Any]:
    when = _as_datetime(event["time"]).astimezone(UTC)
    source = event.get("source") or ""
    return {
        "time": when.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "iso": when.isoformat(timespec="seconds"),
        "source": _SOURCES.get(source, source),
        "client": event.get("client"),
        "distance": event.get("distance"),
    }


_SOURCES = {audit.PI: "at the Pi", audit.WEB: "on the web"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"http", "https"} else ""


def _size(request: Request) -> int | None:
    raw = request.query_params.get("size")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 4096:
        raise BadFrames("size must be a number of pixels")
    return int(raw)


def user_image(site: Site, request: Request) -> Response:
    """A user's thumbnail from the store, served only to that user's session (or the admin token)."""
    username = request.path_params["username"]
    session = site.session(request)
    if session is None and not site.is_admin(request):
        return JSONResponse({"error": "log in first"}, status_code=401)
    if not site.is_admin(request) and (session is None or session.username != username):
        return JSONResponse({"error": "this image belongs to another user"}, status_code=403)
    doc = site.catalog.user(username)
    try:
        image = _image(site, request, doc, _size(request)) if doc else None
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if image is None:
        return JSONResponse({"error": f"no profile image for {username}"}, status_code=404)
    try:
        data = site.store.get(image.key)
    except MissingObject:
        return JSONResponse({"error": f"{username}'s thumbnail is missing from the store"}, status_code=404)
    except (StoreError, OSError) as exc:
        return JSONResponse({"error": f"the store cannot be read: {exc}"}, status_code=503)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})


def _image_json(site: Site, request: Request, username: str) -> Response:
    doc = site.catalog.user(username)
    if doc is None:
        return JSONResponse({"error": f"no user {username!r}"}, status_code=404)
    try:
        image = _image(site, request, doc, _size(request))
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if image is None:
        return JSONResponse(
            {"error": f"{username} has no profile image (no encoded photo with thumbnails)"}, status_code=404
        )
    return JSONResponse(
        {
            "username": username,
            "size": image.size,
            "url": image.url,
            "expires_in": image.expires_in,
            "photo": image.photo,
        }
    )


def api_my_image(site: Site, request: Request) -> Response:
    session = site.session(request)
    if session is None:
        return JSONResponse({"error": "log in first"}, status_code=401)
    return _image_json(site, request, session.username)


def api_user_image(site: Site, request: Request) -> Response:
    username = request.path_params["username"]
    session = site.session(request)
    if site.is_admin(request) or (session is not None and session.username == username):
        return _image_json(site, request, username)
    if site.settings.admin_token is None and session is None:
        return JSONResponse({"error": "log in first (no admin token is configured)"}, status_code=401)
    if "authorization" not in request.headers and session is None:
        return JSONResponse({"error": "log in first, or send the admin token"}, status_code=401)
    return JSONResponse({"error": "only the admin token may read another user's image"}, status_code=403)


def healthz(site: Site, request: Request) -> Response:
    bundle = site.engine.status()
    try:
        site.catalog.db.client.admin.command("ping")
        catalog: dict[str, Any] = {"ok": True, "where": site.catalog.where}
    except PyMongoError as exc:
        catalog = {"ok": False, "problem": failure_message(exc, site.catalog.where)}
    ok = bool(bundle["ready"] and catalog["ok"])
    return JSONResponse({"ok": ok, "bundle": bundle, "catalog": catalog}, status_code=200 if ok else 503)


__all__ = ["Site", "create_app"]
