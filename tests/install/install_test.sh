#!/usr/bin/env bash
# The installed package as a user gets it: `cmake --install` of the build into a temporary
# prefix; examples/cpp configured and built against it (find_package(pbt CONFIG)) and run;
# pbt.pc used to compile a program; the installed files and `pbt --version` checked.
# Usage: tests/install/install_test.sh BUILD_DIR SOURCE_DIR VERSION   (ctest: install.example)
set -euo pipefail
build=$1 src=$2 version=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pbt-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install test: FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
p=$tmp/prefix
libdir=$(cd "$p" && ls -d lib*/cmake/pbt | sed 's#/cmake/pbt##')
for f in bin/pbt include/pbt/pbt.hpp include/pbt/version.hpp "$libdir/libpbt_core.a" "$libdir/libpbt_store.a" \
         "$libdir/libpbt_report.a" "$libdir/cmake/pbt/pbtConfig.cmake" "$libdir/cmake/pbt/pbtConfigVersion.cmake" \
         "$libdir/cmake/pbt/pbtTargets.cmake" "$libdir/pkgconfig/pbt.pc" share/pbt/python/pbt_trainer.py \
         share/doc/pbt/README.md share/doc/pbt/protocol.md; do
  [ -f "$p/$f" ] || fail "not installed: $f"
done
grep -q "#define PBT_VERSION_STRING \"$version\"" "$p/include/pbt/version.hpp" || fail "version.hpp does not say $version"

# The installed command.
out=$("$p/bin/pbt" --version)
[[ $out == "pbt $version (process protocol "* ]] || fail "pbt --version printed '$out'"

# examples/cpp against the installed package only (the source tree's headers are not on its path).
cmake -S "$src/examples/cpp" -B "$tmp/example" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$p" \
  >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configuring examples/cpp"; }
cmake --build "$tmp/example" -j2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building examples/cpp"; }
"$tmp/example/pbt_example" "$src/examples/cpp/quadratic.toml" "$tmp/q.db" >"$tmp/run.out" 2>&1 ||
  { cat "$tmp/run.out"; fail "running examples/cpp"; }
cat "$tmp/run.out"
[ -f "$tmp/example/libbatch_rule.so" ] || fail "examples/cpp built no libbatch_rule.so (the explore plugin)"
grep -q "^built against pbt $version; linked: pbt $version " "$tmp/run.out" || fail "no version line"
# 4 members x 40 steps at interval 5: 32 intervals, all by the one worker.
grep -q "^worker: 32 intervals, " "$tmp/run.out" || fail "the worker did not run all 32 intervals"
# x climbs from 0 toward 3: the best member ends close to it (score -(x-3)^2 near 0, at the budget).
line=$(grep "^best: member " "$tmp/run.out") || fail "no best member printed"
score=$(sed -E 's/.*score ([^ ]+) at step 40,.*/\1/' <<<"$line")
[[ $line == *" at step 40, h: lr="* ]] || fail "best member not at step 40: $line"
awk -v s="$score" 'BEGIN { exit !(s <= 0 && s > -1) }' || fail "best score $score not in (-1, 0]"
[ -f "$tmp/q.db" ] || fail "no SQLite store written"

# pkg-config: compile and link a program from pbt.pc alone.
# A trainable plugin built against the installed package (pbt::plugin_api), run by the
# installed pbt with two workers.
mkdir -p "$tmp/plugin"
cp "$src/tests/plugins/quadratic_plugin.cpp" "$tmp/plugin/"
cat >"$tmp/plugin/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(quadratic_plugin CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(pbt CONFIG REQUIRED)
add_library(quadratic MODULE quadratic_plugin.cpp)
target_link_libraries(quadratic PRIVATE pbt::plugin_api)
CMAKE
cmake -S "$tmp/plugin" -B "$tmp/plugin/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$p" \
  >"$tmp/plugin.log" 2>&1 || { cat "$tmp/plugin.log"; fail "configuring a plugin against the package"; }
cmake --build "$tmp/plugin/build" >>"$tmp/plugin.log" 2>&1 || { cat "$tmp/plugin.log"; fail "building the plugin"; }
cat >"$tmp/plugin/quad.toml" <<'TOML'
name = "quad"
seed = 3
population = 4

[trainable]
kind = "quadratic"
plugin = "build/libquadratic.so"
target = 3.0

[budget]
steps = 40

[ready]
interval = 5

[space.lr]
type = "float"
low = 0.01
high = 0.4
TOML
"$p/bin/pbt" run "$tmp/plugin/quad.toml" --run "$tmp/plugin/run" --workers 2 --quiet >"$tmp/plugin-run.out" 2>&1 ||
  { cat "$tmp/plugin-run.out"; fail "the installed pbt running the plugin"; }
grep -q "4/4 members reached the budget" "$tmp/plugin-run.out" || { cat "$tmp/plugin-run.out"; fail "plugin run unfinished"; }

cat >"$tmp/pc.cpp" <<'CPP'
#include <iostream>
#include <pbt/version.hpp>
int main() { std::cout << pbt::version_text() << "\n"; }
CPP
pcflags=$(PKG_CONFIG_PATH="$p/$libdir/pkgconfig" pkg-config --cflags --libs pbt) || fail "pkg-config pbt"
[ "$(PKG_CONFIG_PATH="$p/$libdir/pkgconfig" pkg-config --modversion pbt)" = "$version" ] || fail "pbt.pc version"
# shellcheck disable=SC2086
c++ -std=c++17 "$tmp/pc.cpp" -o "$tmp/pc" $pcflags || fail "compiling with pkg-config's flags"
[[ $("$tmp/pc") == "pbt $version "* ]] || fail "the pkg-config program printed '$("$tmp/pc")'"
echo "install test: ok"
