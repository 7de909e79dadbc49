"""The Face Login web app: a login page on the browser's camera, the profile page, a small JSON API.

Routes:
    GET  /                                  to the profile when logged in, else to the login page
    GET  /login                             the camera login page (nothing starts before Start)
    POST /login/challenge                   a one-time liveness challenge: {"id", "actions", ...}
    POST /login                             {"challenge": id, "frames": [{"t": ms, "image": data URL}]}
                                            -> accepted (session cookie) or why not, in words
                                            (with FACELOGIN_LIVENESS=off: {"frames": [data URLs]})
    POST /logout                            ends the session (its record is deleted)
    GET  /profile                           the logged-in user's profile page
    GET  /users/{username}/image            a thumbnail from the store, to its owner (or the admin token)
    GET  /api/profile-image                 the logged-in user's profile image URL (JSON)
    GET  /api/users/{username}/profile-image  any user's, with the admin token (JSON)
    DELETE /api/users/{username}/sessions   ends every session of a user (admin token)
    GET  /api/status                        the bundle, users, threshold, MongoDB (admin token)
    GET  /healthz                           "ok" or "unavailable", nothing else

Every POST and DELETE takes JSON only (415 otherwise) and, from a browser, only from this site's own
pages (Origin / Sec-Fetch-Site, 403 otherwise); the session cookie is SameSite=Strict. Clients that
have not logged in are told decisions and what to do, never a distance, threshold or count.
Blocking work (pymongo, boto3) runs in Starlette's thread pool; face decisions in `pool.Deciders`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facelogin import audit, login
from facelogin.adapters import connect
from facelogin.adapters.catalog import Catalog, failure_message
from facelogin.adapters.connect import open_store
from facelogin.adapters.mongo import CHECK_TIMEOUT_MS, mongo_client
from facelogin.adapters.stores import MissingObject, ObjectStore, StoreError
from facelogin.login.burst import MOST_FRAMES
from facelogin.login.challenge import ChallengeRefused, ChallengeStore, draw_actions
from facelogin.profile import ProfileImage, profile_image
from facelogin.settings import Settings
from facelogin.web import sessions
from facelogin.web.engine import BadFrames, Engine, FrameLimits, NoBundle, image_bytes, message_for
from facelogin.web.limits import LoginLimiter
from facelogin.web.pool import Busy, Deciders

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
RECENT_LOGINS = 5
LIVENESS_OFF = (
    "FACELOGIN_LIVENESS=off: a photo of an enrolled person logs in as them; set it to `challenge` "
    "(the default) to ask for a blink or a head turn"
)
BURST_BODY_LIMIT = 16_000_000  # bytes: a 4 s burst of 640x480 JPEGs is 1-3 MB
SMALL_BODY_LIMIT = 4096  # bytes: a challenge request, a logout
DEEPEST_JSON = 8  # nesting a login body ever needs; deeper is refused before parsing
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_BRACKETS = re.compile(r"[\[\]{}]")
COOKIE_FLAGS: dict[str, Any] = {"path": "/", "httponly": True, "samesite": "strict"}


@dataclass
class Site:
    """Everything the routes share, built once by `create_app`."""

    settings: Settings
    engine: Engine
    deciders: Deciders
    catalog: Catalog
    session_store: sessions.SessionStore
    store: ObjectStore
    key: bytes
    limiter: LoginLimiter
    limits: FrameLimits
    templates: Jinja2Templates
    clock: Callable[[], float]
    challenges: ChallengeStore

    @property
    def liveness(self) -> bool:
        return self.settings.liveness == "challenge"

    def session(self, request: Request) -> sessions.Session | None:
        """The request's live session: a signed cookie whose record is in MongoDB (blocking)."""
        return self.session_store.get(sessions.unsign(request.cookies.get(sessions.COOKIE), self.key))

    def is_admin(self, request: Request) -> bool:
        token = self.settings.admin_token.get_secret_value() if self.settings.admin_token else ""
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        # Bytes, so a header with non-ASCII characters is a wrong token, not a TypeError.
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())


def create_app(
    settings: Settings,
    bundle: str | None = None,
    *,
    clock: Callable[[], float] = time.time,
    check_seconds: float = 2.0,
    challenge_actions: Callable[[], tuple[str, ...]] | None = None,
    workers: int | None = None,
) -> Starlette:
    """The app for `settings`, which must name a MongoDB (`facelogin web` starts the embedded one).

    `bundle` is where the login reads the encodings (default: where the sync publishes them on this
    machine, settings.bundle_dir); it is looked at again for a new version every `check_seconds`.
    `challenge_actions` replaces the random draw of each challenge's actions: for tests that play a
    recorded clip, set from Python only (`facelogin web` never passes it; no setting reaches it).
    `workers`: decision processes (default FACELOGIN_WEB_WORKERS, else one per core; 0: in this one).
    """
    uri = settings.mongodb()
    if not uri:
        raise ValueError("no MongoDB URI: `facelogin web` starts the embedded server and sets it")
    if settings.web_agree > settings.web_frames:
        raise ValueError(
            f"FACELOGIN_WEB_AGREE ({settings.web_agree}) is more than FACELOGIN_WEB_FRAMES "
            f"({settings.web_frames}): no login could ever be accepted"
        )
    where = connect.where(settings)["catalog"]
    options = login.LoginOptions(frames=settings.web_frames, agree=settings.web_agree)
    engine = Engine(bundle or str(settings.bundle_dir), settings.login_cache_dir, options, check_seconds)
    db = mongo_client(uri, CHECK_TIMEOUT_MS)[settings.database]
    catalog = Catalog(db, where=where)
    site = Site(
        settings=settings,
        engine=engine,
        deciders=Deciders(
            engine, settings.decision_workers() if workers is None else workers, settings.web_queue
        ),
        catalog=catalog,
        session_store=sessions.SessionStore(
            catalog.sessions, settings.session_idle_minutes * 60, settings.session_minutes * 60, clock
        ),
        store=open_store(settings),
        key=sessions.session_key(
            settings.session_secret.get_secret_value() if settings.session_secret else None,
            settings.web_secret_file,
        ),
        limiter=LoginLimiter(time.monotonic),
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
        site.deciders.start()
        try:
            await run_in_threadpool(site.catalog.ensure_login_indexes)
            await run_in_threadpool(site.session_store.ensure_indexes)
        except PyMongoError as exc:
            log.warning("%s", failure_message(exc, where))
        try:
            yield
        finally:
            site.deciders.stop()

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
        Route(
            "/api/users/{username}/sessions",
            _threaded(api_end_sessions, site),
            methods=["DELETE"],
            name="api_end_sessions",
        ),
        Route("/api/status", _threaded(api_status, site), name="api_status"),
        Route("/healthz", _threaded(healthz, site), name="healthz"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def on_catalog_error(request: Request, exc: Exception) -> Response:
        message = failure_message(exc, where)
        log.warning("%s %s: %s", request.method, request.url.path, message)
        if _wants_json(request):
            return JSONResponse({"error": "The database is unreachable: try again later."}, status_code=503)
        return site.templates.TemplateResponse(
            request,
            "error.html",
            {"title": "Database unreachable", "message": "The database is unreachable: try again later."},
            status_code=503,
        )

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(CrossSiteGuard, public_origin=settings.public_origin),
        ],
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
    return path.startswith("/api/") or path == "/healthz" or request.method != "GET"


def client_address(request: Request) -> str:
    """The TCP peer, or the address a trusted proxy gave (Uvicorn applies FACELOGIN_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


class CrossSiteGuard:
    """State-changing requests: JSON only (415), and from a browser only from this site's pages (403).

    A browser names the page a request comes from in Origin (every POST) and Sec-Fetch-Site; a request
    with neither is not from a browser (curl, a script), which a cross-site page cannot make.

    Plain ASGI, as is SecurityHeaders: Starlette's BaseHTTPMiddleware costs a task group and a stream
    per request, which two hundred logins arriving at once (a full queue's 503s) would wait behind.
    """

    def __init__(self, app: ASGIApp, public_origin: str | None = None) -> None:
        self.app = app
        self.public_origin = public_origin.rstrip("/") if public_origin else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = Headers(scope=scope)
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = scope["method"] != "DELETE" or headers.get("content-length", "0") not in {"", "0"}
            refusal = None
            if has_body and kind != "application/json":
                refusal = JSONResponse({"error": "send JSON (Content-Type: application/json)"}, 415)
            elif not self._same_site(scope, headers):
                refusal = JSONResponse({"error": "requests from other sites are refused"}, 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _same_site(self, scope: Scope, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            own = self.public_origin or f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
            return origin.rstrip("/").lower() == own.lower()
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site in {"same-origin", "none"}
        return True


class SecurityHeaders:
    """No framing, no sniffing, no referrer (a presigned URL must not leak), scripts from us only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        static = path == "/static" or path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                images = headers.get("x-image-origin", "")
                if "x-image-origin" in headers:
                    del headers["x-image-origin"]
                headers.setdefault(
                    "Content-Security-Policy",
                    f"default-src 'self'; img-src 'self' {images}".rstrip()
                    + "; media-src 'self' blob: mediastream:; script-src 'self'; style-src 'self'; "
                    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                )
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Permissions-Policy", "camera=(self)")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def home(site: Site, request: Request) -> Response:
    target = "profile" if site.session(request) else "login"
    return RedirectResponse(request.url_for(target), status_code=303)


def login_page(site: Site, request: Request) -> Response:
    status = site.engine.status()
    if not status["ready"]:
        log.warning("login page: %s", status["problem"])
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
NOT_READY = "Login is not available yet: nobody is enrolled on this server. Try again later."


def _too_many(seconds: float, what: str) -> JSONResponse:
    wait = max(1, math.ceil(seconds))
    return JSONResponse(
        {"error": f"Too many {what}: try again in {wait} s.", "retry_after": wait},
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


async def challenge_post(site: Site, request: Request) -> Response:
    """A one-time challenge for the login page (or any client) to answer with a burst of frames."""
    if not site.liveness:
        return JSONResponse({"error": "liveness is off here: post frames to /login"}, status_code=404)
    address = client_address(request)
    wait = site.limiter.address_wait(address) or site.limiter.challenge_wait(address)
    if wait > 0:
        return _too_many(wait, "login attempts from your address")
    try:
        await _read_capped(request, SMALL_BODY_LIMIT)
        await run_in_threadpool(site.engine.authenticator)
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except NoBundle as exc:
        log.warning("challenge: %s", exc)
        return JSONResponse({"error": NOT_READY}, status_code=503)
    challenge = site.challenges.issue()
    return JSONResponse(challenge.public(site.clock()))


async def login_post(site: Site, request: Request) -> Response:
    address = client_address(request)
    wait = site.limiter.address_wait(address)
    if wait > 0:
        return _too_many(wait, "failed logins from your address")
    try:
        site.deciders.take()  # before the body is read: a full queue answers at once
    except Busy as exc:
        return JSONResponse(
            {
                "error": f"The server is busy: try again in {exc.retry_after} s.",
                "retry_after": exc.retry_after,
            },
            status_code=503,
            headers={"Retry-After": str(exc.retry_after)},
        )
    try:
        result = await _decide(site, request)
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    except NoBundle as exc:
        log.warning("login: %s", exc)
        return JSONResponse({"error": NOT_READY}, status_code=503)
    finally:
        site.deciders.give_back()
    accepted = result["decision"] == audit.ACCEPTED
    if accepted:
        wait = site.limiter.account_wait(address, result["user"])
        if wait > 0:  # this face is being tried from many places: slow them all down
            result = {**result, "decision": "rejected", "user": None, "reason": "account back-off"}
            accepted = False
    if accepted:
        site.limiter.succeeded(address, result["user"])
    else:
        site.limiter.failed(address, result.get("nearest"))
    now = site.clock()
    event = audit.login_event(result, audit.WEB, address, datetime.fromtimestamp(now, UTC))
    try:
        login_id = await run_in_threadpool(site.catalog.record_login, event)
    except PyMongoError as exc:
        if accepted:  # no session that the profile page could not show, and no login left unrecorded
            raise
        log.warning("login not recorded: %s", failure_message(exc, site.catalog.where))
    if result.get("reason") == "account back-off":
        return _too_many(
            site.limiter.account_wait(address, str(event.get("user") or "")) or 30, "failed logins"
        )
    answer = public_answer(result)
    if not accepted:
        return JSONResponse(answer, status_code=403)
    if not site.liveness:
        log.warning("%s logged in without a liveness check: %s", result["user"], LIVENESS_OFF)
    # A new session id at every login; the one this browser had, if any, ends.
    previous = sessions.unsign(request.cookies.get(sessions.COOKIE), site.key)
    session_id = await run_in_threadpool(site.session_store.create, result["user"], login_id, address)
    if previous:
        await run_in_threadpool(site.session_store.end, previous)
    response = JSONResponse({**answer, "redirect": str(request.url_for("profile"))})
    response.set_cookie(
        sessions.COOKIE,
        sessions.sign(session_id, site.key),
        max_age=site.settings.session_minutes * 60,
        secure=request.url.scheme == "https",
        **COOKIE_FLAGS,
    )
    return response


async def _decide(site: Site, request: Request) -> dict[str, Any]:
    """Read and check the body, then have the deciders decide on its frames."""
    limit = (
        BURST_BODY_LIMIT if site.liveness else site.limits.most * (site.limits.max_bytes * 4 // 3 + 64) + 1024
    )
    sent = await _parse(_json_object, await _read_capped(request, limit))
    if not site.liveness:
        jpegs = await _parse(_frame_list, sent.get("frames"), site.limits)
        result = await site.deciders.frames(jpegs, site.limits.agree, site.limits.max_pixels)
        result["liveness"] = {"mode": "off"}
        return result
    try:
        challenge = site.challenges.take(sent.get("challenge"))
    except ChallengeRefused as exc:
        return {
            "decision": "rejected",
            "user": None,
            "reason": "challenge",
            "liveness": {"mode": "challenge", "passed": False, "check": "challenge", "detail": exc.reason},
        }
    jpegs, times = await _parse(_burst_frames, sent.get("frames"), site.limits)
    window = site.clock() - challenge.issued
    return await site.deciders.burst(challenge.actions, jpegs, times, window, site.limits.max_pixels)


_PARSERS = 2  # bodies parsed at once, off the event loop


async def _parse(function: Callable[..., Any], *args: Any) -> Any:
    """Parse a login body in a thread, at most _PARSERS at a time: JSON and base64 of megabyte bodies
    hold the GIL, and forty of them at once would starve the event loop, which must keep answering
    (a full queue's 503 above all)."""
    global _parsing
    if _parsing is None:
        _parsing = anyio.CapacityLimiter(_PARSERS)
    return await anyio.to_thread.run_sync(function, *args, limiter=_parsing)


_parsing: anyio.CapacityLimiter | None = None


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object: bad UTF-8, bad JSON, too deep or not an object is a 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFrames("the request body is not UTF-8 text") from None
    depth = 0
    for char in _BRACKETS.findall(text):  # the parser recurses: refuse silly nesting before it runs
        depth += 1 if char in "[{" else -1  # out of stack (a bracket inside a string only overcounts)
        if depth > DEEPEST_JSON:
            raise BadFrames("the request body is nested too deeply")
    try:
        sent = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise BadFrames("the request body is not JSON") from None
    if not isinstance(sent, dict):
        raise BadFrames('send a JSON object: {"challenge": id, "frames": [...]}')
    return sent


def _frame_list(sent: Any, limits: FrameLimits) -> list[bytes]:
    if not isinstance(sent, list) or not all(isinstance(f, str) for f in sent):
        raise BadFrames('send {"frames": [...]}: a list of images as data URLs')
    if len(sent) > limits.most:
        raise BadFrames(f"too many frames: {len(sent)}, at most {limits.most} per request", 413)
    if len(sent) < limits.agree:
        raise BadFrames(f"too few frames: {len(sent)}, at least {limits.agree} (frames that must agree)")
    return [image_bytes(text, i, limits) for i, text in enumerate(sent)]


def _burst_frames(sent: Any, limits: FrameLimits) -> tuple[list[bytes], list[float]]:
    """A liveness burst: `[{"t": capture time in ms, "image": data URL}, ...]` -> JPEG bytes and seconds."""
    if not isinstance(sent, list) or not all(isinstance(f, dict) for f in sent):
        raise BadFrames('send {"challenge": id, "frames": [{"t": ms, "image": data URL}, ...]}')
    if len(sent) > MOST_FRAMES:
        raise BadFrames(f"too many frames: {len(sent)}, at most {MOST_FRAMES} per login", 413)
    jpegs, times = [], []
    for index, frame in enumerate(sent):
        t, text = frame.get("t"), frame.get("image")
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
            raise BadFrames(f"frame {index + 1} has no capture time (t, in ms)")
        if not isinstance(text, str):
            raise BadFrames(f"frame {index + 1} has no image")
        jpegs.append(image_bytes(text, index, limits))
        times.append(float(t) / 1000.0)
    return jpegs, times


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
    """End the session: its record goes, so the cookie opens nothing even if it was copied."""
    try:
        await _read_capped(request, SMALL_BODY_LIMIT)
    except BadFrames as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    session_id = sessions.unsign(request.cookies.get(sessions.COOKIE), site.key)
    await run_in_threadpool(site.session_store.end, session_id)
    response = JSONResponse({"redirect": str(request.url_for("login")) + "?notice=logged-out"})
    response.delete_cookie(sessions.COOKIE, **COOKIE_FLAGS)
    return response


def _to_login(request: Request, notice: str | None = None) -> Response:
    url = str(request.url_for("login")) + (f"?notice={notice}" if notice else "")
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.delete_cookie(sessions.COOKIE, **COOKIE_FLAGS)
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
            "time": datetime.fromtimestamp(session.created, UTC), "source": audit.WEB, "client": None
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
    """For a load balancer: "ok" or "unavailable", nothing an attacker could use (details: /api/status)."""
    ready = bool(site.engine.status()["ready"])
    try:
        site.catalog.db.client.admin.command("ping")
    except PyMongoError:
        ready = False
    return PlainTextResponse("ok" if ready else "unavailable", status_code=200 if ready else 503)


def api_status(site: Site, request: Request) -> Response:
    """The bundle in use, the users, the threshold and MongoDB: for the admin token only."""
    if not site.is_admin(request):
        return JSONResponse({"error": "send the admin token"}, status_code=401)
    bundle = site.engine.status()
    try:
        site.catalog.db.client.admin.command("ping")
        catalog: dict[str, Any] = {"ok": True, "where": site.catalog.where}
    except PyMongoError as exc:
        catalog = {"ok": False, "problem": failure_message(exc, site.catalog.where)}
    ok = bool(bundle["ready"] and catalog["ok"])
    return JSONResponse(
        {
            "ok": ok,
            "bundle": bundle,
            "catalog": catalog,
            "liveness": site.settings.liveness,
            "workers": site.deciders.workers,
        },
        status_code=200 if ok else 503,
    )


def api_end_sessions(site: Site, request: Request) -> Response:
    """End every session of a user at once (a lost phone, a leaver): admin token only."""
    if not site.is_admin(request):
        return JSONResponse({"error": "send the admin token"}, status_code=401)
    ended = site.session_store.end_user(request.path_params["username"])
    return JSONResponse({"username": request.path_params["username"], "ended": ended})


__all__ = ["Site", "create_app"]
