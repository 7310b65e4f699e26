"""Central's exception tree.

    CentralError
    ├── ConfigError (ValueError)     settings that cannot be used (default secrets...)
    ├── NotFoundError (LookupError)  a device, operator or layer that does not exist
    ├── ConflictError                a write that contradicts what is stored
    ├── PolicyError (ValueError)     a layer that makes some device's config invalid
    ├── InvalidError (ValueError)    a value in a request that central refuses (422)
    └── AuthError                    bad credentials or a role that may not act

The API answers 422 for ``PolicyError``, ``InvalidError`` and
``PayloadError`` only: any other ``ValueError`` that escapes a route is a
programming error and answers 500 (it is logged with its traceback).

Wire-contract violations are ``edge.protocol.PayloadError`` and never escape the
ingest worker: they are logged, counted and acknowledged.
"""

from __future__ import annotations


class CentralError(Exception):
    """Root of every error central raises on purpose."""


class ConfigError(CentralError, ValueError):
    """Settings that cannot be used."""


class NotFoundError(CentralError, LookupError):
    """The thing asked for does not exist."""


class ConflictError(CentralError):
    """A write that contradicts what is already stored."""


class PolicyError(CentralError, ValueError):
    """A policy layer that would give some device an invalid configuration."""


class InvalidError(CentralError, ValueError):
    """A value in a request that central cannot use (unknown kind, bad version, ...)."""


class AuthError(CentralError):
    """Bad credentials, or a role that may not do this."""
