"""Provisioning and fleet security.

The fleet CA with an optional offline root (:mod:`provisioning.ca`), which
names nodes and which names central's services may hold
(:mod:`provisioning.identity`), the mutual-TLS Mosquitto configuration and
ACL (:mod:`provisioning.brokerconf`), one-time enrolment codes
(:mod:`provisioning.codes`), the node-side enrolment (:mod:`provisioning.enroll`)
and the technician's client (:mod:`provisioning.technician`). Central's side
(issuing, revoking, ejecting) is :mod:`central.fleet.enrolment` and
:mod:`central.fleet.broker_access`.
"""
