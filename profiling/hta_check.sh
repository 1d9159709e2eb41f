# HTA against lmbench on the H200 (run from the project root with .device/ carried, after prepare.sh was given
# the [hta] wheels): profile small and 2.7B bf16 train steps, then compare HTA's kernel times with lmbench's on
# those traces and on the committed fixture. Output under $OUT/hta.
source .device/env.sh
export LMBENCH_GIT_COMMIT=${COMMIT:-unknown}
mkdir -p "$OUT/hta"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/hta/device.txt"
for size in small 2.7B; do
  timeout 200 python3 -m lmbench profile --size "$size" --precision bf16 --mode train-step --warmup 5 --steps 5 \
    --trace-dir "/tmp/hta-$size" > "$OUT/hta/profile-$size.log" 2>&1; echo "profile $size rc $?" | tee -a "$OUT/hta/profile-$size.log"
done
captures=$(for f in /tmp/hta-*/*/*.pt.trace.json*; do dirname "$f"; done | sort -u)
timeout 200 python3 benchmarks/hta_agreement.py tests/fixtures/trace-h200-tiny/*/ $captures --out "$OUT/hta/agreement.json" \
  2>&1 | tee "$OUT/hta/agreement.txt"; echo "hta_agreement rc ${PIPESTATUS[0]}" | tee -a "$OUT/hta/agreement.txt"
for size in small 2.7B; do cp /tmp/hta-$size/*/kernels.md "$OUT/hta/kernels-$size.md" 2>/dev/null; done
tar czf "$OUT/hta/trace-small.tgz" -C /tmp hta-small 2>/dev/null  # the 2.7B trace is too big to bring back
ls -la "$OUT/hta"
