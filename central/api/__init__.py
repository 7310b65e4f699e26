"""Central's REST API: routers by resource, dependencies in :mod:`central.api.deps`."""
