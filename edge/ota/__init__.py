"""Over-the-air updates on the node: verified download, A/B slots, deltas."""
