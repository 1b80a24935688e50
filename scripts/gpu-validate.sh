#!/usr/bin/env bash
# GPU validation in one command, for anyone with one GPU (README, "Measured on a GPU"):
#
#   scripts/gpu-validate.sh OUTDIR            # on a GPU: about 20 minutes at most (the limits)
#   scripts/gpu-validate.sh OUTDIR --quick    # the same steps at toy sizes on a CPU (rehearsal)
#
# Parts, each under its own time limit so that a slow or failing part leaves time for the rest
# (a part's status, exit code and seconds go to OUTDIR/parts.tsv; its output to OUTDIR/log.txt):
#   1. bench-train  `latentage bench train` at every resolution 4² … 1024² with the study's
#                   architecture and per-GPU minibatch, automatic precision (img/s, s/kimg, peak
#                   memory; the same train_step as train_phase); then at 4², 16², 64² with
#                   batch 16 in fp32, the shape of the CPU figures in the README; and
#                   `latentage bench label` at 1024² (G, then legacy_xception at 299 px);
#   2. dag          the study's DAG scaled down (scripts/gpu-validate.yaml) through Snakemake in
#                   a copy of the workflow: wall time per rule (benchmarks/), the GAN's img/s
#                   per phase (stats.jsonl);
#   3. gpu-check    `latentage gpu-check`, the whole table (training in fp32/fp16/bf16, a
#                   SIGTERM and resume, bench at 256²/1024², labelling at 1024², FD and SWD);
#   4. twin         the 4² phase as 2 processes sharing the GPU (torchrun; gloo on CUDA
#                   tensors, since NCCL refuses two ranks on one GPU) against one process, in
#                   fp32: the largest weight difference. NCCL across several GPUs is not run.
# Then scripts/gpu_validate_report.py writes OUTDIR/report.md and report.json, and the run's
# small files (the parts' JSON, the DAG's results, logs and figures) go into OUTDIR/files.tar.gz.
#
# Needs latentage, Snakemake and the packages of pyproject.toml importable (an offline machine
# can carry them as wheels: PYTHONPATH). Environment: GPU_VALIDATE_WORK (scratch folder,
# default OUTDIR/work), PYTHON (default python3), SKIP (parts to leave out, e.g.
# SKIP="bench-train twin"), LIMIT_<PART> (seconds, e.g. LIMIT_DAG=300,
# LIMIT_GPU_CHECK=200).
set -uo pipefail

out=${1:?usage: scripts/gpu-validate.sh OUTDIR [--quick]}
quick=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${GPU_VALIDATE_WORK:-$out/work}
mkdir -p "$work/bin"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

# `latentage` for the rules, wherever the package is importable from
if ! command -v latentage >/dev/null; then
  printf '#!/bin/sh\nexec %s -m latentage "$@"\n' "$(command -v "$py")" >"$work/bin/latentage"
  chmod +x "$work/bin/latentage"
  export PATH=$work/bin:$PATH
fi
if ! command -v snakemake >/dev/null; then
  printf '#!/bin/sh\nexec %s -m snakemake "$@"\n' "$(command -v "$py")" >"$work/bin/snakemake"
  chmod +x "$work/bin/snakemake"
  export PATH=$work/bin:$PATH
fi
# the walk's MP4 needs an ffmpeg; imageio-ffmpeg brings one, else a system ffmpeg
if [ -z "${IMAGEIO_FFMPEG_EXE:-}" ] && command -v ffmpeg >/dev/null; then
  export IMAGEIO_FFMPEG_EXE=$(command -v ffmpeg)
fi

log=$out/log.txt
parts=$out/parts.tsv
printf 'part\tstatus\texit\tseconds\n' >"$parts"

part() {  # part NAME LIMIT_SECONDS COMMAND...: run under a time limit, log, record
  local name=$1 limit=$2
  shift 2
  if [[ " ${SKIP:-} " == *" $name "* ]]; then
    printf '%s\tskipped\t-\t0\n' "$name" >>"$parts"
    return
  fi
  local var=LIMIT_${name^^}
  var=${var//-/_}
  limit=${!var:-$limit}
  echo "=== $name (limit ${limit} s): $*" | tee -a "$log"
  local t0=$SECONDS rc
  timeout --signal=TERM --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local status=ok
  [ "$rc" = 124 ] && status=timeout
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && status=failed
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - t0))" >>"$parts"
  echo "=== $name: $status (exit $rc) in $((SECONDS - t0)) s" | tee -a "$log"
}

{
  echo "gpu-validate: $(date -u +%FT%TZ) on $(hostname); repo $repo"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
'available', torch.cuda.is_available())"
} 2>&1 | tee -a "$log"

dag=$work/dag
if [ -z "$quick" ]; then
  # the study's per-GPU minibatch at each resolution (config.yaml: 512 … 16, 8 at 1024²)
  part bench-train 75 latentage bench train --res 4 8 16 32 64 128 256 512 1024 \
    --batch 512 256 128 64 32 16 16 16 8 --steps 8 --json "$work/bench-train.json"
  # the CPU table's shape (README, Benchmarks: batch 16, fp32) for the speed-up over 2 cores
  part bench-cpu-shape 40 latentage bench train --res 4 16 64 --batch 16 --precision fp32 \
    --json "$work/bench-train-b16.json"
  # labelling at the study's size: G 1024², legacy_xception at 299 px (random weights)
  part bench-label 60 latentage bench label --res 1024 --batch 64 --n 2048 \
    --json "$work/bench-label.json"
  check=(latentage gpu-check --out "$work/gpu-check.json" --workdir "$work/gpu-check")
  dag_config=$repo/scripts/gpu-validate.yaml
  cores=$(nproc)
  # on an H200 the phases 4² … 64², both CNNs and the real metrics took 230 s (the DAG did
  # not finish within that: the 128² phase and the snapshot metrics were still running)
  dag_limit=900
  twin_arch='"latent_size": 512, "fmap_base": 8192, "fmap_max": 512'
  twin_batch=128
else
  part bench-train 150 latentage bench train --res 4 8 16 --batch 16 8 4 --latent 16 \
    --fmap-base 64 --fmap-max 16 --steps 2 --json "$work/bench-train.json"
  part bench-label 60 latentage bench label --res 16 --batch 8 --n 16 --latent 16 \
    --fmap-base 64 --fmap-max 16 --backbone resnet10t --input-size 32 \
    --json "$work/bench-label.json"
  check=(latentage gpu-check --quick --allow-cpu --out "$work/gpu-check.json"
    --workdir "$work/gpu-check")
  dag_config=$repo/tests/mini/config.yaml
  cores=2
  dag_limit=1500
  twin_arch='"latent_size": 16, "fmap_base": 64, "fmap_max": 16'
  twin_batch=16
fi

# 2. the scaled DAG, in a copy of the workflow (results/, logs/, benchmarks/ land there)
rm -rf "$dag"
mkdir -p "$dag"
cp -r "$repo/Snakefile" "$repo/config.yaml" "$repo/workflow" "$repo/envs" "$repo/profiles" "$dag/"
part dag "$dag_limit" bash -c "cd '$dag' && snakemake --cores $cores --configfile '$dag_config' \
  --keep-going --quiet rules"

# 3. gpu-check (after the DAG, the study's run shape, which matters most)
part gpu-check 170 "${check[@]}"

# 4. the twin: phase 4² in one process and as two processes on the same device, fp32
twin=$work/twin
rm -rf "$twin"
settings="{\"max_res\": 8, $twin_arch, \"precision\": \"fp32\", \"schedule\": {\
\"lod_training_kimg\": 2, \"lod_transition_kimg\": 2, \"total_kimg\": 4, \
\"minibatch\": {\"4\": $twin_batch, \"8\": $twin_batch}, \"tick_kimg_base\": 1, \
\"tick_kimg\": {}}, \"snapshot_kimg\": 4, \"checkpoint_kimg\": 4, \"grid_size\": 4}"
phase4() {  # phase4 DIR [latentage options before the step]
  local dir=$1
  shift
  latentage "$@" train-phase --res 4 --data "$dag/results/data/train/res4.npy" \
    --checkpoint "$dir/checkpoint.pt" --stats "$dir/stats.jsonl" --fakes "$dir/fakes.png" \
    --ticks "$dir/ticks" --snapshots "$dir/snapshots" --progress "$dir/.progress" \
    --settings "$settings" --seed 3
}
export -f phase4
export dag settings
twin_run() {
  # LATENTAGE_CPU_DDP=1: start 2 processes although CUDA sees one device; both use it
  phase4 "$twin/one" &&
    LATENTAGE_CPU_DDP=1 LATENTAGE_DIST_BACKEND=gloo phase4 "$twin/two" --nproc 2 &&
    "$py" - "$twin" <<'EOF'
import json, sys
from pathlib import Path
import torch
twin = Path(sys.argv[1])
one = torch.load(twin / "one/checkpoint.pt", map_location="cpu", weights_only=True)
two = torch.load(twin / "two/checkpoint.pt", map_location="cpu", weights_only=True)
worst = {}
for net in ("G", "D", "G_ema"):
    diffs = [((one[net][k].double() - two[net][k].double()).abs().max().item(),
              one[net][k].double().abs().max().item()) for k in one[net]
             if one[net][k].is_floating_point()]
    worst[net] = {"max_abs_diff": max(d for d, _ in diffs),
                  "max_abs_weight": max(w for _, w in diffs)}
stats = [json.loads(line) for line in (twin / "two/stats.jsonl").read_text().splitlines()]
report = {"nimg": [one["nimg"], two["nimg"]], "weights": worst, "img_per_s_two": stats[-1]["img_per_s"]}
(twin / "twin.json").write_text(json.dumps(report, indent=2) + "\n")
print("twin:", json.dumps(report))
EOF
}
export -f twin_run
export twin py
part twin 50 bash -c twin_run

"$py" "$repo/scripts/gpu_validate_report.py" --out "$out" --work "$work" 2>&1 | tee -a "$log"
# the small files of the run, for the README and for reading back
(cd "$work" && find ./*.json dag/results dag/benchmarks dag/logs gpu-check twin -type f \
  \( -name '*.json' -o -name '*.jsonl' -o -name '*.tsv' -o -name '*.md' -o -name '*.log' \
  -o -name '*.png' -o -name '*.gif' -o -name '*.csv' \) -size -600k 2>/dev/null |
  grep -v '/ticks/' | tar czf "$out/files.tar.gz" -T -)
echo "gpu-validate: done; $out/report.md" | tee -a "$log"
! grep -qv -e '	ok	' -e '^part	' "$parts"
