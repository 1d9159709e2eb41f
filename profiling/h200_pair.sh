# Issue 13 on two H200s (device kind nvidia-h200-x2), in parts that each fit one device call (10 minutes), from the
# project root with .device/ carried:
#   PART=scaling|comm|traces|decompose|repeat1|repeat2|interleaved COMMIT=<hash> [PREV=<dir>] [SIZES=...] bash profiling/h200_pair.sh
#   scaling  DDP weak scaling (five sizes, bf16 train step, batch 4 per GPU, ctx 512) on 1 and 2 GPUs; the DDP target
#   comm     the collectives target; lmbench collectives bf16 1 KiB-4 GiB; FSDP 2.7B and 10B on two GPUs (memory per
#            rank), 10B on one
#   traces   per-rank torch.profiler traces of 2.7B DDP on 1 and 2 GPUs with HTA's overlap beside lmbench's; lmbench
#            nsys and lmbench profile of the same small DDP and FSDP jobs, nsys's analytic bytes beside the traces'
#   decompose  lmbench nsys of a size's DDP step on 1 GPU, then on 2, in one directory (SIZES, two a call): the run
#            summary's weak-scaling decomposition per size (lost time = exposed communication + the rest, split with
#            the least exposed rank) under the same instrumentation
#   repeat1, repeat2  the scaling part's sweep with --repeats 3 (three torchrun jobs per size, the job the unit of
#            the CI) on 1 GPU, then on 2, into one directory (carry repeat1's back in PREV for repeat2): the weak-scaling
#            efficiency across jobs
#   interleaved  the same efficiencies without the order: one sweep over --nproc-per-node 1,2 with --repeats 3
#            --interleave (rounds of one job per size and rank count, reversed every other round), SIZES a call
#            (SIZES=small,medium,large, then SIZES=xl,2.7B with PREV)
# Everything lands under $OUT/pair (a few files; the run directories packed in runs.tgz after each step, so a call cut
# short keeps what finished).
source .device/env.sh
export LMBENCH_GIT_COMMIT=${COMMIT:-unknown}
P=$OUT/pair; R=/tmp/pair; mkdir -p "$P" "$R"
[ -n "$PREV" ] && cp -r "$PREV"/. "$R"/  # an earlier call's run directories (the pair/ folder of its runs.tgz)
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$P/device.txt"; nvidia-smi topo -m >> "$P/device.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name: $*" >> "$P/log.txt"; local t0=$(date +%s)
  timeout "$limit" "$@" >> "$P/log.txt" 2>&1; echo "== $name rc $? ($(( $(date +%s)-t0 )) s)" >> "$P/log.txt"
  tar czf "$P/runs.tgz" --exclude='*.pt.trace.json*' --exclude='*.nsys-rep' --exclude='*.sqlite' -C /tmp pair 2>/dev/null; }
TRAIN=(--mode train-step --precision bf16 --ctx 512 --batch 4)
case "$PART" in
  scaling)
    step ddp-1gpu 150 python3 -m lmbench sweep --size small,medium,large,xl,2.7B "${TRAIN[@]}" --parallel ddp \
      --nproc-per-node 1 --run-dir $R/ddp
    step ddp-2gpu 200 python3 -m lmbench sweep --size small,medium,large,xl,2.7B "${TRAIN[@]}" --parallel ddp \
      --nproc-per-node 2 --run-dir $R/ddp
    step ddp-vs-bare 200 python3 benchmarks/ddp_vs_bare.py --sizes small,2.7B --pairs 200,60 --out $P/ddp_vs_bare.json
    cp $R/ddp/report.md "$P/ddp-report.md" ;;
  comm)
    step collectives-vs-bare 120 python3 benchmarks/collectives_vs_bare.py --sizes 256M,1G,4G --dtype bf16 --rounds 5 \
      --out $P/collectives_vs_bare.json
    step collectives 180 python3 -m lmbench collectives --dtype bf16 --nproc-per-node 2 --run-dir $R/collectives
    step fsdp 240 python3 -m lmbench sweep --size 2.7B,10B "${TRAIN[@]}" --parallel fsdp --nproc-per-node 2 \
      --run-dir $R/fsdp
    step fsdp-1gpu 120 python3 -m lmbench sweep --size 10B "${TRAIN[@]}" --parallel fsdp --nproc-per-node 1 \
      --run-dir $R/fsdp  # the same step on one GPU: the out-of-memory record that sharding answers
    cp $R/collectives/collectives.md "$P/collectives.md"; cp $R/fsdp/report.md "$P/fsdp-report.md" ;;
  traces)
    for n in 1 2; do
      step profile-${n}gpu 90 python3 -m lmbench profile --size 2.7B "${TRAIN[@]}" --parallel ddp --nproc-per-node $n \
        --trace-dir $R/profile
    done
    for c in $(for f in $R/profile/*/*.pt.trace.json*; do dirname "$f"; done | sort -u); do
      HTA_DISABLE_NS_ROUNDING=1 step "hta-overlap $(basename $c)" 60 python3 benchmarks/hta_overlap.py "$c" --out "$c/hta_overlap.json"
    done
    for p in ddp fsdp; do  # the same small job under torch.profiler (measured bytes) and nsys (analytic bytes)
      step profile-$p 60 python3 -m lmbench profile --size small "${TRAIN[@]}" --parallel $p --nproc-per-node 2 \
        --warmup 3 --steps 4 --trace-dir $R/comm-$p/profile
      step nsys-$p 90 python3 -m lmbench nsys --size small "${TRAIN[@]}" --parallel $p --nproc-per-node 2 \
        --warmup 3 --steps 4 --trace-dir $R/comm-$p/nsys
    done ;;
  decompose)
    for size in ${SIZES:-2.7B small}; do  # two sizes a call (four nsys jobs of up to 120 s); SIZES="xl large" next
      for n in 1 2; do
        step nsys-$size-${n}gpu 120 python3 -m lmbench nsys --size $size "${TRAIN[@]}" --parallel ddp --nproc-per-node $n \
          --warmup 3 --steps 5 --trace-dir $R/decompose
      done
    done
    cp $R/decompose/kernels.md "$P/decompose-kernels.md" ;;
  repeat1|repeat2)  # the scaling part's sweep on 1 (repeat1) or 2 GPUs (repeat2), three torchrun jobs per size
    n=${PART#repeat}
    step ddp-${n}gpu-repeats 560 python3 -m lmbench sweep --size small,medium,large,xl,2.7B "${TRAIN[@]}" \
      --parallel ddp --nproc-per-node $n --repeats 3 --resume --run-dir $R/ddp-repeats
    cp $R/ddp-repeats/report.md "$P/ddp-repeats-report.md" ;;
  interleaved)  # nothing is stored until a size's last round: SIZES small enough to finish in one call
    step ddp-interleaved 560 python3 -m lmbench sweep --size "${SIZES:?SIZES=small,medium,large or xl,2.7B}" \
      "${TRAIN[@]}" --parallel ddp --nproc-per-node 1,2 --repeats 3 --interleave --resume --run-dir $R/ddp-interleaved
    cp $R/ddp-interleaved/report.md "$P/ddp-interleaved-report.md" ;;
  *) echo "PART must be scaling, comm, traces, decompose, repeat1, repeat2 or interleaved" >&2; exit 2 ;;
esac
ls -la "$P"
