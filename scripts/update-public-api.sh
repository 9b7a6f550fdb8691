#!/usr/bin/env bash
# Brings src/PeftSharp/PublicAPI.Unshipped.txt in line with the public surface after a deliberate API change: adds
# what the Public API analyzer reports as undeclared (RS0016) and drops what it reports as gone (RS0017). Review the
# diff: every line is a promise to users.
set -euo pipefail
cd "$(dirname "$0")/.."
api=src/PeftSharp/PublicAPI.Unshipped.txt
log=$(mktemp)
dotnet build -c Release src/PeftSharp --no-incremental -p:TreatWarningsAsErrors=false >"$log" 2>&1 || true
python3 - "$log" "$api" <<'PY'
import re, sys
log, api = open(sys.argv[1]).read(), sys.argv[2]
add = set(re.findall(r"RS0016: Symbol '(.*?)' is not part of the declared public API", log))
gone = set(re.findall(r"RS0017: Symbol '(.*?)' is part of the declared API", log))
lines = [l for l in open(api).read().splitlines() if l.strip() and l != '#nullable enable']
keep = sorted((set(lines) - gone) | add)
open(api, 'w').write('#nullable enable\n' + ''.join(l + '\n' for l in keep))
print(f"public API: +{len(add)} -{len(gone)} ({len(keep)} declared)")
PY
