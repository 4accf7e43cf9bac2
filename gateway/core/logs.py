"""JSON log lines, one object per line, each carrying the request id of the request it is about."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from gateway.core.request_context import current_request_id

# color_message is uvicorn's ANSI-coloured duplicate of message.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class HideCallbackQueries(logging.Filter):
    """uvicorn's access line names the full path: for an OAuth callback its query holds the
    authorization code and state, so the line keeps the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and args[2].startswith("/oauth/"):
            record.args = (args[0], args[1], args[2].partition("?")[0], args[3], args[4])
        return True


class HideMediaTokens(logging.Filter):
    """A media URL (/media/{id}/{token}/{filename}) is a capability: whoever reads the access log
    could fetch the file. The line keeps the id and masks the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and args[2].startswith("/media/"):
            parts = args[2].split("/")
            if len(parts) >= 4:
                parts[3] = "…"
            record.args = (args[0], args[1], "/".join(parts), args[3], args[4])
        return True


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is when the record is written (as logging's own
    last-resort handler does), not to the stream it was at configuration: a process that swaps
    its stderr (a test capturing it, a daemon redirecting it) never logs into a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr


def configure_logging(level: str = "INFO") -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route its lines through ours so every line is JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # httpx logs every request's full URL at INFO, and some platforms' documented token calls
    # (Meta's fb_exchange_token, Instagram's ig_refresh_token) carry the client secret or a
    # token in the query string: only its warnings may reach our logs.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    for kind in (HideCallbackQueries, HideMediaTokens):
        if not any(isinstance(f, kind) for f in access.filters):
            access.addFilter(kind())
