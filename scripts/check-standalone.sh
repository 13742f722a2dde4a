#!/usr/bin/env bash
# Fails, naming each file and line, when something in the repository refers
# to a path outside it — above all the developers' sibling directory that
# once held the conformance suites and the design document (now
# tests/conformance/ and docs/design.md). A clone in any directory must build
# and pass on its own. Checked in every tracked file (every file, outside
# build directories, when this is not a git checkout):
#   1. the sibling directory by name: ..⁄shared (the team's folder beside the
#      checkout, spelt here with a fraction slash so this file does not match itself), shared/conformance (also
#      DESIGN.md, STYLE.md, hooks under it), and the C++ form ".." / "shared";
#   2. a climb above a path that names the repository root: CK_SOURCE_DIR,
#      PROJECT_SOURCE_DIR, CMAKE_SOURCE_DIR or $(CURDIR) followed by /..;
#      in C++ files that build paths from CK_SOURCE_DIR, any string literal
#      that starts with ".." or "/..";
#   3. a climb above the root from the file's own directory: $(dirname "$0"),
#      $(dirname "${BASH_SOURCE[0]}"), ${CMAKE_CURRENT_SOURCE_DIR} or
#      ${CMAKE_CURRENT_LIST_DIR} followed by more /.. than the file is deep;
#   4. an absolute path into this checkout (its own location, which no
#      other clone shares);
#   5. a symbolic link whose target lies outside the repository.
# Paths inside test data (a "/a/../b" in an HTTP request to be signed) are
# not references and are not flagged: only the forms above are.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
self="scripts/check-standalone.sh"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files that exist in the work tree (a deletion not yet committed is not a reference).
  mapfile -d '' files < <(git ls-files -z --cached | while IFS= read -r -d '' f; do
    [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
  done)
else
  mapfile -d '' files < <(find . \( -name .git -o -name node_modules -o -path ./bench/work \
    -o -path './build*' -o -path ./out \) -prune -o \( -type f -o -type l \) -printf '%P\0' | sort -z)
fi

bad=()
declare -A seen  # one report per file:line, the first reason found
report() {
  local key=${1%%: *}
  [[ $1 =~ ^[^:]+:[0-9]+: ]] && key=${BASH_REMATCH[0]}
  [ -n "${seen[$key]:-}" ] && return
  seen[$key]=1
  bad+=("$1")
}

# Matches of one Perl regex in the given files, as "file:line: text" (binary files skipped).
grep_lines() {
  local re=$1
  shift
  [ "$#" -gt 0 ] || return 0
  printf '%s\0' "$@" | xargs -0 grep -nHIP -- "$re" 2>/dev/null || true
}

regular=()
for f in "${files[@]}"; do
  [ "$f" = "$self" ] && continue
  if [ -L "$f" ]; then
    # 5. symbolic links: resolve lexically against the link's directory.
    target=$(readlink "$f")
    case "$target" in
      /*) resolved=$(realpath -m "$target") ;;
      *) resolved=$(realpath -m "$root/$(dirname "$f")/$target") ;;
    esac
    case "$resolved" in
      "$root" | "$root"/*) ;;
      *) report "$f: symbolic link to $target, outside the repository" ;;
    esac
    continue
  fi
  [ -f "$f" ] && regular+=("$f")
done

seg='/\.\.(?=[/"'"'"'\s)}:;]|$)'  # one "/.." path segment

# 1. the sibling directory by name.
while IFS= read -r hit; do
  [ -n "$hit" ] && report "$hit"
done < <(grep_lines '\.\.[/]shared\b|(?<![\w.-])shared/(conformance|DESIGN\.md|STYLE\.md|hooks)\b|"\.\."\s*/\s*"shared"' "${regular[@]}")

# 2. climbs above the root.
while IFS= read -r hit; do
  [ -n "$hit" ] && report "$hit"
done < <(grep_lines '(CK_SOURCE_DIR|PROJECT_SOURCE_DIR|CMAKE_SOURCE_DIR|CURDIR)(?::-[^}]*\}|[})])?"?'"$seg" "${regular[@]}")
cxx_rooted=()
for f in "${regular[@]}"; do
  case "$f" in
    *.cpp | *.cc | *.h | *.hpp) grep -q CK_SOURCE_DIR "$f" && cxx_rooted+=("$f") ;;
  esac
done
while IFS= read -r hit; do
  [ -n "$hit" ] && report "$hit"
done < <(grep_lines '"/?\.\.(/[^"]*)?"' "${cxx_rooted[@]}")

# 3. climbs above the root from the file's own directory, deeper than the file.
anchor='(\$\(dirname\s+"?\$(0|\{?BASH_SOURCE(\[0\])?\}?)"?\)|\$\{CMAKE_CURRENT_(SOURCE|LIST)_DIR\})"?'
mapfile -t anchored < <(grep_lines "$anchor$seg" "${regular[@]}" | cut -d: -f1 | sort -u)
for f in "${anchored[@]}"; do
  dir=$(dirname "$f")
  depth=0
  [ "$dir" != "." ] && depth=$(($(tr -cd / <<<"$dir" | wc -c) + 1))
  while IFS= read -r hit; do
    [ -n "$hit" ] && report "$hit (climbs above the repository root)"
  done < <(grep_lines "$anchor(?:$seg){$((depth + 1)),}" "$f")
done

# 4. absolute paths into this checkout.
while IFS= read -r hit; do
  [ -n "$hit" ] && report "$hit (absolute path of this checkout)"
done < <(grep_lines "(?<![\w.-])\Q$root\E(?![\w.-])" "${regular[@]}")

if [ "${#bad[@]}" -gt 0 ]; then
  echo "check-standalone: ${#bad[@]} reference(s) to paths outside the repository:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "check-standalone: keep test data in tests/, documents in docs/, and paths relative to the checkout" >&2
  exit 1
fi
echo "check-standalone: ${#regular[@]} files refer only to paths inside the repository"
