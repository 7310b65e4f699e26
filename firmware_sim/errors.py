"""The simulators' exception tree.

    SimulatorError
    ├── FontMissingError (FileNotFoundError)  the plate renderer's font is missing
    └── RefusedError                          a detector card's Modbus exception

A simulator plays hardware: what it raises on the wire side is what the
device would answer; these are for its own set-up and its Modbus replies.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulators raise on purpose."""


__all__ = ["SimulatorError"]
