"""Stored results: the record and what its samples determine (statistics, FLOPs), and the JSON Lines store."""
