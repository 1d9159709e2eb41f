"""Measuring a step: the harness, its timers and ranges, CUDA-graph replay, telemetry, fresh processes, and the
environment read while a run's settings are in force. The only package (with model.py) that runs torch work."""
