"""From captures only: `nsys stats` CSVs and torch.profiler traces read into one kernel frame, attributed to
lmbench's ranges, and the one kernel report over either source."""
