#!/usr/bin/env bash
# Checks what docs/STYLE.md says a script can check: clang-format clean,
# files under 800 lines, a prose comment at the top of every source file.
set -u
cd "$(dirname "$0")/.."
fail=0
for f in $(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c'); do
  n=$(wc -l <"$f")
  if [ "$n" -gt 800 ]; then echo "$f: $n lines (limit 800)"; fail=1; fi
  if ! head -1 "$f" | grep -q '^/\*'; then echo "$f: no comment at the top"; fail=1; fi
  if command -v clang-format >/dev/null && ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "$f: not clang-formatted (clang-format -i $f)"; fail=1
  fi
done
[ $fail -eq 0 ] && echo "style: ok"
exit $fail
