#!/usr/bin/env bash
# The test command: installs what the chosen suite needs, then runs it with node --test.
#   bash scripts/test.sh all|unit|integration|e2e   (npm test = all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
suite="${1:-all}"
case "$suite" in all | unit | integration | e2e) ;; *) echo "usage: test.sh all|unit|integration|e2e" >&2; exit 2 ;; esac

source scripts/lib/ensure-deps.sh

files=()
if [[ "$suite" == all ]]; then
  echo "test: lint"
  npm run --silent lint
fi
if [[ "$suite" != unit ]]; then
  bash scripts/bootstrap.sh --test
  node scripts/images.ts
  bash scripts/sweep.sh
  trap 'bash scripts/sweep.sh' EXIT
  export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost
fi
case "$suite" in
  all) files=("test/unit/**/*.test.ts" "test/integration/**/*.test.ts" "test/e2e/**/*.test.ts") ;;
  *) files=("test/$suite/**/*.test.ts") ;;
esac
# One test file at a time: the Docker tests measure timing and load on a shared engine.
node --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 "${files[@]}"
