# GPU check (run on the H200 from the project root with .device/ carried): the CUDA-gated tests, then
source .device/env.sh
export LMBENCH_GIT_COMMIT=${COMMIT:-unknown}
mkdir -p "$OUT/gpu"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu/device.txt"
timeout 330 python3 -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" -rs tests/test_annotate.py tests/test_cuda_graph.py \
  tests/test_harness.py tests/test_oom.py tests/test_repeats.py tests/test_trace.py tests/test_flops.py tests/test_nsys.py \
  > "$OUT/gpu/pytest-cuda-h200.log" 2>&1; echo "pytest rc $?" >> "$OUT/gpu/pytest-cuda-h200.log"
tail -5 "$OUT/gpu/pytest-cuda-h200.log"
timeout 120 python3 -m lmbench nsys --size small --precision bf16 --ctx 128 --steps 3 --warmup 2 --trace-dir /tmp/nsysrun \
  > "$OUT/gpu/nsys.log" 2>&1; echo "nsys rc $?" | tee -a "$OUT/gpu/nsys.log"
timeout 90 python3 -m lmbench profile --size small --precision bf16 --ctx 128 --steps 3 --warmup 2 --trace-dir /tmp/profrun \
  > "$OUT/gpu/profile.log" 2>&1; echo "profile rc $?" | tee -a "$OUT/gpu/profile.log"
cp /tmp/nsysrun/*/kernels.md "$OUT/gpu/nsys-kernels.md" 2>/dev/null
cp /tmp/profrun/*/kernels.md "$OUT/gpu/profile-kernels.md" 2>/dev/null
tail -n 3 "$OUT/gpu/nsys.log" "$OUT/gpu/profile.log"
