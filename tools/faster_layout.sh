#!/bin/bash
# Exit 0 when a bench/bench_train.py table (the file given) shows the classic fast group ("fast (N)") training at
# least 5% more steps per second with the nchw config than with the default (channels-last): tools/gpu_loan.sh then
# trains the loan in NCHW. Exit 1 otherwise, or when either row is missing.
set -u
awk -F'|' '$2 ~ /^ fast \(/ { gsub(/ /, "", $3); rate[$3] = $5 + 0 }
           END { exit !(("default" in rate) && ("nchw" in rate) && rate["nchw"] > 1.05 * rate["default"]) }' \
  "${1:?usage: faster_layout.sh BENCH_TABLE}"
