"""Not built yet: see the open issue for this capability.

Nothing here pretends to work.
"""
