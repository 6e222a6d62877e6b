#!/usr/bin/env bash
# Fetches the header tree of a libtorch 2.x with CUDA (Debian trixie's libtorch-cuda-dev
# 2.6, contrib) into build/torch2/, for the include-only compile check
# (cmake/torch2-check.cmake). libtorch-cuda-dev carries every header of libtorch-dev
# (which it Replaces/Conflicts) plus the CUDA ones (c10/cuda, ATen/cuda/CUDAConfig.h,
# THC), so it alone is unpacked: unpacking libtorch-dev over it would replace the CUDA
# build's generated headers with the CPU build's.
#
# Nothing is installed: `apt-get download` runs against a PRIVATE apt state (its own
# sources.list with trixie main contrib, its own lists, cache and dpkg status under
# build/torch2-apt/), and the .debs are unpacked with `dpkg -x`. The system's apt state
# and packages are never touched. Idempotent: a finished unpack (build/torch2/.done) is
# reused.
#
#   bash scripts/torch2-headers.sh            # -> build/torch2/usr/include/{torch,ATen,c10,...}
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/build/torch2"
apt="$PWD/build/torch2-apt"
mirror="${ANOMALYNCD_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
if [[ -f "$root/.done" ]]; then
  echo "torch2-headers: $root already unpacked ($(cat "$root/.done"))"
  exit 0
fi
mkdir -p "$apt/etc/preferences.d" "$apt/etc/apt.conf.d" "$apt/state/lists/partial" "$apt/cache/archives/partial" \
  "$apt/dpkg" "$apt/debs" "$root"
touch "$apt/dpkg/status"
cat >"$apt/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main contrib
EOF
opts=(-o "Dir::Etc::sourcelist=$apt/etc/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::preferencesparts=$apt/etc/preferences.d" -o "Dir::Etc::parts=$apt/etc/apt.conf.d"
  -o "Dir::State=$apt/state" -o "Dir::State::status=$apt/dpkg/status" -o "Dir::Cache=$apt/cache"
  -o "APT::Architecture=amd64" -o "Debug::NoLocking=1" -o "APT::Get::List-Cleanup=0")
# trixie's Release is signed by the trixie archive key; bookworm's keyring carries it
# (debian-archive-keyring 2023.3+deb12u1). The key file is the system's, read only.
apt-get "${opts[@]}" -q update
cd "$apt/debs"
pkgs=(libtorch-cuda-dev)
apt-get "${opts[@]}" -q download "${pkgs[@]}"
for deb in "$apt"/debs/*.deb; do
  echo "torch2-headers: unpacking $(basename "$deb")"
  dpkg -x "$deb" "$root"
done
# Where the header trees are (Debian puts them in /usr/include directly).
test -f "$root/usr/include/torch/csrc/api/include/torch/torch.h" || { echo "torch2-headers: torch/torch.h missing in $root" >&2; exit 1; }
test -f "$root/usr/include/ATen/ATen.h" || { echo "torch2-headers: ATen/ATen.h missing in $root" >&2; exit 1; }
ver=$(grep -h 'TORCH_VERSION_MAJOR\|TORCH_VERSION_MINOR' "$root/usr/include/torch/csrc/api/include/torch/version.h" | awk '{print $3}' | paste -sd.)
echo "libtorch $ver headers: $(ls "$apt"/debs/*.deb | xargs -n1 basename | paste -sd' ')" >"$root/.done"
echo "torch2-headers: $(cat "$root/.done") -> $root"
