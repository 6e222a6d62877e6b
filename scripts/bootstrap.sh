#!/usr/bin/env bash
# One-time set-up on a fresh Debian 12 machine (root) or a prepared one:
# system packages, npm dependencies, the native addon, the TypeScript build.
# Idempotent: steps whose results are present are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(cmake g++ make libtorch-dev libopencv-dev libpng-dev)
# Test oracles (Debian's builds of the reference's Python stack); clang for the fuzz smoke.
APT_TEST_PACKAGES=(python3-numpy python3-opencv python3-pil python3-sklearn python3-torch chromium clang-14 libclang-rt-14-dev)

missing=()
want=("${APT_PACKAGES[@]}")
[ "${ANOMALYNCD_TEST_DEPS:-1}" = 1 ] && want+=("${APT_TEST_PACKAGES[@]}")
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: please install: ${missing[*]} (apt-get, as root)" >&2
    exit 1
  fi
  echo "bootstrap: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules/node-addon-api ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  node scripts/install.mjs
fi
npm run --silent build:ts
