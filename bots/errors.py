"""Exceptions the framework raises, each carrying what a person needs to act on it."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and says what to do."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class WebhookError(Exception):
    """A delivery or handshake that is refused: an HTTP status and a message safe to show the sender."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body every refusal answers with."""
        error: dict[str, Any] = {"message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class GraphError(Exception):
    """The Graph API refused a call, or could not be reached; never carries the access token."""

    RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, *range(80001, 80007)})

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        type: str | None = None,
        fbtrace_id: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.type = type
        self.fbtrace_id = fbtrace_id
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """True for faults that may pass: no answer, HTTP 5xx, rate limits and transient codes."""
        if self.code in self.RETRYABLE_CODES:
            return True
        if self.code is not None:
            return False
        return self.status is None or self.status >= 500

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id={self.fbtrace_id}")
        return " ".join(parts)
