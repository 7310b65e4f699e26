"""The ``baling`` command's and orchestrators' exception tree.

    BalingError
    └── BrokerError (RuntimeError)  the broker could not be started

Errors of the parts it starts stay theirs (``CentralError``, ``EdgeError``,
``ProvisioningError``); the command prints them and exits non-zero.
"""

from __future__ import annotations


class BalingError(Exception):
    """Root of every error the command and the orchestrators raise on purpose."""


__all__ = ["BalingError"]
