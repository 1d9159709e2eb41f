#!/usr/bin/env bash
# usage: profiling/ncu.sh [lmbench ncu options: --phase forward|backward|optimizer --kernels N --sections roofline|detailed, bench options]
#
# Nsight Compute on the kernels of one phase of measured step 0, through `lmbench ncu` (which finds ncu from
# --ncu, $LMBENCH_NCU or PATH, and prints the commands to run elsewhere when there is none). This recipe is the
# 2.7B bf16 train step's forward (ctx 512, batch 4); an option given again replaces that default.
set -euo pipefail
exec python3 -m lmbench ncu --size 2.7B --mode train-step --precision bf16 --batch 4 --ctx 512 --warmup 2 \
  --phase forward "$@"
