"""Operators: who they are and what they may do.

Passwords and access tokens (:mod:`.auth`), sessions and refresh tokens
(:mod:`.sessions`), login back-off (:mod:`.throttle`, pure) and the role and
district matrix (:mod:`.access`). The HTTP routes that use them live in
:mod:`central.api`.
"""
