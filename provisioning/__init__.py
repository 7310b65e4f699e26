"""Provisioning and fleet security (issue 3, in progress).

Built so far: the fleet CA (:mod:`provisioning.ca`) and the mutual-TLS
Mosquitto configuration with per-node topic rights
(:mod:`provisioning.brokerconf`). Enrolment codes, signed commands, audit
and backup are still to come.
"""
