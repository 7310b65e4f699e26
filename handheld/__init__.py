"""The police handheld node: GNSS, the SOS button, dispatch inbox, look-ups."""
