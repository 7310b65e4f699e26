"""Ingest: events into the database, one way in, and devices' presence.

Triage of one MQTT message (:mod:`.triage`, pure), the event sink every
transport hands its envelopes to (:mod:`.sink`), presence from the broker's
states and last wills (:mod:`.presence`) and the MQTT worker that collects,
commits and acknowledges (:mod:`.worker`). Timers are not ingest's
(:mod:`central.timers`).
"""
