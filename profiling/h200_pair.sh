# Issue 13 on two H200s (device kind nvidia-h200-x2), from the project root with .device/ carried:
#   COMMIT=<hash> bash profiling/h200_pair.sh
# Everything lands under $OUT/pair (a few files; the run directories packed in one tar). Ordered by what matters most,
# each step time-limited, so a call cut short still brings back what finished.
source .device/env.sh
export LMBENCH_GIT_COMMIT=${COMMIT:-unknown}
P=$OUT/pair; R=/tmp/pair; mkdir -p "$P" "$R"
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$P/device.txt"; nvidia-smi topo -m >> "$P/device.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name: $*" >> "$P/log.txt"
  timeout "$limit" "$@" >> "$P/log.txt" 2>&1; echo "== $name rc $?" >> "$P/log.txt"
  tar czf "$P/runs.tgz" --exclude='*.pt.trace.json*' --exclude='*.nsys-rep' --exclude='*.sqlite' -C /tmp pair 2>/dev/null; }  # after each step: a cut call keeps it
# 1. DDP weak scaling: bf16 train-step, batch 4 per GPU, ctx 512, on 1 and 2 GPUs (one sweep each)
step ddp-1gpu 150 python3 -m lmbench sweep --size small,medium,large,xl,2.7B --mode train-step --precision bf16 --ctx 512 \
  --batch 4 --parallel ddp --nproc-per-node 1 --run-dir $R/ddp
step ddp-2gpu 200 python3 -m lmbench sweep --size small,medium,large,xl,2.7B --mode train-step --precision bf16 --ctx 512 \
  --batch 4 --parallel ddp --nproc-per-node 2 --run-dir $R/ddp
# 2. the targets, side by side in one job each
step collectives-vs-bare 90 python3 benchmarks/collectives_vs_bare.py --sizes 256M,1G,4G --dtype bf16 --rounds 5 --out $P/collectives_vs_bare.json
step ddp-vs-bare 150 python3 benchmarks/ddp_vs_bare.py --sizes small,2.7B --pairs 200,60 --out $P/ddp_vs_bare.json
# 3. FSDP 2.7B and 10B on two GPUs
step fsdp 150 python3 -m lmbench sweep --size 2.7B,10B --mode train-step --precision bf16 --ctx 512 --batch 4 \
  --parallel fsdp --nproc-per-node 2 --run-dir $R/fsdp
# 4. collectives, bf16, 1 KiB-4 GiB
step collectives 120 python3 -m lmbench collectives --dtype bf16 --nproc-per-node 2 --run-dir $R/collectives
# 5. communication explained: per-rank traces of 2.7B DDP on 1 and 2 GPUs, HTA's overlap beside lmbench's
step profile-1gpu 90 python3 -m lmbench profile --size 2.7B --mode train-step --precision bf16 --ctx 512 --batch 4 \
  --parallel ddp --nproc-per-node 1 --trace-dir $R/profile
step profile-2gpu 90 python3 -m lmbench profile --size 2.7B --mode train-step --precision bf16 --ctx 512 --batch 4 \
  --parallel ddp --nproc-per-node 2 --trace-dir $R/profile
for c in $(for f in $R/profile/*/*.pt.trace.json*; do dirname "$f"; done | sort -u); do
  step "kernels $(basename $c)" 60 python3 -m lmbench kernels "$c"
  HTA_DISABLE_NS_ROUNDING=1 step "hta-overlap $(basename $c)" 60 python3 benchmarks/hta_overlap.py "$c"
done
# 6. the same job under Nsight Systems, one capture per rank (NCCL kernels in cuda_gpu_trace)
step nsys-2gpu 120 python3 -m lmbench nsys --size small --mode train-step --precision bf16 --ctx 512 --batch 4 \
  --parallel ddp --nproc-per-node 2 --trace-dir $R/nsys
for d in ddp fsdp collectives; do cp $R/$d/report.md "$P/$d-report.md" 2>/dev/null; cp $R/$d/collectives.md "$P/$d.md" 2>/dev/null; done
ls -la "$P"
