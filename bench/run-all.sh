#!/usr/bin/env bash
# Runs every benchmark against its anchors, one after the other.
# Usage: bench/run-all.sh [CLOUDKEEP]   (results: bench/RESULTS.md)
set -uo pipefail
CK=$(readlink -f "${1:-build/src/cli/cloudkeep}")
here=$(dirname "$0")
rc=0
for b in snapshot chunk-size consistency latency aws-prune mail-spf mail-audit nbd; do
  [ -f "$here/$b.sh" ] || continue
  echo "=== bench/$b.sh"
  case "$b" in
    latency) CLOUDKEEP="$CK" bash "$here/$b.sh" "$CK" || rc=1 ;;
    mail-spf) CLOUDKEEP="$CK" bash "$here/$b.sh" || rc=1 ;;
    *) bash "$here/$b.sh" "$CK" || rc=1 ;;
  esac
done
exit $rc
