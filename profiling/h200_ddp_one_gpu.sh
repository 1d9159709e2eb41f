# Issue 13's code paths on ONE H200 (NCCL with a single rank), while no pair of GPUs is lent:
#   COMMIT=<hash> bash profiling/h200_ddp_one_gpu.sh
# the 1-GPU DDP baseline of the weak-scaling sweep, a per-rank DDP trace (real NCCL kernels and record_param_comms
# for the communication analysis, HTA's overlap beside lmbench's), the DDP-vs-bare target with one rank, and the
# distributed test files on CUDA. Output under $OUT/one.
source .device/env.sh
export LMBENCH_GIT_COMMIT=${COMMIT:-unknown}
P=$OUT/one; R=/tmp/one; mkdir -p "$P" "$R"
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$P/device.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name: $*" >> "$P/log.txt"
  timeout "$limit" "$@" >> "$P/log.txt" 2>&1; echo "== $name rc $?" >> "$P/log.txt"
  tar czf "$P/runs.tgz" -C /tmp one 2>/dev/null; }
step ddp-1gpu 200 python3 -m lmbench sweep --size small,medium,large,xl,2.7B --mode train-step --precision bf16 --ctx 512 \
  --batch 4 --parallel ddp --nproc-per-node 1 --run-dir $R/ddp
step profile-1gpu 90 python3 -m lmbench profile --size small --mode train-step --precision bf16 --ctx 512 --batch 4 \
  --parallel ddp --nproc-per-node 1 --trace-dir $R/profile
for c in $(for f in $R/profile/*/*.pt.trace.json*; do dirname "$f"; done | sort -u); do
  HTA_DISABLE_NS_ROUNDING=1 step "hta-overlap $(basename $c)" 60 python3 benchmarks/hta_overlap.py "$c"
done
step ddp-vs-bare 150 python3 benchmarks/ddp_vs_bare.py --nproc-per-node 1 --sizes small,2.7B --pairs 200,60 --out $P/ddp_vs_bare.json
step cuda-tests 120 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_distributed.py tests/test_communication.py \
  tests/test_collectives.py
cp $R/ddp/report.md "$P/ddp-report.md" 2>/dev/null
ls -la "$P"; tail -40 "$P/log.txt"
