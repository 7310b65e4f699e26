"""The county centre: registry, policy, ingest, REST API and web consoles.

Imports :mod:`edge.protocol` for the wire contract and never a node package.
"""
