"""Device simulators on the real wire, and the worlds that drive them.

Nodes never import this package: tests and ``baling up`` start simulators
as separate processes or threads at the other end of a URL or a link.
"""
