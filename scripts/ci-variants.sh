#!/usr/bin/env bash
# CI's other builds, after scripts/test.sh has built and tested everything (CMakePresets.json):
#   asan     no LibTorch; AddressSanitizer and UndefinedBehaviorSanitizer: the unit and store
#            tests, PostgreSQL included (a throwaway server, as scripts/test.sh starts one)
#   minimal  no LibTorch, no PostgreSQL, warnings as errors: the libraries, pbt and the unit
#            tests compile (not the store, e2e, fault or browser tests, which the main job and
#            asan build: CI stays well under 30 min), the unit tests pass
# Usage: scripts/ci-variants.sh [asan] [minimal]   (default: both). Build directories:
# build-asan/ and build-minimal/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(asan minimal)

asan() {
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j"$jobs"            # pbt_unit_tests and pbt_store_tests only
  # Stricter than the defaults: use after return, string arguments checked whole. A finding
  # stops the process (the build halts on UBSan findings too), so its test fails; the children
  # the store tests fork check themselves the same way.
  ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan -j2 --timeout 600
}

minimal() {
  cmake --preset minimal >/dev/null
  cmake --build --preset minimal -j"$jobs"
  ctest --preset minimal -j2 --timeout 600
}

source scripts/pg-for-tests.sh
for v in "${variants[@]}"; do
  case "$v" in
    asan) pbt_pg_for_tests ;;&
    asan|minimal)
      start=$SECONDS
      echo "ci-variants: $v"
      "$v"
      echo "ci-variants: $v passed in $((SECONDS - start)) s"
      ;;
    *) echo "usage: $0 [asan] [minimal]" >&2; exit 2 ;;
  esac
done
