#!/usr/bin/env bash
# Package the Chalice app with infra/resources.json merged in, finish the template, lint it.
#
#   scripts/package.sh [STAGE=prod] [OUT_DIR=build/package]
#
# Steps (see infra/README.md):
#   1. chalice package --merge-template infra/resources.json   (Chalice emits SAM: build/package/sam.json)
#   2. python -m local.cfn finalize   Stage default = STAGE, ASL files inlined, Kinesis/SQS event sources
#                                     wired to the template's stream/queues (the stream's failure handling:
#                                     retries, bisection, record age, on-failure queue), each function given its
#                                     own role, name and log group (Chalice's shared DefaultRole removed)
#   3. python -m scripts.bytecode     the zip's modules compiled for the template's runtime (read-only /var/task:
#                                     no bytecode cache at run time, so a cold start would compile every import)
#   4. cfn-lint                       against the China regions; any error or warning fails the script
#
# Environment: DYJ_PROJECT_DIR  Chalice project to package (default: the repository root)
#              DYJ_LINT_REGIONS regions to lint for (default: "cn-north-1 cn-northwest-1")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAGE="${1:-prod}"
OUT="${2:-build/package}"
PROJECT_DIR="${DYJ_PROJECT_DIR:-$ROOT}"
read -r -a LINT_REGIONS <<< "${DYJ_LINT_REGIONS:-cn-north-1 cn-northwest-1}"
# chalice package refuses to run without a region; it makes no AWS call.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-cn-north-1}"

if [[ -x "$ROOT/.venv/bin/chalice" ]]; then
  PATH="$ROOT/.venv/bin:$PATH"
fi

cd "$PROJECT_DIR"
chalice package --stage "$STAGE" --merge-template "$ROOT/infra/resources.json" "$OUT"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  python -m local.cfn finalize "$OUT/sam.json" --stage "$STAGE" --infra-dir "$ROOT/infra"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python -m scripts.bytecode "$OUT/deployment.zip" "$OUT/sam.json"
cfn-lint --regions "${LINT_REGIONS[@]}" -- "$OUT/sam.json"
echo "packaged and linted: $PROJECT_DIR/$OUT/sam.json"
