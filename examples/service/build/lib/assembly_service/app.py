"""The FastAPI app: accept jobs in milliseconds, report their state, never block on the work."""

from __future__ import annotations

import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, MutableMapping, Optional

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as _JSONResponse
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from . import __version__, logs
from .config import Settings
from .jobs import SpecRejected, clean_finished, validate_payload
from .metrics import Metrics
from .requests import AssembleRequest, Rejected, prepare
from .store import Conflict, InvalidTransition, Job, JobState, JobStore, NotFound, open_store
from .worker import WorkerPool

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

class JSONResponse(_JSONResponse):
    """JSON as ASCII: a field name or message that echoes a request's string can hold a lone
    surrogate, which has no UTF-8 encoding (rendering it must not fail into a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


AUTH_HEADER = "X-Tasks-Auth"
#: The routes anyone may call (probes and metrics); every other route, including the OpenAPI
#: docs and paths that match no route, needs the secret unless dev mode is on.
PUBLIC_ROUTES = frozenset({"healthz", "readyz", "prometheus"})


class GuardMiddleware:
    """For every route but :data:`PUBLIC_ROUTES`: the shared secret first (401), then the body
    size (413), before any handler runs or the body is parsed. The route is found the way the
    router finds it (so a ``root_path`` or a mount under a prefix changes nothing); the secret
    is compared in constant time with each accepted one."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: List[BaseRoute]) -> None:
        self.app = app
        self.secrets = [s.encode("utf-8") for s in settings.secrets]
        self.dev_mode = settings.dev_mode
        self.limit = settings.max_body_bytes
        self.routes = routes

    def _public(self, scope: Scope) -> bool:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "name", None) in PUBLIC_ROUTES
        return False

    def _authorized(self, given: bytes) -> bool:
        ok = False
        for secret in self.secrets:  # every one compared: the time does not tell which
            ok |= hmac.compare_digest(given, secret)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._public(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if not self.dev_mode:
            if not self._authorized(headers.get(AUTH_HEADER.lower(), b"")):
                await _send_json(send, 401, {"ok": False, "error": "unauthorized",
                                             "detail": f"missing or wrong {AUTH_HEADER}"})
                return
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                await _send_json(send, 400, {"ok": False, "error": "bad Content-Length"})
                return
            if too_big:
                await _send_json(send, 413, _too_large(self.limit))
                return
        seen = 0
        refused = False  # we answered 413 ourselves; the app's own answer is dropped

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    await _send_json(send, 413, _too_large(self.limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


def _too_large(limit: int) -> Dict[str, Any]:
    return {"ok": False, "error": "request body too large", "limit_bytes": limit}


async def _send_json(send: Send, status: int, body: Dict[str, Any]) -> None:
    data = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def status_body(job: Job, include_words: bool = False) -> Dict[str, Any]:
    """The public view of a job (``GET .../status``)."""
    result = job.result
    if result is not None and not include_words:
        result = {k: v for k, v in result.items() if k != "words"}
    return {
        "ok": True,
        "episode_id": job.episode_id,
        "job_id": job.job_id,
        "status": job.state.value,
        "stage": job.stage,
        "progress": round(job.progress, 4),
        "attempts": job.attempts,
        "failures": job.failures,
        "lost_leases": job.lost_leases,
        "cancel_requested": job.cancel_requested,
        "error": job.error,
        "result": result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "next_attempt_at": job.next_attempt_at if job.state == JobState.FAILED else None,
    }


def create_app(settings: Settings, store: Optional[JobStore] = None,
               start_workers: bool = True) -> FastAPI:
    """The app; with ``start_workers`` its lifespan runs ``settings.workers`` worker threads
    and stops them (graceful, bounded) on shutdown."""
    metrics = Metrics()
    state: Dict[str, Any] = {"store": store, "pool": None, "ready": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if state["store"] is None:
            state["store"] = open_store(settings)
        settings.work_root.mkdir(parents=True, exist_ok=True)
        if settings.queue == "celery":
            from .celery_app import Dispatcher

            state["celery"] = Dispatcher(state["store"], settings, metrics)
            state["celery"].start()
        elif start_workers and settings.workers > 0:
            state["pool"] = WorkerPool(state["store"], settings, metrics)
            state["pool"].start()
        state["ready"] = True
        logs.event("tasks.service.started", version=__version__, workers=settings.workers
                   if start_workers else 0, db=settings.store_description,
                   media_root=str(settings.media_root), output_root=str(settings.output_root),
                   dev_mode=settings.dev_mode)
        try:
            yield
        finally:
            state["ready"] = False
            t0 = time.monotonic()
            if state.get("celery") is not None:
                state["celery"].stop()
            pool = state["pool"]
            if pool is not None:
                import anyio

                await anyio.to_thread.run_sync(pool.stop)
            logs.event("tasks.service.stopped",
                       duration_ms=round((time.monotonic() - t0) * 1000))

    app = FastAPI(title="podcast-assembly reference service", version=__version__,
                  lifespan=lifespan)
    # Outside dev mode /docs and /openapi.json are not public routes: they need the secret.
    app.add_middleware(GuardMiddleware, settings=settings,  # type: ignore[arg-type]
                       routes=app.router.routes)
    app.state.service = state
    app.state.metrics = metrics

    def the_store() -> JobStore:
        s = state["store"]
        assert s is not None
        return s

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the framework's own 4xx (a body that is not UTF-8, an unknown route, a wrong
        # method) in the service's shape
        return JSONResponse({"ok": False, "error": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"ok": False, "error": "malformed JSON",
                                 "errors": [{"field": "body", "message": str(e.get("msg"))}
                                            for e in errors]}, status_code=400)
        return JSONResponse({"ok": False, "error": "invalid request",
                             "errors": [{"field": _field(e.get("loc", ())),
                                         "message": str(e.get("msg"))} for e in errors]},
                            status_code=422)

    # --- internal endpoints (shared secret) ------------------------------------------------

    @app.post("/api/tasks/assemble", status_code=202)
    def assemble(req: AssembleRequest) -> JSONResponse:
        """Validates and queues an assembly; 202 with the job id in milliseconds."""
        t0 = time.monotonic()
        try:
            prepared = prepare(req, settings)
            validate_payload(prepared.payload, settings)
        except Rejected as e:
            return _rejected(422, [{"field": e.field, "message": e.message}])
        except SpecRejected as e:
            return _rejected(422, e.errors)
        try:
            created = the_store().create_or_get(prepared.episode_id, prepared.idem_key,
                                                prepared.payload, prepared.output_paths)
        except Conflict as e:
            return JSONResponse({"ok": False, "error": "conflict", "detail": str(e),
                                 "field": e.field_name, "episode_id": e.job.episode_id,
                                 "job_id": e.job.job_id, "status": e.job.state.value},
                                status_code=409)
        job = created.job
        metrics.inc("assembly_jobs_dispatched_total", new=str(created.created).lower())
        logs.event("tasks.assemble.dispatched", episode_id=job.episode_id, job_id=job.job_id,
                   attempt=job.attempts, new=created.created, status=job.state.value,
                   duration_ms=round((time.monotonic() - t0) * 1000))
        if created.created and state["pool"] is not None:
            state["pool"].wake()
        if created.created and state.get("celery") is not None:
            state["celery"].send(job.job_id)
        return JSONResponse({"ok": True, "status": job.state.value, "episode_id": job.episode_id,
                             "job_id": job.job_id, "created": created.created},
                            status_code=202)

    @app.get("/api/tasks/assemble/{episode_id}/status")
    def status(episode_id: str, job_id: Optional[str] = None,
               include_words: bool = False) -> JSONResponse:
        """The episode's newest job (or ``job_id``): status, stage, progress, attempts, error,
        result."""
        job = the_store().get(job_id) if job_id else the_store().latest_for_episode(episode_id)
        if job is None or job.episode_id != episode_id:
            return JSONResponse({"ok": False, "error": "no such job", "episode_id": episode_id},
                                status_code=404)
        return JSONResponse(status_body(job, include_words))

    def cancel_job(job: Job) -> JSONResponse:
        try:
            job = the_store().request_cancel(job.job_id)
        except InvalidTransition as e:
            return JSONResponse({"ok": False, "error": f"cannot cancel: {e}",
                                 "episode_id": e.job.episode_id, "job_id": e.job.job_id,
                                 "status": e.job.state.value}, status_code=409)
        except NotFound:
            return JSONResponse({"ok": False, "error": "no such job"}, status_code=404)
        if job.state == JobState.RUNNING and state["pool"] is not None:
            state["pool"].cancel_local(job.job_id)
        if job.state == JobState.CANCELLED:
            # cancelled while queued or waiting for a retry: no worker will clean up after it
            clean_finished(job, settings)
        status_text = "cancelled" if job.state == JobState.CANCELLED else "cancelling"
        logs.event("tasks.assemble.cancel_requested", episode_id=job.episode_id,
                   job_id=job.job_id, attempt=job.attempts, status=status_text)
        return JSONResponse({"ok": True, "status": status_text, "episode_id": job.episode_id,
                             "job_id": job.job_id}, status_code=202)

    @app.post("/api/tasks/assemble/{episode_id}/cancel", status_code=202)
    def cancel(episode_id: str) -> JSONResponse:
        """Cancels the episode's active job (its newest one if none is active): at once if
        queued, at its worker's next check if running. ``POST /api/tasks/jobs/{job_id}/cancel``
        names the job."""
        store = the_store()
        job = store.active_for_episode(episode_id) or store.latest_for_episode(episode_id)
        if job is None:
            return JSONResponse({"ok": False, "error": "no such job", "episode_id": episode_id},
                                status_code=404)
        return cancel_job(job)

    @app.post("/api/tasks/jobs/{job_id}/cancel", status_code=202)
    def cancel_by_id(job_id: str) -> JSONResponse:
        """Cancels this job."""
        job = the_store().get(job_id)
        if job is None:
            return JSONResponse({"ok": False, "error": "no such job"}, status_code=404)
        return cancel_job(job)

    @app.get("/api/tasks/jobs/{job_id}")
    def status_by_id(job_id: str, include_words: bool = False) -> JSONResponse:
        """This job's status (the same body as the episode's status)."""
        job = the_store().get(job_id)
        if job is None:
            return JSONResponse({"ok": False, "error": "no such job"}, status_code=404)
        return JSONResponse(status_body(job, include_words))

    @app.get("/api/tasks/dead")
    def dead(limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
        """The dead-letter list: jobs that failed ``max_attempts`` times (or lost their worker
        ``max_lost_leases`` times), newest first, with their last error."""
        jobs = the_store().list_dead(limit)
        return JSONResponse({"ok": True, "jobs": [
            {"episode_id": j.episode_id, "job_id": j.job_id, "attempts": j.attempts,
             "failures": j.failures, "lost_leases": j.lost_leases, "error": j.error,
             "created_at": j.created_at, "finished_at": j.finished_at} for j in jobs]})

    @app.post("/api/tasks/jobs/{job_id}/retry", status_code=202)
    def retry(job_id: str) -> JSONResponse:
        """Puts a dead or cancelled job back in the queue (attempt counters reset)."""
        try:
            job = the_store().retry(job_id)
        except NotFound:
            return JSONResponse({"ok": False, "error": "no such job"}, status_code=404)
        except InvalidTransition as e:
            return JSONResponse({"ok": False, "error": str(e), "job_id": e.job.job_id,
                                 "status": e.job.state.value}, status_code=409)
        logs.event("tasks.assemble.retried", episode_id=job.episode_id, job_id=job.job_id,
                   attempt=job.attempts)
        if state["pool"] is not None:
            state["pool"].wake()
        if state.get("celery") is not None:
            state["celery"].send(job.job_id)
        return JSONResponse({"ok": True, "status": job.state.value,
                             "episode_id": job.episode_id, "job_id": job.job_id},
                            status_code=202)

    # --- probes (no secret) ----------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> Dict[str, Any]:
        """Liveness: answered on the event loop, touches nothing that work can block."""
        return {"ok": True}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the store answers and the service is not shutting down."""
        if not state["ready"]:
            return JSONResponse({"ok": False, "error": "not ready"}, status_code=503)
        try:
            the_store().ping()
        except Exception as e:  # noqa: BLE001 - the reason goes to the log, not to callers
            logs.event("tasks.service.store_unavailable", logging.WARNING,
                       error=f"{type(e).__name__}: {e}")
            return JSONResponse({"ok": False, "error": "store unavailable"}, status_code=503)
        pool = state["pool"]
        return JSONResponse({"ok": True, "workers": pool.size if pool else 0,
                             "running": len(pool.running()) if pool else 0})

    @app.get("/metrics")
    def prometheus() -> PlainTextResponse:
        """Prometheus text format."""
        try:
            counts = the_store().counts()
        except Exception:  # noqa: BLE001 - still serve this process's metrics
            counts = None
        return PlainTextResponse(metrics.render(counts),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _rejected(status: int, errors: List[Dict[str, str]]) -> JSONResponse:
    logs.event("tasks.assemble.rejected", logging.INFO, status=status,
               fields=",".join(e["field"] for e in errors))
    return JSONResponse({"ok": False, "error": "invalid request", "errors": errors},
                        status_code=status)
