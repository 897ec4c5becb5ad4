"""Listener records and rankings: exact live counts per room, samples, and "most listened"."""
