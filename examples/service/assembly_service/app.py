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
from fastapi.responses import JSONResponse, PlainTextResponse

from . import __version__, logs
from .config import Settings
from .jobs import SpecRejected, validate_payload
from .metrics import Metrics
from .requests import AssembleRequest, Rejected, prepare
from .store import Conflict, InvalidTransition, Job, JobState, JobStore, NotFound, open_store
from .worker import WorkerPool

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

AUTH_HEADER = "X-Tasks-Auth"
INTERNAL_PREFIX = "/api/"


class GuardMiddleware:
    """For ``/api/`` routes: the shared secret first (401), then the body size (413), before
    any handler runs or the body is parsed. Constant-time comparison of the secret."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.secret = (settings.auth_secret or "").encode("utf-8")
        self.dev_mode = settings.dev_mode
        self.limit = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(INTERNAL_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if not self.dev_mode:
            given = headers.get(AUTH_HEADER.lower(), b"")
            if not hmac.compare_digest(given, self.secret):
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
    app.add_middleware(GuardMiddleware, settings=settings)  # type: ignore[arg-type]
    app.state.service = state
    app.state.metrics = metrics

    def the_store() -> JobStore:
        s = state["store"]
        assert s is not None
        return s

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

    @app.post("/api/tasks/assemble/{episode_id}/cancel", status_code=202)
    def cancel(episode_id: str) -> JSONResponse:
        """Cancels the episode's active job: at once if queued, at its worker's next check if
        running."""
        job = the_store().latest_for_episode(episode_id)
        if job is None:
            return JSONResponse({"ok": False, "error": "no such job", "episode_id": episode_id},
                                status_code=404)
        try:
            job = the_store().request_cancel(job.job_id)
        except InvalidTransition as e:
            return JSONResponse({"ok": False, "error": f"cannot cancel: {e}",
                                 "episode_id": episode_id, "job_id": e.job.job_id,
                                 "status": e.job.state.value}, status_code=409)
        except NotFound:
            return JSONResponse({"ok": False, "error": "no such job"}, status_code=404)
        if job.state == JobState.RUNNING and state["pool"] is not None:
            state["pool"].cancel_local(job.job_id)
        status_text = "cancelled" if job.state == JobState.CANCELLED else "cancelling"
        logs.event("tasks.assemble.cancel_requested", episode_id=episode_id, job_id=job.job_id,
                   attempt=job.attempts, status=status_text)
        return JSONResponse({"ok": True, "status": status_text, "episode_id": episode_id,
                             "job_id": job.job_id}, status_code=202)

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
        except Exception as e:  # noqa: BLE001
            return JSONResponse({"ok": False, "error": f"store: {e}"}, status_code=503)
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
