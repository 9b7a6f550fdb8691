#!/usr/bin/env bash
# Packs the `peft` tool, installs it into a temporary tool path from that package, and runs `peft train` and
# `peft compare` with no model or data arguments from an unrelated folder: the default model and the demo task must
# come from the installed package, not from the current folder. About 30 s. Prints one PASS/FAIL line last.
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "installed-tool check FAILED: $1"; [ -f "$tmp/log" ] && tail -n 20 "$tmp/log"; exit 1; }

dotnet pack src/PeftSharp.Cli -c Release -o "$tmp/pkg" >"$tmp/log" 2>&1 || fail "dotnet pack"
version=$(ls "$tmp/pkg" | sed -nE 's/^PeftSharp\.Cli\.(.+)\.nupkg$/\1/p' | head -n 1)
[ -n "$version" ] || fail "no PeftSharp.Cli package in $tmp/pkg"
unzip -l "$tmp/pkg/PeftSharp.Cli.$version.nupkg" | grep -q 'assets/default-model/model.safetensors' || fail "the package lacks assets/default-model"
dotnet tool install PeftSharp.Cli --version "$version" --tool-path "$tmp/tool" --add-source "$tmp/pkg" >"$tmp/log" 2>&1 || fail "dotnet tool install"
mkdir -p "$tmp/elsewhere" && cd "$tmp/elsewhere"
"$tmp/tool/peft" train --max-steps 2 --task-eval 2 >"$tmp/log" 2>&1 || fail "peft train from another folder"
[ -f runs/demo-lora/adapter/adapter_model.safetensors ] || fail "peft train wrote no adapter under runs/demo-lora"
"$tmp/tool/peft" compare --methods lora --max-steps 2 --task-eval 2 --output-dir cmp >"$tmp/log" 2>&1 || fail "peft compare from another folder"
[ -f cmp/report.html ] || fail "peft compare wrote no report"
echo "installed-tool check passed (PeftSharp.Cli $version: train and compare from $tmp/elsewhere)"
