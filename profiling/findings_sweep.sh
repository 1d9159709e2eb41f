#!/usr/bin/env bash
# usage: profiling/findings_sweep.sh OUT_DIR [sweep|graph|attention|compare ...]   (CUDA; each part resumes)
#
# The H200 runs behind the findings report:
#   sweep      5 sizes x ctx 128/256/512/1024 x fp32/bf16, forward-backward   -> OUT_DIR/sweep (report + plots)
#   graph      5 sizes, bf16, ctx 512, forward-backward, eager and --cuda-graph -> OUT_DIR/graph
#   attention  5 sizes, bf16, ctx 512, forward-backward, naive and sdpa        -> OUT_DIR/attention
#   compare    fp32 vs bf16 (sweep) and sdpa vs naive (attention)            -> OUT_DIR/compare-*.md
# With no part named, all four run in order. Every sweep uses --resume, so a cut-short call continues.
set -euo pipefail
out=${1:?usage: profiling/findings_sweep.sh OUT_DIR [parts...]}
shift
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(sweep graph attention compare)
sizes=small,medium,large,xl,2.7B
for part in "${parts[@]}"; do
  case "$part" in
    sweep) python3 -m lmbench sweep --size $sizes --ctx 128,256,512,1024 --precision fp32,bf16 \
             --mode forward-backward --resume --run-dir "$out/sweep" ;;
    graph) python3 -m lmbench sweep --size $sizes --ctx 512 --precision bf16 --mode forward-backward \
             --cuda-graph --resume --run-dir "$out/graph" ;;
    attention) python3 -m lmbench sweep --size $sizes --ctx 512 --precision bf16 --mode forward-backward \
                 --attention sdpa,naive --resume --run-dir "$out/attention" ;;
    compare)
      python3 -m lmbench compare "$out/sweep:precision=fp32" "$out/sweep:precision=bf16" --out "$out/compare-fp32-vs-bf16.md"
      python3 -m lmbench compare "$out/attention:attention=sdpa" "$out/attention:attention=naive" \
        --out "$out/compare-sdpa-vs-naive.md" ;;
    *) echo "unknown part '$part' (sweep, graph, attention, compare)" >&2; exit 2 ;;
  esac
done
