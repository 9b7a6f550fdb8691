#!/usr/bin/env bash
# Builds what a GPU machine without .NET runs: a self-contained linux-x64 publish of `peft` (with PeftSharp.Cuda),
# packed as artifacts/gpu/peft-linux-x64.tar.gz (carried to the GPU machine: it must stay under 64 MiB), plus the
# model configs and scripts/gpu-check.sh beside it. Prints the sizes. Run on the development machine:
#   bash scripts/gpu-publish.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/gpu
rm -rf "$out" && mkdir -p "$out"
# Trimmed (partial: only framework assemblies that declare themselves trimmable; the app, ILGPU and the CLI's
# reflection-discovered commands are kept whole) to fit the 64 MiB carry limit.
dotnet publish src/PeftSharp.Cli/PeftSharp.Cli.csproj -c Release -r linux-x64 --self-contained \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true -p:DebugType=none \
  -o "$out/peft" >"$out/publish.log" 2>&1 || { tail -n 30 "$out/publish.log"; exit 1; }
cp -r assets/model-configs "$out/model-configs"
cp scripts/gpu-check.sh "$out/"
tar -C "$out" -czf "$out/peft-linux-x64.tar.gz" peft model-configs gpu-check.sh
echo "publish folder: $(du -sm "$out/peft" | cut -f1) MiB; tarball: $(du -m "$out/peft-linux-x64.tar.gz" | cut -f1) MiB ($(stat -c %s "$out/peft-linux-x64.tar.gz") bytes)"
rm -rf "$out/peft" "$out/model-configs" "$out/gpu-check.sh"
