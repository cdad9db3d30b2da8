"""Log output of the sync daemon: human-readable text, or one JSON object per line.

Part of the daemon shell: `msctl run` calls `configure` once, before anything logs; the rest of
the daemon only uses `logging.getLogger(...)` and passes structured fields as
`extra={"key": ..., "duration_ms": ...}`, which both formats print (JSON as fields, text as
`k=v`). JSON lines are what log collectors in a cluster parse; a traceback stays inside its
record's `exc` field there instead of spilling over lines that would each become a record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

HANDLER_NAME = "msctl"
# Everything a LogRecord carries by itself; any other attribute came in through `extra`.
_STANDARD = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
    }
)


def timestamp(created: float) -> str:
    """RFC 3339 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        # default=str: a field that is not JSON (a Path, an exception) must not lose the line.
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


def _logfmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{timestamp(record.created)} {record.levelname:<7} {record.name}: "
            f"{record.getMessage()}"
        )
        fields = " ".join(f"{k}={_logfmt(v)}" for k, v in extra_fields(record).items())
        if fields:
            line += " " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def configure(format: Literal["text", "json"], level: str, *, stream: TextIO | None = None) -> None:
    """Send the root logger's records (so the `msctl` loggers' too) to `stream` (stderr).

    `level` is a level name, any case ("info", "DEBUG"). Calling it again replaces the
    handler it installed before; handlers that others installed stay.
    """
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    formatters: dict[str, logging.Formatter] = {"text": TextFormatter(), "json": JsonFormatter()}
    if format not in formatters:
        raise ValueError(f"unknown log format {format!r}: use text or json")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.name = HANDLER_NAME
    handler.setFormatter(formatters[format])
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    logging.getLogger("msctl").setLevel(number)
