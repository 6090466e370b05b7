#!/usr/bin/env bash
# Proves the CUDA kernels compile, with no GPU: NVRTC (from the nvidia-cuda-nvrtc-cu12 wheel)
# compiles every kernels/*.cu to PTX for compute_80 and compute_90 through `lshrec kernels
# compile` (the same code path the GPU backend uses at run time), then ptxas (from the
# nvidia-cuda-nvcc-cu12 wheel) assembles sm_80 and sm_90 cubins. Fails on any compile error or
# on any register spill; prints registers, shared memory and spills per kernel.
# Usage: .ci/kernels.sh [path/to/lshrec built with --features cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/lshrec}
VENV=target/ci-cuda-venv
OUT=target/kernels
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "nvidia-cuda-nvrtc-cu12==12.9.86" "nvidia-cuda-nvcc-cu12==12.9.86"
NV=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]) + "/nvidia")')
PTXAS="$NV/cuda_nvcc/bin/ptxas"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "-- NVRTC: kernels/*.cu -> PTX"
LD_LIBRARY_PATH="$NV/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$BIN" kernels compile --arch 80,90 --out "$OUT"

echo "-- ptxas: PTX -> cubin (sm_80, sm_90)"
spills=0
for sm in 80 90; do
    for ptx in "$OUT"/*.compute_$sm.ptx; do
        log="${ptx%.ptx}.sm_$sm.log"
        "$PTXAS" -arch=sm_$sm -v -o "${ptx%.ptx}.sm_$sm.cubin" "$ptx" >"$log" 2>&1 || {
            cat "$log"
            echo "ptxas failed on $ptx" >&2
            exit 1
        }
        # ptxas prints, per kernel: "Compiling entry function 'k'", then the stack/spill line,
        # then "Used N registers, ... smem".
        awk -v sm="sm_$sm" '
            /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); k = substr($0, RSTART + 1, RLENGTH - 2) }
            /spill stores/ { st = $5; ld = $9 }
            /Used [0-9]+ registers/ {
                smem = "0"; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
                printf "%-6s %-24s %3d registers  %6s B smem  spills %s/%s B\n", sm, k, $5, smem, st, ld
                if (st + ld > 0) bad = 1
            }
            END { exit bad }' "$log" || spills=1
    done
done
if [ "$spills" -ne 0 ]; then
    echo "register spills found (see above): fix the kernel or explain the spill" >&2
    exit 1
fi
echo "-- every kernel compiled for sm_80 and sm_90 with no spills"
