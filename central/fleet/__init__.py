"""The fleet: devices, their desired configuration, enrolment and broker access.

The registry of devices (:mod:`.registry`), layered policy (:mod:`.policy`,
pure) and its shell that publishes desired configurations (:mod:`.twin`),
enrolment with one-time codes (:mod:`.enrolment`) and the broker's ACL and
central's service identities (:mod:`.broker_access`). Presence is kept by
:mod:`central.ingest` from the broker's state messages.
"""
