"""Exceptions for the gRPC statuses Evenire answers with, one per case a caller handles."""

from __future__ import annotations

from typing import Optional

import grpc


class EvenireError(Exception):
    """Any error from the server or the connection. `code` is the gRPC status code."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.code = code


class WrongExpectedVersion(EvenireError):
    """The stream was not at the expected version; nothing was written.

    `actual_version` is the stream's version, or None when it has no events.
    """

    def __init__(self, message: str, actual_version: Optional[int]) -> None:
        super().__init__(message, grpc.StatusCode.ABORTED)
        self.actual_version = actual_version


class EventIdConflict(EvenireError):
    """An event id of the append is already committed elsewhere; nothing was written."""


class StreamNotFound(EvenireError):
    """The stream has never been written, or is deleted."""


class StreamTombstoned(EvenireError):
    """The stream is tombstoned: it can never be written again."""


class InvalidArgument(EvenireError):
    """The request broke the contract or a limit; the message names the field or limit."""


class DataLoss(EvenireError):
    """The server met a stored record that failed its checksum and refused to serve it."""


class Unauthenticated(EvenireError):
    """The call carried no credentials the server knows: no token, or a mistyped or revoked one."""


class PermissionDenied(EvenireError):
    """The credentials' role or stream types do not allow the call; the message says what was needed."""


class Unavailable(EvenireError):
    """The server is starting, stopping, or refusing writes; retry later."""


def from_rpc_error(error: grpc.RpcError) -> EvenireError:
    """The exception for a failed call."""
    code = error.code() if hasattr(error, "code") else None
    message = error.details() if hasattr(error, "details") else str(error)
    message = message or str(code)
    metadata = dict(error.trailing_metadata() or ()) if hasattr(error, "trailing_metadata") else {}
    if code == grpc.StatusCode.ABORTED:
        if metadata.get("evenire-error") == "event-id-conflict":
            return EventIdConflict(message, code)
        actual = metadata.get("evenire-actual-version")
        return WrongExpectedVersion(message, int(actual) if actual is not None else None)
    kinds = {
        grpc.StatusCode.NOT_FOUND: StreamNotFound,
        grpc.StatusCode.FAILED_PRECONDITION: StreamTombstoned,
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
        grpc.StatusCode.RESOURCE_EXHAUSTED: InvalidArgument,
        grpc.StatusCode.DATA_LOSS: DataLoss,
        grpc.StatusCode.UNAVAILABLE: Unavailable,
        grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
        grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    }
    return kinds.get(code, EvenireError)(message, code)
