#!/usr/bin/env bash
# Installs dependencies, builds strata with warnings as errors, and runs every test: unit and
# integration tests on the regular build, then the unit tests again under ASan+UBSan.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
jobs=$(nproc)

scripts/install-deps.sh

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
# strata mount turns the fuse module's enable_uring on (docs/ARCHITECTURE.md, "FUSE over
# io_uring"); the machine is left with the setting it had.
uring_param=/sys/module/fuse/parameters/enable_uring
if [ -w "$uring_param" ]; then
  uring_saved=$(cat "$uring_param")
  trap 'echo "$uring_saved" > "$uring_param"' EXIT
fi
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTRATA_WERROR=ON -DSTRATA_SANITIZE=ON >/dev/null
# Only the unit-test binaries: the integration tests already ran on the regular build.
unit_targets=$(cmake --build build-asan --target help | sed -n 's/^\.\.\. \([A-Za-z0-9_]*_test\)$/\1/p')
# shellcheck disable=SC2086
cmake --build build-asan -j"$jobs" --target $unit_targets
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit
