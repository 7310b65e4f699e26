"""Central's complaints service: the 12345 closed loop, Open311, deadlines."""
