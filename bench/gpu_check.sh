#!/usr/bin/env bash
# Check and measure the GPU path on a machine with a CUDA GPU, in about eight minutes:
#
#     bench/gpu_check.sh [OUT_DIR]             run from the repository root; OUT_DIR defaults to ./gpu-check
#     bench/gpu_check.sh --cpu-smoke OUT_DIR   the same steps on the CPU with a few images (checks this script)
#
#  1. the GPU test suite: pytest -m gpu tests/device (every method end to end on CIFAR-10 pickle files,
#     CEP, retrain, early stop, resume, bf16, the step captured as a CUDA graph, files read back on the CPU);
#  2. cifar10-resnet20 on generated CIFAR-10 files (4,500 training images), engine only: one short experiment
#     per method (prac, lt, random) one after another, timed, then the three at once sharing the GPU
#     (`compare --parallel 3`), timed, their masks checked equal to those run one after another;
#  3. bench/throughput.py --device cuda: our training loop (and its float32, bfloat16 and eager variants)
#     against the DataLoader/PIL/torch-prune baseline with 2 and 8 workers (pin_memory) and the reference
#     implementation's loop, batch 128, 45,000 images an epoch: ResNet-20, and Conv-4 and the LeNet
#     science check when Fashion-MNIST is found (FASHION_DIR, else the Debian package's folder);
#  4. bench/gpu_share.py: 1, 3 and 6 ResNet-20 trainings sharing the GPU, aggregate images/s;
#  5. bench/stacked.py: K = 1, 2, 4, 8, 16 tickets of ResNet-20 (and Conv-4 when Fashion-MNIST is found) trained
#     at once as one stacked computation, aggregate images/s, and the paper's panel in device-hours at that rate;
#  6. the runtime.compile test (tests/device/test_compile_on_device.py), last: it compiles for minutes, and it
#     failed on an H100 with torch 2.11 (BENCHMARKS.md, section 6); the script's exit status says how it went.
# Everything printed is also written to OUT_DIR/gpu_check.log. STEP_SECONDS caps each step (default 200).
#
# It uses the python it finds (PYTHON, else .venv/bin/python, else python3) and that python's own torch;
# the project runs from this source tree (PYTHONPATH), not installed, and needs besides torch only numpy,
# pyarrow, pydantic, rich, scikit-learn, pillow, torchvision and pytest. A machine without internet that
# lacks pydantic gets it as wheels in WHEELS (default ./.whl), installed into OUT_DIR/site (docs/howto/gpu.md,
# "Without internet").
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
if [[ "${1:-}" == "--cpu-smoke" ]]; then
    device=cpu
    shift
fi
out=$(realpath -m "${1:-gpu-check}")
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1

python=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
wheels=${WHEELS:-.whl}
if ! "$python" -c "import pydantic" 2>/dev/null; then
    if ! compgen -G "$wheels/*.whl" >/dev/null; then
        echo "gpu_check: pydantic is missing and there are no wheels in $wheels (docs/howto/gpu.md, 'Without internet')" >&2
        exit 2
    fi
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$out/site" "$wheels"/*.whl
    export PYTHONPATH="$PYTHONPATH:$out/site"
fi

step() { printf '\n=== %s  (%s s)\n' "$1" "$SECONDS"; }

step "machine"
"$python" - "$device" <<'EOF'
import sys, torch, pydantic, pyarrow, numpy
device = sys.argv[1]
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (use --cpu-smoke to check the script on a CPU)")
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"pyarrow {pyarrow.__version__}, pydantic {pydantic.__version__}")
if device == "cuda":
    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}: {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs, CUDA "
          f"{torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
EOF

if [[ $device == cuda ]]; then
    export PRAC_REQUIRE_CUDA=1  # a gpu test that would skip for want of CUDA fails here (tests/external.py)
    train=4500 test=1000 rounds=3 images=45000 quick=(--repeats 2) share=(--processes 1,3,6) epochs=()
    stacked=(--repeats 2)
else  # the script's steps checked, not measured: the fewest images and epochs that run every one
    # images=128: one batch per arm (8 DataLoader workers on 2 cores cost the most per image)
    train=256 test=128 rounds=1 images=128 quick=(--quick --threads 1) share=(--quick)
    epochs=(--set train.epochs=1 --set train.milestones=[])
    stacked=(--quick --threads 1)
fi
limit=${STEP_SECONDS:-200}

step "1. GPU test suite: pytest -m gpu tests/device"
set +e
timeout "$limit" "$python" -m pytest -m gpu tests/device -q -p no:cacheprovider -o addopts="-ra" -s --durations=5 \
    --deselect tests/device/test_compile_on_device.py
suite=$?
set -e
# pytest exits 5 when every test was deselected or skipped: the CPU smoke has no gpu test to run
[[ $suite == 0 || ( $device == cpu && $suite == 5 ) ]] || { echo "gpu_check: the GPU test suite failed ($suite)"; exit 1; }

step "2. cifar10-resnet20, one short experiment per method ($train training images, engine only), then the three at once"
"$python" -m prac.data.cifar_files "$out/cifar" --train "$train" --test "$test"
# the short schedule the device tests use (tests/device/device_runs.py: SHORT), defined there once
mapfile -t short < <("$python" -c "import sys; sys.path.insert(0, 'tests/device'); from device_runs import SHORT
for item in SHORT: print('--set'); print(item)")
settings=(--data-dir "$out/cifar" "${short[@]}" --set prune.rounds=$rounds --set runtime.device="$device" "${epochs[@]}")
for method in prac lt random; do
    started=$SECONDS
    timeout "$limit" "$python" -m prac_lth.cli run cifar10-resnet20 --engine-only --method "$method" \
        --output-dir "$out/runs" "${settings[@]}"
    echo "$method: $((SECONDS - started)) s"
done
started=$SECONDS
timeout "$limit" "$python" -m prac_lth.cli compare cifar10-resnet20 --engine-only --methods prac,lt,random --seeds 0 \
    --parallel 3 --output-dir "$out/runs-at-once" "${settings[@]}"
echo "3 at once: $((SECONDS - started)) s"
"$python" - "$out/runs" "$out/runs-at-once" <<'EOF'
import sys, torch
from pathlib import Path
from prac.artifacts import read_mask
one, together = Path(sys.argv[1]), Path(sys.argv[2])
paths = sorted(p.relative_to(one) for p in one.rglob("mask.parquet"))
differ = [str(p) for p in paths if not all(torch.equal(a, b) for a, b in zip(
    read_mask(one / p).mask.values(), read_mask(together / p).mask.values()))]
print(f"masks of the 3 at once equal to one after another: {len(paths) - len(differ)} of {len(paths)}"
      + (f"; differ: {differ}" if differ else ""))
EOF

step "3. throughput on $device: ours vs DataLoader/PIL/torch-prune with 2 and 8 workers and the reference loop"
fashion=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
models=resnet20 check=(--no-check)
if compgen -G "$fashion/train-images-idx3-ubyte*" >/dev/null; then
    models=resnet20,conv4 check=()
    export PRAC_FASHION_DIR=$fashion
fi
timeout "$limit" "$python" bench/throughput.py --device "$device" --workers 2,8 --models "$models" --images "$images" \
    --variants float32,bfloat16,eager "${check[@]}" "${quick[@]}"

step "4. experiments sharing the $device: aggregate images/s"
timeout "$limit" "$python" bench/gpu_share.py --device "$device" "${share[@]}"

step "5. tickets stacked on the $device: aggregate images/s against K"
timeout "$limit" "$python" bench/stacked.py --device "$device" --models "$models" "${stacked[@]}"

step "6. runtime.compile on $device: pytest -m gpu tests/device/test_compile_on_device.py"
set +e
timeout $((2 * limit)) "$python" -m pytest -m gpu tests/device/test_compile_on_device.py -q -p no:cacheprovider \
    -o addopts="-ra" --tb=short
compiled=$?
set -e
[[ $compiled == 0 || ( $device == cpu && $compiled == 5 ) ]] || { echo "gpu_check: the runtime.compile test failed ($compiled)"; exit 1; }

step "done: every step passed; log in $out/gpu_check.log"
