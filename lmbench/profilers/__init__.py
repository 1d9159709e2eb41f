"""Running the profilers: Nsight Systems over a bench process, torch.profiler schedules with TensorBoard traces
and scalars."""
