#!/usr/bin/env bash
# The GPU checks as one short script, for a session that is lent a GPU machine (the device
# tool's `run`; its python3 already holds a CUDA torch, numpy, sympy, networkx and timm).
# NOT YET RUN ON A GPU: no session of this project has been lent one. Expect to fix small
# things on the first lease; keep the whole script inside one run's 10 minutes.
#
#   run(command="bash scripts/gpu_check.sh", timeout_s=540)      # logs come back from $OUT
#
# What it checks: the CUDA tests of the exported optimizer, its step
# time on CUDA against the peers and torch.compile (bench_export), K stacked seeds vs
# sequential runs on CUDA (bench_seeds), and a first calibration of a larger proxy on CUDA
# (rank_rules --device cuda), and Ray's GPU path: two workers sharing a GPU (0.5 each)
# evaluating on CUDA (tests/test_cluster.py -k fractional). The machine has no ray and its
# wheel is over the 64 MiB a call may carry: the script tries `pip install ray` (it works
# where the machine reaches an index) and otherwise says that the Ray check did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu_check}
mkdir -p "$out"
py=${PYTHON:-python3}
# `optsearch.<name>` is the checkout's <name>/ folder (pyproject's package-dir); without an
# install, a folder of links gives the same names. PWD on the path: scripts.bench/research.
ns=$(mktemp -d)/ns
mkdir -p "$ns/optsearch"
for name in primitives proxy_tasks evaluator search; do ln -s "$PWD/$name" "$ns/optsearch/$name"; done
ln -s "$PWD/scripts/cli" "$ns/optsearch/cli"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ns:$PWD${PYTHONPATH:+:$PYTHONPATH}"
step() {   # step NAME SECONDS CMD...: one check, its log under $out, bounded in time
    local name=$1 limit=$2; shift 2
    echo "== $name"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]}"
}
nvidia-smi -L
$py -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
step cuda_tests 120 $py -m pytest -q -p no:cacheprovider tests/test_export.py -k cuda
step bench_export 120 $py -m scripts.bench.export --device cuda --params-m 25 --repeats 7 --steps 10
step bench_seeds 120 $py -m scripts.bench.seeds --device cuda --task teacher_student char_lm \
    --scale 10 --k 8
# Lion's claimed regime: a bias-free student (docs/PROXIES.md, 2026-12-03) at large batch
step rank_ts 180 $py -m scripts.research.rank_rules --device cuda --workers 4 --seeds 8 \
    --tasks "teacher_student@10:student_bias=false,batch_size=4096" \
    --only "adamwbc .9/.999" "lion .9/.99" "lion .8/.95" --lr-min 3e-4 --lr-max 3e-2 \
    --out "$out/rank.jsonl"
# Ray: fractional GPUs per worker (needs ray 2.60 and scikit-learn, as in requirements.lock)
if ! $py -c "import ray, sklearn" 2>/dev/null; then
    timeout 60 $py -m pip install -q "ray==2.60.0" "scikit-learn==1.9.1" >"$out/pip_ray.log" 2>&1
fi
if $py -c "import ray, sklearn" 2>/dev/null; then
    step ray_gpu 240 $py -m pytest -q -p no:cacheprovider tests/test_cluster.py -k fractional -rs
else
    echo "== ray_gpu: did not run (ray could not be installed here; $out/pip_ray.log)"
fi
