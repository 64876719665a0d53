#!/usr/bin/env bash
# Installs every Debian package strata needs to build, test and benchmark.
# Idempotent: when everything is present it prints nothing and touches nothing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  libfuse3-dev libarchive-dev libzstd-dev libisal-dev zlib1g-dev libssl-dev liblmdb-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libcurl4-openssl-dev
  nlohmann-json3-dev libcli11-dev libcap-dev liburing-dev
  # run
  fuse3 ca-certificates
  # tests, interop peers and fixtures
  busybox-static skopeo umoci runc python3 tar gzip zstd xz-utils attr file
  # registry tests: a real registry, bcrypt htpasswd, test CAs, raw HTTP
  docker-registry apache2-utils openssl curl
  # a private network namespace for the registry on a non-loopback address (ip, ss; unshare, nsenter)
  iproute2 util-linux
  # benchmarks
  hyperfine time linux-perf fuse-overlayfs fio
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
