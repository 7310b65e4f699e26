"""The ANPR camera node: capture, plate detection and recognition, evidence."""
