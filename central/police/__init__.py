"""Central's police service: SOS, beats and alarms, dispatch, reports.

Pure cores (``geo``, ``beat``, ``sos``, ``reports``) decide; ``service``
does the database and broker I/O around them.
"""
