"""Unique names for tests that share one broker or one database.

A test that subscribes to ``#`` on a broker another test also uses, or
writes rows a neighbour could read, takes its names from here. Topic
layout itself comes from :mod:`edge.protocol.topics`; this only makes
prefixes and device ids that never repeat.
"""

from __future__ import annotations

import uuid


def unique_prefix(stem: str = "t") -> str:
    """A topic prefix no other test uses, such as ``t-3f9c1a2b7d4e/``.

    Args:
        stem: A readable start (letters, digits, ``-``).

    Raises:
        ValueError: ``stem`` holds a character a topic level must not.

    Returns:
        ``{stem}-{12 hex digits}/``.
    """
    if not stem or any(c in stem for c in "/#+\0"):
        raise ValueError(f"expected a stem without / # + NUL, got {stem!r}")
    return f"{stem}-{uuid.uuid4().hex[:12]}/"


def unique_device(kind: str = "sim") -> str:
    """A device id no other test uses, valid for ``NodeSettings.device_id``.

    Args:
        kind: The id's readable start (lower-case letters and digits).

    Returns:
        ``{kind}-{8 hex digits}``.
    """
    return f"{kind}-{uuid.uuid4().hex[:8]}"
