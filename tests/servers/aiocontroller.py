"""The lifetime of an in-process aiosmtpd server (smtpd.AioSmtpd, externalsmtpd's
ExternalSmtpd): its Controller serves in a thread from `start()` until `stop()`."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from .managed import ManagedServer


class ControlledSmtpd(ManagedServer):
    """A server built around an aiosmtpd Controller; a subclass hands it over last."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._running = False

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        """Stop listening and close open connections; idempotent."""
        if self._running:
            self._running = False
            self._controller.stop()
