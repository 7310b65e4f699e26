"""Provisioning's exception tree (the fleet CA, codes, identities, enrolment).

    ProvisioningError
    ├── CAError (ValueError)        a CSR, certificate or key the CA refuses
    ├── IdentityError (ValueError)  a name that may not be given to an identity
    ├── CodeError (ValueError)      an enrolment code that cannot be used
    └── EnrolError (RuntimeError)   enrolment stopped; the message says what to do

Central maps these at its own boundary (its routes answer 422 or 409); the
technician's command prints them.
"""

from __future__ import annotations


class ProvisioningError(Exception):
    """Root of every error provisioning raises on purpose."""


__all__ = ["ProvisioningError"]
