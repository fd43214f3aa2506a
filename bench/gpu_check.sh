#!/usr/bin/env bash
# The GPU check, ready for a machine with a CUDA GPU: the tests (their strategies draw CUDA cases), `dotbias check` (its grid adds
# CUDA rows whenever torch sees a GPU), `pytest bench --devices cuda` on a small budget and its report,
# then GPU.md naming the GPU, all in one result set: OUT/gpu/ (default results/local/gpu/), written
# into a temporary folder and moved into place whole.
# Without a GPU it runs its CPU part (one tiny CPU benchmark through the real timing path, so the
# script itself stays tested; the tests it would run are CI's own step), says so in one line and
# exits 0.
#
#   bench/gpu_check.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
out=${1:-results/local}
mkdir -p "$out"
tmp=$(mktemp -d "$out/.gpu.XXXXXX")
store=$(mktemp -d)
trap 'rm -rf "$tmp" "$store"' EXIT
gpu=$(python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
torch_version=$(python -c "import torch; print(torch.__version__, torch.version.cuda or 'no CUDA')")
tiny="--processes=2 --interleave-s=0.5 --epoch-rounds=1 --benchmark-max-time=0.05"

if [ -z "$gpu" ]; then
    # CPU part: one benchmark group through the real timing path (the device-parametrised tests
    # ran on the CPU in .ci/run's own test step; repeated here, they made this step 25 s, now 17 s).
    python -m pytest bench -q -p no:cacheprovider -k "forward and not backward" --devices cpu \
        --processes=1 --interleave-s=0.05 --benchmark-max-time=0.01 \
        --benchmark-storage="file://$store" > "$tmp/bench.txt" 2>&1
    echo "gpu_check: no CUDA GPU on this machine (torch $torch_version): ran the CPU part only, nothing written"
    exit 0
fi

echo "gpu_check: $gpu (torch $torch_version)" >&2
status=0
python -m pytest tests -q -p no:cacheprovider > "$tmp/tests.txt" 2>&1 || status=1   # CUDA cases drawn too
dotbias check --no-progress --out "$tmp" > "$tmp/check.txt" 2>&1 || status=1
# shellcheck disable=SC2086
python -m pytest bench -q -p no:cacheprovider -k "not epoch" --devices cuda $tiny \
    --benchmark-storage="file://$store" --benchmark-json="$tmp/bench.json" > "$tmp/bench.txt" 2>&1 || status=1
dotbias report "$tmp/bench.json" --no-progress --out "$tmp" > /dev/null 2>&1 || status=1
for link in "$tmp"/*; do     # result sets inside are links to hidden folders: keep plain folders
    if [ -L "$link" ]; then target=$(readlink "$link"); rm "$link" && mv "$tmp/$target" "$link"; fi
done
{
    echo "# GPU check: $gpu"
    echo
    echo "torch $torch_version, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Exit status of the steps: $status (0: every step passed)."
    echo
    echo "## CUDA tests"; echo; echo '```'; tail -n 5 "$tmp/tests.txt"; echo '```'
    echo; echo "## dotbias check"; echo; echo '```'; head -n 3 "$tmp/check.txt"; echo '```'
    echo; echo "## pytest bench --devices cuda (small budget)"; echo; echo '```'
    sed -n '/dotbias verdict/,$p' "$tmp/bench.txt"; echo '```'
} > "$tmp/GPU.md"
rm -rf "$out/gpu.old"
[ -e "$out/gpu" ] && mv "$out/gpu" "$out/gpu.old"
mv "$tmp" "$out/gpu"
rm -rf "$out/gpu.old"
trap 'rm -rf "$store"' EXIT
echo "gpu_check: wrote $out/gpu/ (GPU.md names $gpu; exit $status)"
exit $status
