#!/usr/bin/env bash
# Installs the Debian packages pbt needs (when missing), configures and builds.
# Usage: scripts/setup.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}

PACKAGES=(build-essential cmake pkg-config git clang-format
  libsqlite3-dev sqlite3 libssl-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libboost-math-dev libeigen3-dev libgtest-dev libgmock-dev python3
  libpq-dev postgresql iproute2 openmpi-bin
  slurmctld slurmd slurm-client munge             # tests/slurm: a one-node Slurm cluster runs the README's sbatch recipe
  libcpp-httplib-dev chromium
  libtorch-dev libopenblas0-serial                 # the LibTorch trainables; OpenBLAS: 3-4x faster than the reference BLAS libtorch-dev pulls in
  python3-torch python3-sklearn python3-optuna     # the process protocol's Python example and bench
  python3-pip python3-setuptools python3-wheel python3-venv)  # `pip install --no-build-isolation ./python`, offline

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
