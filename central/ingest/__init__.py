"""Ingest: events from the broker (and the phone endpoint) into the database.

Triage of one message (:mod:`.triage`, pure) and the worker that collects,
stores and acknowledges (:mod:`.worker`).
"""
