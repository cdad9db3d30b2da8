"""Log formats of the daemon (sync.logs): JSON lines and human-readable text."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync import logs

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
log = logging.getLogger("msctl.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root, msctl = logging.getLogger(), logging.getLogger("msctl")
    saved = (list(root.handlers), root.level, msctl.level)
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])
    msctl.setLevel(saved[2])


def configured(fmt: Any, level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    logs.configure(fmt, level, stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_timestamps_are_rfc3339_utc_to_the_millisecond() -> None:
    assert logs.timestamp(1_795_860_000.1234) == "2026-11-28T10:00:00.123Z"


def test_json_lines_carry_ts_level_logger_msg_and_the_extra_fields() -> None:
    stream = configured("json")
    log.info("reconciled %s", "ns/a", extra={"key": "ns/a", "duration_ms": 12.5})
    [line] = json_lines(stream)
    assert RFC3339_UTC.fullmatch(line.pop("ts"))
    assert line == {
        "level": "info",
        "logger": "msctl.test",
        "msg": "reconciled ns/a",
        "key": "ns/a",
        "duration_ms": 12.5,
    }


def test_json_keeps_an_exception_in_one_field_on_one_line() -> None:
    stream = configured("json")
    try:
        1 / 0  # noqa: B018 - raising is the point
    except ZeroDivisionError:
        log.exception("reconcile failed", extra={"reason": "bug"})
    assert len(stream.getvalue().splitlines()) == 1
    [line] = json_lines(stream)
    assert line["level"] == "error"
    assert line["reason"] == "bug"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith("ZeroDivisionError: division by zero")


def test_json_writes_fields_that_are_not_json_as_strings() -> None:
    stream = configured("json")
    log.warning("odd", extra={"path": Path("/tmp/x"), "error": KeyError("k")})
    [line] = json_lines(stream)
    assert (line["path"], line["error"]) == ("/tmp/x", "'k'")


def test_extra_fields_cannot_overwrite_the_standard_ones() -> None:
    stream = configured("json")
    log.info("hello", extra={"level": "fake", "logger": "fake", "ts": "fake"})
    [line] = json_lines(stream)
    assert (line["level"], line["logger"]) == ("info", "msctl.test")
    assert RFC3339_UTC.fullmatch(line["ts"])


def test_text_is_one_readable_line_with_extras_as_key_value_pairs() -> None:
    stream = configured("text")
    log.info("deleted pod", extra={"key": "ns/a", "reason": "two words", "duration_ms": 3})
    text = stream.getvalue()
    assert re.fullmatch(
        r"\S+Z INFO +msctl\.test: deleted pod key=ns/a reason=\"two words\" duration_ms=3\n", text
    )


def test_text_prints_the_traceback_below_the_line() -> None:
    stream = configured("text")
    try:
        raise RuntimeError("nope")
    except RuntimeError:
        log.exception("failed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR   msctl.test: failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: nope"


def test_the_level_filters_records_and_accepts_any_case() -> None:
    stream = configured("json", "WARNING")
    log.info("hidden")
    logging.getLogger("sync.cache").info("hidden too")
    log.warning("shown")
    assert [line["msg"] for line in json_lines(stream)] == ["shown"]


def test_debug_level_lets_msctl_debug_records_through() -> None:
    stream = configured("text", "debug")
    log.debug("details")
    assert "DEBUG   msctl.test: details" in stream.getvalue()


def test_configuring_again_replaces_the_handler_and_keeps_others() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first = configured("text")
    second = configured("json")
    log.info("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1
    assert other in logging.getLogger().handlers
    logging.getLogger().removeHandler(other)


@pytest.mark.parametrize(("fmt", "level"), [("json", "verbose"), ("yaml", "info")], ids=str)
def test_unknown_levels_and_formats_are_refused(fmt: Any, level: str) -> None:
    with pytest.raises(ValueError, match="unknown log"):
        logs.configure(fmt, level)
