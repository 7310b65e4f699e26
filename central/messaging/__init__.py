"""Messaging: central's publishing link, what a commit sends, the consoles' live stream.

The broker link for commands and desired configurations (:mod:`.link`), the
outbox of one committed batch and its sender (:mod:`.outbound`), and the
fan-out to the consoles' server-sent events (:mod:`.live`).
"""
