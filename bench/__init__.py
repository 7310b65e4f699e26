"""Benchmarks; each prints the figures its issue asks for, last line key=value."""
