#!/usr/bin/env bash
# Fails when the manuals (docs/manual/cloudkeep*.md) and `--help` drift apart,
# naming the file and the option:
#   1. every long option that `cloudkeep --help`, `cloudkeep GROUP --help` or
#      `cloudkeep GROUP [SUBGROUP] COMMAND --help` prints must be documented in
#      that group's manual, under the command's heading (`## cloudkeep GROUP
#      COMMAND`; `# OPTIONS` of cloudkeep.md for the global options and of
#      cloudkeep-GROUP.md for a group's own), as a definition-list term:
#          `-v`, `--volume VOLUME`
#          :   Only snapshots of this volume (repeatable).
#   2. every option a manual documents that way must exist in that command's
#      --help, and every `cloudkeep …` heading must name a command;
#   3. every top-level group has a manual, and every command a section;
#   4. every `--flag` on a `cloudkeep …` command line inside a code block of
#      README.md or a manual must be an option of that command (or global);
#   5. each manual starts with its pandoc title block (`% CLOUDKEEP-GROUP(1)`)
#      and, when pandoc is installed, renders as a man page (under CI=true a
#      missing pandoc is a failure, as for the other tests' components).
# usage: scripts/check-manuals.sh [path/to/cloudkeep]   (default build/src/cli/cloudkeep)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ck=${1:-$root/build/src/cli/cloudkeep}
manuals=$root/docs/manual
if [ ! -x "$ck" ]; then
  echo "check-manuals: no cloudkeep binary at $ck (give its path)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The command tree: one line per command, "PATH<TAB>leaf|group<TAB>--flag --flag …",
# PATH the words after "cloudkeep" ("" for cloudkeep itself).
walk() {
  local help subs flags kind=leaf
  if ! help=$("$ck" "$@" --help 2>&1); then
    echo "check-manuals: 'cloudkeep $* --help' failed" >&2
    return 1
  fi
  # Options: lines of the form "  -v,--volume TEXT ...": the long names of the first field.
  flags=$(awk '/^[A-Za-z].*:$/ {sec=$0; next}
               sec == "Options:" && /^  -/ {
                 n = split($1, names, ",")
                 for (i = 1; i <= n; i++) if (names[i] ~ /^--/) { sub(/=.*/, "", names[i]); printf "%s ", names[i] }
               }' <<<"$help")
  subs=$(awk '/^[A-Za-z].*:$/ {sec=$0; next} sec == "Subcommands:" && /^  [a-z]/ {print $1}' <<<"$help")
  [ -n "$subs" ] && kind=group
  printf '%s\t%s\t%s\n' "$*" "$kind" "$flags"
  local s
  for s in $subs; do walk "$@" "$s" || return 1; done
}
walk >"$work/tree" || exit 1

shopt -s nullglob
mdfiles=("$manuals"/cloudkeep*.md)
fail=0
if [ "${#mdfiles[@]}" -eq 0 ]; then
  echo "check-manuals: no manuals in docs/manual" >&2
  exit 1
fi

# 5. title blocks, and the man pages pandoc makes of them.
for f in "${mdfiles[@]}"; do
  name=$(basename "$f" .md)
  want="% ${name^^}(1)"
  first=$(head -n 1 "$f")
  if [ "$first" != "$want" ]; then
    echo "${f#"$root"/}:1: the first line must be the pandoc title block '$want', not '$first'"
    fail=1
  fi
done
if command -v pandoc >/dev/null 2>&1; then
  for f in "${mdfiles[@]}"; do
    if ! err=$(pandoc --standalone --from markdown-smart-tex_math_dollars-citations-subscript-superscript \
      --to man "$f" -o "$work/page.1" 2>&1) || [ -n "$err" ]; then
      echo "${f#"$root"/}: pandoc cannot make a man page of it: $err"
      fail=1
    fi
  done
elif [ "${CI:-}" = true ]; then
  echo "check-manuals: pandoc is not installed (scripts/install-deps.sh test installs it)"
  fail=1
else
  echo "check-manuals: pandoc not installed: man pages not checked" >&2
fi

# 1-4. One awk program over the command tree, the manuals and the README.
awk -v root="$root/" -F'\t' '
function rel(f) { return substr(f, 1, length(root)) == root ? substr(f, length(root) + 1) : f }
function bad(msg) { print msg; failed = 1 }
function name(p) { return p == "" ? "cloudkeep" : "cloudkeep " p }
# The manual of a command path, and the heading that holds its options.
function manual_of(p,   w) { split(p, w, " "); return p == "" ? "docs/manual/cloudkeep.md" : "docs/manual/cloudkeep-" w[1] ".md" }
function section_of(p) { return p !~ / / ? "# OPTIONS" : "## cloudkeep " p }
function known(p, f) { return f == "--help" || ((p SUBSEP f) in help) || (("" SUBSEP f) in help) }
# A definition-list term seen on the line before: kept once a ":" line follows.
function commit(   i) { for (i = 1; i <= npend; i++) {
    documented[psec SUBSEP pend[i]] = 1
    if (pend[i] != "--help" && !((psec SUBSEP pend[i]) in help))
      bad(file ":" pline ": " name(psec) ": documents " pend[i] ", which its --help does not list")
  } npend = 0 }
FNR == 1 { file = rel(FILENAME); fence = 0; insec = 0; npend = 0; tree = (FILENAME ~ /\/tree$/) }
tree {
  cmd[$1] = $2; n = split($3, fl, " ")
  for (i = 1; i <= n; i++) if (fl[i] != "--help") help[$1 SUBSEP fl[i]] = 1
  if ($1 != "" && $1 !~ / /) group[$1] = 1
  next
}
/^```/ { fence = !fence; npend = 0; next }
fence {
  # 4. example and synopsis lines: [… ]cloudkeep [GLOBAL…] GROUP [COMMAND…] [ARGS…]
  if (!match($0, /(^|[ $(])cloudkeep( |$)/)) next
  nt = split(substr($0, RSTART + RLENGTH), t, /[ \t]+/)
  i = 1
  for (; i <= nt && !(t[i] in group); i++) {
    if (t[i] ~ /^[#;]|^&&$/) break
    if (match(t[i], /^[[(]?--[a-z0-9][a-z0-9-]*/)) {
      f = substr(t[i], RSTART, RLENGTH); sub(/^[[(]/, "", f)
      if (!(("" SUBSEP f) in help) && f != "--help") bad(file ":" FNR ": cloudkeep: " f " is not a global option (cloudkeep --help does not list it)")
    }
  }
  if (i > nt || !(t[i] in group)) next
  p = t[i++]
  for (; i <= nt && cmd[p] == "group" && ((p " " t[i]) in cmd); i++) p = p " " t[i]
  if (cmd[p] == "group") next
  for (; i <= nt; i++) {
    if (t[i] ~ /^(#|;|&&|\|\||>|2>)/) break
    if (t[i] == "|" && t[i + 1] !~ /^[[(]?-/) break
    if (!match(t[i], /^[[(]?--[a-z0-9][a-z0-9-]*/)) continue
    f = substr(t[i], RSTART, RLENGTH); sub(/^[[(]/, "", f)
    if (!known(p, f)) bad(file ":" FNR ": " name(p) ": " f " is not an option of this command (its --help does not list it)")
  }
  next
}
file !~ /^docs\/manual\// { next }
/^[ \t]*$/ { next }
npend && /^:/ { commit() }
{ npend = 0 }
/^#+ / {
  level = match($0, /[^#]/) - 1; title = substr($0, level + 2)
  if (insec && level <= seclevel) insec = 0
  if (title ~ /^cloudkeep / || title == "OPTIONS") {
    if (title == "OPTIONS") { p = file; sub(/^docs\/manual\/cloudkeep-?/, "", p); sub(/\.md$/, "", p) }
    else p = substr(title, 11)
    if (!(p in cmd) || manual_of(p) != file) { bad(file ":" FNR ": heading \"" $0 "\" names no command of this manual"); next }
    insec = 1; sec = p; seclevel = level; has_section[p] = 1
  }
  next
}
# 1-2. a definition-list term: code spans, the first one an option; its ":" line follows.
insec && /^`-[^`]*`(, `-[^`]*`)*[ \t]*$/ {
  rest = $0; psec = sec; pline = FNR
  while (match(rest, /--[a-z0-9][a-z0-9-]*/)) { pend[++npend] = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH) }
}
END {
  for (g in group) {
    f = manual_of(g)
    if (system("test -f \"" root f "\"") != 0) bad(f ": missing: the manual of the group \"" g "\" that cloudkeep --help lists")
  }
  for (p in cmd)
    if (p ~ / / && cmd[p] == "leaf" && !(p in has_section)) bad(manual_of(p) ": no section \"## cloudkeep " p "\" for that command")
  for (k in help) {
    split(k, kp, SUBSEP)
    if (!(k in documented)) bad(manual_of(kp[1]) ": " name(kp[1]) ": " kp[2] " is in --help but not documented under \"" section_of(kp[1]) "\"")
  }
  exit failed
}' "$work/tree" "${mdfiles[@]}" "$root/README.md" | sort >"$work/report"
[ "${PIPESTATUS[0]}" -ne 0 ] && fail=1
if [ -s "$work/report" ]; then
  cat "$work/report"
  fail=1
fi
if [ "$fail" -ne 0 ]; then
  echo "check-manuals: the manuals and --help disagree (fix the manual in docs/manual, or the --help text)" >&2
  exit 1
fi
echo "check-manuals: $(wc -l <"$work/tree") commands, ${#mdfiles[@]} manuals: every option in both"
