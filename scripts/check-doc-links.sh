#!/usr/bin/env bash
# Fails, naming the file, line and link, when a relative link in the
# documentation points at nothing: README.md, SECURITY.md, bench/*.md and
# docs/**/*.md. A link [text](path) must name a file or directory of the
# checkout (relative to the linking file); a fragment (path#heading, or
# #heading in the same file) of a Markdown file must be one of its headings,
# as GitHub makes anchors of them (lower case, punctuation dropped, spaces to
# dashes). Links with a scheme (https:, mailto:) and links inside code are not
# checked.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
shopt -s nullglob globstar
files=(README.md SECURITY.md bench/*.md docs/**/*.md)

# GitHub's anchors of a Markdown file's headings, one a line.
anchors() {
  LC_ALL=C awk '/^```/ {f = !f; next}
       !f && /^#+ / {
         h = $0; sub(/^#+ +/, "", h); sub(/ +#*$/, "", h); h = tolower(h)
         gsub(/[^a-z0-9 _\-\200-\377]/, "", h); gsub(/ /, "-", h)
         n[h]++; print (n[h] > 1 ? h "-" (n[h] - 1) : h)
       }' "$1"
}

bad=0
checked=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  dir=$(dirname "$f")
  # file<TAB>line<TAB>target for every [text](target) outside code.
  while IFS=$'\t' read -r line target; do
    checked=$((checked + 1))
    path=${target%%#*}
    frag=
    [[ $target == *"#"* ]] && frag=${target#*#}
    if [ -z "$path" ]; then
      dest=$f
    else
      dest=$dir/$path
      if [ ! -e "$dest" ]; then
        echo "$f:$line: link to $target: no such file ($(realpath -m --relative-to=. "$dest"))"
        bad=1
        continue
      fi
    fi
    if [ -n "$frag" ] && [[ $dest == *.md ]] && [ -f "$dest" ]; then
      if ! anchors "$dest" | grep -qxF -- "$frag"; then
        echo "$f:$line: link to $target: $(realpath -m --relative-to=. "$dest") has no heading #$frag"
        bad=1
      fi
    fi
  done < <(awk '/^```/ {f = !f; next}
                !f {
                  s = $0; gsub(/`[^`]*`/, "", s)
                  while (match(s, /\]\([^) \t]+\)/)) {
                    t = substr(s, RSTART + 2, RLENGTH - 3); s = substr(s, RSTART + RLENGTH)
                    if (t !~ /^[a-zA-Z][a-zA-Z0-9+.-]*:/) print FNR "\t" t
                  }
                }' "$f")
done
if [ "$bad" -ne 0 ]; then
  echo "check-doc-links: broken relative links (above)" >&2
  exit 1
fi
echo "check-doc-links: ${#files[@]} files, $checked relative links, all resolve"
