"""``python -m assembly_service serve|worker``: the web app (with its worker threads) or a
standalone worker process. Settings come from ``ASSEMBLY_SERVICE_*`` variables; flags win."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import List, Optional

from . import logs
from .config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        media_root=args.media_root, output_root=args.output_root, data_dir=args.data_dir,
        workers=getattr(args, "workers", None), dev_mode=True if args.dev else None)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m assembly_service")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the HTTP API (and its worker threads)"),
                       ("worker", "run worker threads only, against the same store")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--media-root", type=Path, help="ASSEMBLY_SERVICE_MEDIA_ROOT")
        p.add_argument("--output-root", type=Path, help="ASSEMBLY_SERVICE_OUTPUT_ROOT")
        p.add_argument("--data-dir", type=Path, help="ASSEMBLY_SERVICE_DATA_DIR")
        p.add_argument("--workers", type=int, help="ASSEMBLY_SERVICE_WORKERS")
        p.add_argument("--dev", action="store_true", help="dev mode: no shared secret")
        p.add_argument("--log-level", default=os.environ.get("ASSEMBLY_SERVICE_LOG_LEVEL",
                                                               "INFO"))
        p.add_argument("--log-format", choices=sorted(logs.FORMATS),
                       default=os.environ.get("ASSEMBLY_SERVICE_LOG_FORMAT") or "logfmt",
                       help="ASSEMBLY_SERVICE_LOG_FORMAT: logfmt (default) or json")
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    try:
        logs.configure(args.log_level.upper(), args.log_format)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        settings = _settings(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.command == "worker":
        from .worker import run_standalone

        return run_standalone(settings)

    import uvicorn

    from .app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None,
                access_log=args.access_log, timeout_graceful_shutdown=1,
                lifespan="on")
    # Worker threads still inside a run after the bounded shutdown must not keep (or crash)
    # the interpreter's exit: their leases are already released.
    if any(t.name.startswith("assembly-worker") and t.is_alive()
           for t in threading.enumerate()):
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
