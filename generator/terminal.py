"""Colour for the CLI's human-facing reports (drift reports, `msctl watch`), by convention.

Colour only when the stream is a terminal, never when `NO_COLOR` is set (https://no-color.org)
or `TERM=dumb`; `FORCE_COLOR` turns it on for pipes that end in a terminal anyway (CI logs).
Machine output (`render` manifests) never goes through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}


def wants_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


@dataclass(frozen=True)
class Style:
    color: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        return cls(wants_color(stream))

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{_CODES[code]}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap("bold", text)

    def dim(self, text: str) -> str:
        return self._wrap("dim", text)

    def red(self, text: str) -> str:
        return self._wrap("red", text)

    def green(self, text: str) -> str:
        return self._wrap("green", text)

    def yellow(self, text: str) -> str:
        return self._wrap("yellow", text)
