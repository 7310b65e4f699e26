"""诱导: travel times, incidents and what drivers are told.

Pure cores: :mod:`central.guidance.reid` (keyed plate hashes and the
matching of reads between two cameras), :mod:`central.guidance.traveltime`
(robust per-minute travel times, loop estimates, fusion) and
:mod:`central.guidance.incident` (comparative incident detection on loops
and on travel times). :mod:`central.guidance.service` is the shell that
feeds them from ingest and keeps their results; the API is
:mod:`central.api.guidance`.
"""
