#!/bin/bash
# One call on a lent GPU machine: train release recipes for SECONDS (continuing from the weights in DIR, which an
# earlier loan brought back, when given), collect the weights, logs and previews into $OUT, then time the GPU rows
# of bench/bench_feedforward.py in what is left of LIMIT seconds. From the development machine:
#
#   run(command="bash tools/gpu_loan.sh 430 checkpoints 585 RECIPE...", carry=["kit"], timeout_s=600)
#   python tools/release.py unpack FILES_AT --logs out/release-N    finished models into brushwork/models/; all
#       files, partial ones and optimizer moments too, into out/release-N (copy its *.partial*.safetensors to
#       checkpoints/ and commit them: only the repository outlives a session; checkpoints/README.md has the next
#       loan's command)
#
# Usage: tools/gpu_loan.sh SECONDS [DIR|-] [LIMIT] [RECIPE...]   (default recipes: adain and the 8 classic styles)
# START_ARGS (environment) goes to `release.py start` as well, e.g. START_ARGS="--set channels_last=off".
# TRAIN_BENCH=1 first times the fast groups in two layouts and profiles their kernels (bench/bench_train.py, about
# 1.5 min; TRAIN_BENCH_ARGS replaces its arguments); when NCHW trains the classic styles 5% faster than channels-last,
# every run of the loan trains in NCHW (START_ARGS gains --set channels_last=off).
set -u
SECONDS_TRAIN=${1:?usage: gpu_loan.sh SECONDS [DIR|-] [LIMIT] [RECIPE...]}
FROM=${2:--}
LIMIT=${3:-590}
shift $(( $# < 3 ? $# : 3 ))
RECIPES=${*:-adain-vgg16-hed starry_night the_scream la_muse composition_vii shipwreck impronte_d_artista \
picasso_selfport1907 en_campo_gris}
export PYTHONUNBUFFERED=1
BEGIN=$(date +%s)
elapsed() { echo $(( $(date +%s) - BEGIN )); }
R="python3 tools/release.py"
LOG=${OUT:?OUT must name the folder that comes back}/log.txt
report() { echo "== t=$(elapsed)s $*" | tee -a "$LOG"; $R status 2>&1 | tee -a "$LOG"; }
running() { $R status 2>/dev/null | grep " running " > /dev/null; }  # grep reads it all: no broken pipe
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
if [ "${TRAIN_BENCH:-0}" = 1 ]; then
  echo "== t=$(elapsed)s train bench" | tee -a "$LOG"
  # shellcheck disable=SC2086
  timeout 150 python3 bench/bench_train.py ${TRAIN_BENCH_ARGS:---groups fast,mobile --configs default,nchw --steps 10 \
    --profile 3} 2>&1 | tee /tmp/train_bench.txt | tee -a "$LOG"
  if bash tools/faster_layout.sh /tmp/train_bench.txt; then
    START_ARGS="${START_ARGS:-} --set channels_last=off"
    echo "== NCHW trains the classic styles faster here: every run gets --set channels_last=off" | tee -a "$LOG"
  fi
fi
CONTINUE=()
[ "$FROM" != - ] && CONTINUE=(--continue-from "$FROM")
STARTED=$(date +%s)
# shellcheck disable=SC2086
$R start --only $RECIPES --time-limit "$SECONDS_TRAIN" "${CONTINUE[@]}" ${START_ARGS:-} 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
sleep 40
report
for run in $($R status | awk '$2=="failed"{print $1}'); do
  echo "== $run failed:" | tee -a "$LOG"; tail -25 "/tmp/brushwork-release/runs/$run/failed.txt" | tee -a "$LOG"
done
# The runs stop by themselves at SECONDS of training (plus start-up and 100 settling steps when continuing).
while running && [ $(( $(date +%s) - STARTED )) -lt $((SECONDS_TRAIN + 90)) ]; do
  sleep 20
  [ $(( $(elapsed) % 60 )) -lt 20 ] && report
done
if running; then report "stopping"; $R stop; sleep 25; fi
report final
$R collect --out "$OUT" --pack-mb 15.5 2>&1 | tee -a "$LOG"
left=$((LIMIT - $(elapsed) - 5))
if [ "$left" -gt 20 ]; then
  echo "== t=$(elapsed)s bench ($left s)" | tee -a "$LOG"
  PYTHONPATH=. timeout "$left" python3 bench/bench_feedforward.py --gpu-only \
    --weights kit/weights/vgg16-hed.safetensors 2>&1 | tee -a "$LOG"
fi
echo "== t=$(elapsed)s end" | tee -a "$LOG"
