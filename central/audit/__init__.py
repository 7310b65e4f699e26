"""The audit trail: the hash chain (:mod:`.chain`, pure) and its storage (:mod:`.log`).

Every operator action and every command lands here; what to record is left
to the services and routes that act.
"""
