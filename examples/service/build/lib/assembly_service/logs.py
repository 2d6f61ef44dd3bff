"""Structured logs: one line per event, ``key=value`` pairs (logfmt).

    ts=2025-01-01T12:00:00.123Z level=info event=tasks.assemble.done episode_id=ep-1
    job_id=3f2a... attempt=1 duration_ms=2140

Values with spaces, quotes or ``=`` are JSON-quoted, so every line splits with one regex.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Dict, Optional

LOGGER = logging.getLogger("assembly_service")
_BARE = re.compile(r"^[A-Za-z0-9_.:/+@-]+$")
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def _value(v: Any) -> str:
    if v is None:
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    s = str(v)
    if _BARE.match(s):
        return s
    out = json.dumps(s, ensure_ascii=False)
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a request: escape it, keep the line
        out = json.dumps(s, ensure_ascii=True)
    return out


class LogfmtFormatter(logging.Formatter):
    """Renders ``record.fields`` (from :func:`event`) or the message as ``msg=...``."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"
        parts = [f"ts={ts}", f"level={record.levelname.lower()}"]
        fields: Optional[Dict[str, Any]] = getattr(record, "fields", None)
        if fields:
            parts += [f"{k}={_value(v)}" for k, v in fields.items()]
        else:
            parts += [f"logger={record.name}", f"msg={_value(record.getMessage())}"]
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the shape Cloud Logging (and most log pipelines) read from a
    container's stderr: ``severity``, ``time``, ``message`` (the event name), then the event's
    fields (``episode_id``, ``job_id``, ``attempt``, ``stage``, ...) as top-level keys."""

    _SEVERITY = {"WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL",
                 "INFO": "INFO", "DEBUG": "DEBUG"}

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out: Dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "severity": self._SEVERITY.get(record.levelname, "DEFAULT"),
        }
        fields: Optional[Dict[str, Any]] = getattr(record, "fields", None)
        if fields:
            out["message"] = fields.get("event")
            out.update(fields)
        else:
            out["message"] = record.getMessage()
            out["logger"] = record.name
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        text = json.dumps(out, ensure_ascii=False, default=str)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a request: escape it
            text = json.dumps(out, ensure_ascii=True, default=str)
        return text


FORMATS = {"logfmt": LogfmtFormatter, "json": JsonFormatter}


def configure(level: str = "INFO", fmt: str = "logfmt") -> None:
    """Sends this package's and uvicorn's logs to stderr, as logfmt lines or (``fmt="json"``)
    one JSON object per line."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {sorted(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATS[fmt]())
    for name in ("assembly_service", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level)
        lg.propagate = False


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Logs one event line: ``event=<name>`` then ``fields`` in order (None values dropped)."""
    data = {"event": name}
    data.update({k: v for k, v in fields.items() if v is not None})
    LOGGER.log(level, name, extra={"fields": data})


def parse_line(line: str) -> Dict[str, str]:
    """The key/value pairs of one log line (JSON-quoted values unquoted); for tests and tools."""
    out = {}
    for k, v in _PAIR.findall(line):
        out[k] = json.loads(v) if v.startswith('"') else v
    return out
