"""Keep tracker secrets out of every log line, Prefect's included.

A log record factory masks, at creation, every secret this process has resolved and any
credential-shaped header value, in the message and in a formatted traceback. Working at record
creation covers all loggers and handlers (console, files, Prefect's API log handler) at once.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mapping.secrets import MASK, resolved_secrets

_KEY = r"(?i)\b(authorization|x-api-key|token|password|pat)"
_SEPARATOR = r"(['\"]?\s*[:=]\s*['\"]?)(basic |bearer )?"
_CREDENTIALS = re.compile(_KEY + _SEPARATOR + r"[^\s'\",}]+")
_formatter = logging.Formatter()
_installed = False


def redact(text: str) -> str:
    for secret in sorted(resolved_secrets(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)


def install() -> None:
    """Route every new log record through `redact` (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(_formatter.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
