"""VOSpace faults as Cavern reports them: an HTTP status and a ``text/plain`` message.

cadc-rest answers every failure with a plain-text body whose first word names the VOSpace
fault (``NodeNotFound``, ``PermissionDenied``, ...). The ``vos`` client maps the status to an
exception and, for async jobs, the ``/error`` text to an errno, so both must match.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse

__all__ = ["VOSpaceFault"]

_STATUS = {
    "NotAuthenticated": 401,
    "PermissionDenied": 403,
    "NodeNotFound": 404,
    "ContainerNotFound": 404,
    "DuplicateNode": 409,
    "NodeBusy": 409,
    "InvalidURI": 400,
    "InvalidArgument": 400,
    "InvalidToken": 400,
    "TypeNotSupported": 400,
    "UnsupportedOperation": 400,
    "RequestEntityTooLarge": 413,
    "TransferFailed": 500,
    "InternalFault": 500,
}


class VOSpaceFault(Exception):
    """A refused request: ``fault`` is the VOSpace fault name, ``detail`` the human part."""

    def __init__(self, fault: str, detail: str) -> None:
        if fault not in _STATUS:
            raise ValueError(f"unknown VOSpace fault {fault!r}")
        super().__init__(f"{fault}: {detail}")
        self.fault = fault
        self.detail = detail
        self.status = _STATUS[fault]

    @property
    def text(self) -> str:
        return f"{self.fault}: {self.detail}"

    def response(self) -> PlainTextResponse:
        return PlainTextResponse(self.text + "\n", status_code=self.status)
