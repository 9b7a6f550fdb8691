#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of untrusted bytes (SharpFuzz + afl++).
#   bash scripts/fuzz.sh [EXECS] [TARGET...]      default: 100000 executions of every target, one after another
# Needs: apt-get install afl++; dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
# Writes fuzz/findings/TARGET/ (afl's queue, crashes, hangs) and appends one line per run to fuzz/fuzz-log.tsv:
#   date  target  execs_done  crashes  hangs  seconds  execs_per_sec
# Replay a finding outside the fuzzer with: fuzz/replay/PeftSharp.Fuzz TARGET fuzz/findings/TARGET/default/crashes/id:*
set -euo pipefail
cd "$(dirname "$0")/.."
EXECS=${1:-100000}; shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(safetensors index config tokenizer tokenizer-config jinja pretok-regex adapter-config jsonl yaml bnb)
MAX_SECONDS=${FUZZ_MAX_SECONDS:-900}     # per target, whatever EXECS says
export PATH="$PATH:$HOME/.dotnet/tools"
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 1; }
command -v sharpfuzz >/dev/null || { echo "sharpfuzz not found: dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0" >&2; exit 1; }

# fuzz/replay: plain build to replay inputs (instrumented code only runs inside the fuzzer); fuzz/bin: instrumented.
dotnet build fuzz/PeftSharp.Fuzz -c Release -o fuzz/replay -v quiet -nologo >/dev/null
rm -rf fuzz/bin; cp -r fuzz/replay fuzz/bin
# Instrument our own assemblies (coverage for afl); re-instrumenting is refused by sharpfuzz, so build fresh first.
sharpfuzz fuzz/bin/PeftSharp.dll >/dev/null
sharpfuzz fuzz/bin/peft.dll >/dev/null

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1
export DOTNET_TieredPGO=0 DOTNET_TC_QuickJitForLoops=1
LOG=fuzz/fuzz-log.tsv
[ -f "$LOG" ] || printf 'date\ttarget\texecs_done\tcrashes\thangs\tseconds\texecs_per_sec\n' > "$LOG"
for t in "${TARGETS[@]}"; do
  out=fuzz/findings/$t
  rm -rf "$out"; mkdir -p "$out"
  start=$(date +%s)
  # -t: a harness that runs past 5 s on one input is a hang; -m none: .NET reserves much virtual memory.
  timeout $((MAX_SECONDS + 60)) afl-fuzz -i "fuzz/corpus/$t" -o "$out" -E "$EXECS" -V "$MAX_SECONDS" -t 5000 -m none \
    -- fuzz/bin/PeftSharp.Fuzz "$t" > "$out/afl.log" 2>&1 || true
  stats=$out/default/fuzzer_stats
  if [ -f "$stats" ]; then
    get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$(get execs_done)" "$(get saved_crashes)" "$(get saved_hangs)" \
      "$(( $(date +%s) - start ))" "$(get execs_per_sec)" | tee -a "$LOG"
  else
    echo "$t: afl-fuzz did not start; see $out/afl.log" | tee -a "$LOG"; tail -5 "$out/afl.log"
  fi
done
