"""The signal cabinet's exception tree.

    EdgeError
    └── SignalError                 root of what the cabinet raises on purpose
        ├── FrameError (ValueError)          a controller frame that cannot be decoded
        ├── JunctionFileError (ValueError)   a junction file the cabinet cannot use
        ├── PlanRefusedError (ValueError)    a plan the cabinet refuses, with the reason
        └── GeometryError (ValueError)       geometry no intergreen can be derived from

The runtime's own errors (the link, the outbox, settings) are ``edge.errors``'.
"""

from __future__ import annotations

from edge.errors import EdgeError


class SignalError(EdgeError):
    """Root of every error the cabinet agent raises on purpose."""


__all__ = ["SignalError"]
