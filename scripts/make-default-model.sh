#!/usr/bin/env bash
# Re-creates the embedded default model (assets/default-model) and the demo task (assets/demo/*.jsonl) from the
# King James Bible (public domain, Debian's bible-kjv). About 15 minutes on 2 cores. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bible >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bible-kjv; }
mkdir -p build assets/demo
bible -l 100000 "Gen1:1-Rev22:21" > build/kjv-dump.txt
python3 scripts/kjv_corpus.py build/kjv-dump.txt build assets

dotnet build -c Release src/PeftSharp.Cli >/dev/null
# A copy of the tool, so that rebuilding the project meanwhile cannot disturb the long pretraining run.
rm -rf build/peft && cp -r src/PeftSharp.Cli/bin/Release/net10.0 build/peft
peft() { dotnet build/peft/peft.dll "$@"; }

peft train-tokenizer --corpus build/kjv.txt --vocab-size 2048 --out build/init
peft init-model --config assets/default-model.config.json --tokenizer build/init --out build/init
rm -rf build/pretrain
peft train --config assets/pretrain.yaml --task-eval 0
rm -rf assets/default-model
peft convert build/pretrain/model --dtype bf16 --out assets/default-model
peft inspect assets/default-model
