#!/usr/bin/env bash
# The GPU run in one go, on a machine with an NVIDIA GPU and CUDA (PyTorch installed is enough: its wheels carry
# libcublas.so.12), no .NET: the CUDA backend's self-check, then `peft bench train --device cuda` on the TinyLlama-1.1B
# and Llama-3-8B shapes, LoRA and QLoRA, batch 4 × 512, with GPU memory from the driver and sampled by nvidia-smi.
#   tar -xzf artifacts/gpu/peft-linux-x64.tar.gz -C /tmp/peftgpu && bash /tmp/peftgpu/gpu-check.sh [OUTDIR]
# Results: OUTDIR/device-check.jsonl, OUTDIR/bench.jsonl (one JSON line per run, plus nvidia-smi's peak), OUTDIR/log.txt.
# Environment: SKIP_8B=1 skips the Llama-3-8B shape; STEPS (default 3) timed steps per run; PEFTSHARP_CUBLAS_TF32=1
# lets cuBLAS use TF32 tensor cores.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${OUT:-$here/out}}"
mkdir -p "$out"
peft="$here/peft/peft"
log="$out/log.txt"
steps="${STEPS:-3}"
exec > >(tee -a "$log") 2>&1

# cuBLAS: the system's, or PyTorch's wheel (site-packages/nvidia/cublas/lib).
cublas_dir=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
[ -n "$cublas_dir" ] && export LD_LIBRARY_PATH="$cublas_dir:${LD_LIBRARY_PATH:-}"
echo "== $(date -u +%FT%TZ) host: $(nproc) cores; cublas dir: ${cublas_dir:-system}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not available"

echo "== device self-check (every kernel and whole LoRA/QLoRA steps vs the CPU)"
timeout 300 "$peft" device check --device cuda | tee "$out/device-check.jsonl"
echo "device check exit code: ${PIPESTATUS[0]}"

# peak GPU memory of one command, sampled every 200 ms by nvidia-smi
run_bench() {
  local name=$1; shift
  local smi="$out/smi-$name.txt"
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n1; sleep 0.2; done ) >"$smi" &
  local sampler=$!
  local t0=$(date +%s)
  timeout 420 "$peft" bench train --device cuda --threads "$(nproc)" "$@" --batch 4 --seq 512 --steps "$steps" >"$out/bench-$name.json"
  local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  local peak=$(sort -n "$smi" | tail -n1)
  echo "$name: exit $rc, $(( $(date +%s) - t0 )) s, nvidia-smi peak ${peak:-?} MiB: $(cat "$out/bench-$name.json")"
  python3 - "$out/bench-$name.json" "$name" "${peak:-null}" "$rc" >>"$out/bench.jsonl" <<'PY'
import json, sys
path, name, peak, rc = sys.argv[1:]
try: d = json.loads(open(path).read().strip().splitlines()[-1])
except Exception: d = {}
d.update({"run": name, "nvidia_smi_peak_mib": None if peak == "null" else int(peak), "exit_code": int(rc)})
print(json.dumps(d))
PY
}

cfg="$here/model-configs"
run_bench tinyllama-lora  --config "$cfg/tinyllama-1.1b.json" --method lora  --rank 16 --alpha 32 --targets all-linear
run_bench tinyllama-qlora --config "$cfg/tinyllama-1.1b.json" --method qlora --rank 16 --alpha 32 --targets all-linear
if [ "${SKIP_8B:-0}" != "1" ]; then
  run_bench llama3-8b-qlora --config "$cfg/llama-3-8b.json" --method qlora --rank 16 --alpha 32 --targets all-linear
  run_bench llama3-8b-lora  --config "$cfg/llama-3-8b.json" --method lora  --rank 16 --alpha 32 --targets all-linear
fi
echo "== done $(date -u +%FT%TZ); anchors (torchtune, one RTX 4090, Llama-3.1-8B): LoRA 3,083 tokens/s at 16.2 GiB, QLoRA 2,413 at 7.4 GiB"
