#!/usr/bin/env bash
# Formats C++ files in the style of .clang-format, or checks them.
#   scripts/format.sh [FILE...]           rewrite the files (default: every tracked .cpp/.hpp)
#   scripts/format.sh --check [FILE...]   change nothing; list the files that differ, exit 1 if any
# Needs clang-format (Debian: clang-format; the style is written for version 14 and later).
set -euo pipefail
cd "$(dirname "$0")/.."

check=""
if [ "${1:-}" = "--check" ]; then
  check=yes
  shift
fi
if ! command -v clang-format >/dev/null 2>&1; then
  echo "format.sh: clang-format not found (Debian: apt-get install clang-format)" >&2
  exit 2
fi
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
fi

if [ -z "$check" ]; then
  clang-format -i --style=file "${files[@]}"
  exit 0
fi
differ=0
for f in "${files[@]}"; do
  if ! clang-format --style=file "$f" | cmp -s - "$f"; then
    echo "$f"
    differ=1
  fi
done
[ "$differ" -eq 0 ] || echo "format.sh: these files differ from .clang-format's style (scripts/format.sh FILE... fixes them)" >&2
exit "$differ"
