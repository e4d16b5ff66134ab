"""Captured program output as job logs: one record per line, level and data recovered.

``jobtrail run`` (and anything else that captures a process's output) turns each stdout or
stderr line into a log record of the job with ``log.iostream``. Plain lines get their level
from a common prefix (``ERROR:``, ``[warn]``, ``2024-05-01 12:00:00 INFO ...``,
``level=debug``); JSON lines become structured records, their ``level``/``msg``/``message``
keys honoured and every other key kept as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from time import time_ns
from typing import Any

import orjson
from opentelemetry import trace

from jobtrail.semconv import EVENT_NAME, EXCEPTION_STACKTRACE, JOB_ID, LOG_IOSTREAM

from ._encode import AttributeValue, encode_value
from ._job import Job

__all__ = ["OutputLine", "OutputRecorder", "parse_line"]

_LEVEL_WORDS = {
    "trace": "debug",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "notice": "info",
    "success": "success",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "emerg": "fatal",
}
_TIMESTAMP = (
    r"(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)"
)
#: Optional (bracketed) timestamp, then ``[LEVEL]``/``<LEVEL>``/``(LEVEL)`` or ``LEVEL``
#: followed by ``:``, whitespace or the end of the line.
_PREFIX = re.compile(
    rf"\s*(?:\[?{_TIMESTAMP}\]?\s*[|:-]?\s*)?"
    r"(?:[\[<(](?P<bracketed>[A-Za-z]+)[\]>)]|(?P<word>[A-Za-z]+)(?P<sep>:|\s|$))"
)
_LOGFMT_LEVEL = re.compile(r"(?:^|\s)(?:level|lvl)=\"?(?P<level>[A-Za-z]+)\"?(?:\s|$)")
_JSON_LEVEL_KEYS = ("level", "levelname", "severity", "lvl", "log.level")
_JSON_MESSAGE_KEYS = ("msg", "message", "event")
_JSON_STACK_KEYS = ("stack_trace", "stacktrace", "stack", "exception", "exc_info")
#: pino/bunyan numeric levels (10 trace ... 60 fatal), lowest bound first.
_NUMERIC_LEVELS = ((60, "fatal"), (50, "error"), (40, "warn"), (30, "info"), (0, "debug"))
#: Keys a line must not set: they would re-link the record or fake a lifecycle event.
_RESERVED_PREFIXES = ("job.", EVENT_NAME, LOG_IOSTREAM)


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One parsed output line."""

    level: str | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    stack_trace: str | None = None


def _level_word(word: str | None, *, strict_case: bool) -> str | None:
    if not word:
        return None
    if strict_case and not word.isupper():
        return None
    return _LEVEL_WORDS.get(word.lower())


def _text_level(line: str) -> str | None:
    match = _PREFIX.match(line)
    if match is not None:
        if match["bracketed"]:
            level = _level_word(match["bracketed"], strict_case=False)
        else:  # "Error: ..." in any case, "ERROR ..." only in capitals
            level = _level_word(match["word"], strict_case=match["sep"] != ":")
        if level is not None:
            return level
    if "=" in line:
        logfmt = _LOGFMT_LEVEL.search(line)
        if logfmt is not None:
            return _level_word(logfmt["level"], strict_case=False)
    return None


def _json_level(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return next(name for bound, name in _NUMERIC_LEVELS if value >= bound)
    if isinstance(value, str):
        return _level_word(value.strip(), strict_case=False)
    return None


def _parse_json(line: str) -> OutputLine | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    data = dict(doc)
    level = next((_json_level(data.pop(k)) for k in _JSON_LEVEL_KEYS if k in data), None)
    message = line
    for key in _JSON_MESSAGE_KEYS:
        if isinstance(data.get(key), str):
            message = data.pop(key)
            break
    stack = next((data.pop(k) for k in _JSON_STACK_KEYS if isinstance(data.get(k), str)), None)
    return OutputLine(level, message, data, stack)


def parse_line(line: str) -> OutputLine:
    """Parse one output line (without its line ending).

    Example:
        >>> parse_line("2024-05-01 12:00:00 ERROR disk full").level
        'error'
        >>> parse_line('{"level": "warn", "msg": "slow", "ms": 950}')
        OutputLine(level='warn', message='slow', data={'ms': 950}, stack_trace=None)
        >>> parse_line("copied 3 files").level is None
        True
    """
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        parsed = _parse_json(stripped)
        if parsed is not None:
            return parsed
    return OutputLine(_text_level(line), line)


class OutputRecorder:
    """Emit the lines of one output stream as log records of ``job``.

    Args:
        job: The running job the output belongs to.
        stream: ``stdout`` or ``stderr`` (``log.iostream``).
        default_level: Level of lines that name none.
    """

    def __init__(self, job: Job, stream: str, default_level: str = "info") -> None:
        """Bind the recorder to a job and a stream."""
        self._job = job
        self._rt = job._rt
        self._context = trace.set_span_in_context(job.span)  # once, not per line
        self.stream = stream
        self._default_level = default_level
        #: Lines recorded so far.
        self.lines = 0

    def record(self, raw: bytes) -> None:
        """Emit one raw line (line ending included or not); never raises."""
        with self._rt.counters.guard("output.record"):
            self._record(raw)

    def _record(self, raw: bytes) -> None:
        timestamp = time_ns()
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        parsed = parse_line(text)
        level = parsed.level or self._default_level
        if not self._rt.sends(level):
            return
        max_len = self._rt.max_data_len
        attrs: dict[str, AttributeValue] = {}
        for key, value in parsed.data.items():
            if not str(key).startswith(_RESERVED_PREFIXES):
                attrs[str(key)] = encode_value(value, max_len)
        if parsed.stack_trace is not None:
            attrs[EXCEPTION_STACKTRACE] = parsed.stack_trace
        attrs[LOG_IOSTREAM] = self.stream
        attrs[JOB_ID] = self._job.id
        self._rt.emitter.emit(
            level=level,
            body=parsed.message,
            attributes=attrs,
            context=self._context,
            timestamp=timestamp,
        )
        self.lines += 1
