#!/usr/bin/env bash
# Fails, naming the files, when a C++ source differs from what clang-format
# (.clang-format at the root) would make of it. `make format` fixes them.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 1; }
mapfile -d '' files < <(find src tests fuzz bench \( -name '*.cpp' -o -name '*.h' \) -print0 | sort -z)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "check-format: not formatted (run 'make format'): ${bad[*]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
