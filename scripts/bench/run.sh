#!/usr/bin/env bash
# Benchmark of `strata run --rm IMAGE true` end to end (create the container, mount its union
# with stratafs, namespaces, pivot_root, exec, wait, unmount, remove) against, in the same run:
#   runc:     `runc run` of a bundle whose rootfs is a fuse-overlayfs mount of the same image's
#             layers (the mount made once beforehand, not timed; runc's own create/start/delete
#             of the container are), process `true`;
#   unshare:  `unshare -mpf --mount-proc chroot ROOTFS true` on the image extracted to a
#             directory: the floor (namespaces + exec, nothing mounted from a store).
# The image is the busybox demo image (scripts/make-demo-image.sh). Everything (store, layers,
# bundle, upper dirs) lives on a private tmpfs, so disk speed does not enter; the store's fsyncs
# on tmpfs are cheap, which flatters strata a little next to a store on disk (reported too:
# --disk puts the store under /var/tmp instead).
# --writes N: the process writes N files of 16 KiB, each fsynced (dd conv=fsync), instead of
# `true`, and strata also runs it without --rm (its layer kept and synced; the container removed
# afterwards, not timed): what the volatile layer of `run --rm` saves. With --disk the
# fuse-overlayfs upper directory is on the disk too.
#
# Rows: N runs of each, alternating, median and min-max in ms; unpinned, then everything pinned
# to CPU 0 (see /work/shared/BENCHMARKING.md), with `perf bench sched pipe` calibration lines.
# Target (issue 5): strata at most 30 ms, and faster than runc.
# Runs as root; removes everything it made on exit (mounts by path, daemons by PID).
# Usage: scripts/bench/run.sh [--runs N] [--strata PATH] [--disk] [--writes N]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STRATA=$REPO/build/tools/strata
RUNS=30
DISK=0
WRITES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --strata) STRATA=$2; shift 2 ;;
    --disk) DISK=1; shift ;;
    --writes) WRITES=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
for tool in runc fuse-overlayfs unshare perf python3; do
  command -v $tool >/dev/null || { echo "run.sh: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$STRATA" ] || { echo "run.sh: $STRATA not built" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/strata-bench-run.XXXXXX)
FOVL_PID=
cleanup() {
  set +e
  umount "$WORK/t/ovl" 2>/dev/null || umount -l "$WORK/t/ovl" 2>/dev/null
  [ -n "$FOVL_PID" ] && kill "$FOVL_PID" 2>/dev/null
  runc delete -f "strata-bench-$$" >/dev/null 2>&1
  umount "$WORK/t" 2>/dev/null || umount -l "$WORK/t" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/t"
mount -t tmpfs -o size=2g tmpfs "$WORK/t"
T=$WORK/t
export STRATA_ROOT=$T/store
[ "$DISK" = 1 ] && STRATA_ROOT=$WORK/store

"$REPO/scripts/make-demo-image.sh" "$T/demo.tar" >/dev/null 2>&1
"$STRATA" load -q -i "$T/demo.tar" >/dev/null

# The image's layers, extracted for fuse-overlayfs and unshare.
UPPER_BASE=$T
[ "$DISK" = 1 ] && UPPER_BASE=$WORK
CMD=(true)
CMD_LABEL=true
if [ "$WRITES" -gt 0 ]; then
  CMD=(sh -c "i=0; while [ \$i -lt $WRITES ]; do dd if=/bin/busybox of=/tmp/f\$i bs=16k count=1 conv=fsync; i=\$((i + 1)); done")
  CMD_LABEL="($WRITES fsynced writes)"
fi
mkdir -p "$T/oci" "$T/rootfs" "$UPPER_BASE/upper" "$UPPER_BASE/work" "$T/ovl" "$T/bundle"
tar -xf "$T/demo.tar" -C "$T/oci"
lowers=
i=0
for layer in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$T/oci/manifest.json"); do
  i=$((i + 1))
  mkdir -p "$T/layer$i"
  tar -xf "$T/oci/$layer" -C "$T/layer$i"
  tar -xf "$T/oci/$layer" -C "$T/rootfs"
  lowers="$T/layer$i${lowers:+:$lowers}"
done
# In the foreground (-f) and backgrounded by us, so that its PID is known for the cleanup.
fuse-overlayfs -f -o "lowerdir=$lowers,upperdir=$UPPER_BASE/upper,workdir=$UPPER_BASE/work" "$T/ovl" &
FOVL_PID=$!
for _ in $(seq 100); do grep -q " $T/ovl " /proc/mounts && break; sleep 0.05; done
grep -q " $T/ovl " /proc/mounts || { echo "run.sh: fuse-overlayfs did not mount" >&2; exit 1; }
(cd "$T/bundle" && runc spec)
python3 - "$T/bundle/config.json" "$T/ovl" "${CMD[@]}" <<'PY'
import json, sys
path, root, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(path))
c["root"] = {"path": root, "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=2)
PY

calibrate() { perf bench sched pipe -l 20000 2>/dev/null | awk '/usecs\/op/ {print "  calibration: sched pipe " $1 " us/op"}'; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }

declare -A TIMES
measure() {  # measure NAME CMD...: one timed run, appended to TIMES[NAME] (ms)
  local name=$1
  shift
  local t0 t1
  t0=$(now_us)
  "$@" >/dev/null 2>&1 || { echo "run.sh: $name failed: $*" >&2; exit 1; }
  t1=$(now_us)
  TIMES[$name]+="$(( (t1 - t0) ))"$'\n'
}
stats() {  # median min max in ms of TIMES[NAME]
  printf '%s' "${TIMES[$1]}" | python3 -c 'import sys,statistics
v=sorted(int(x)/1000 for x in sys.stdin.read().split())
print("%.1f %.1f %.1f" % (statistics.median(v), v[0], v[-1]))'
}

pass() {
  local label=$1 prefix=$2
  TIMES=()
  # Warm up: first runs load binaries and the store's pages.
  for _ in 1 2 3; do
    $prefix "$STRATA" run --rm strata-demo "${CMD[@]}" >/dev/null 2>&1
    $prefix runc run --bundle "$T/bundle" "strata-bench-$$" >/dev/null 2>&1
    $prefix unshare -mpf --mount-proc chroot "$T/rootfs" "${CMD[@]}" >/dev/null 2>&1
  done
  for _ in $(seq "$RUNS"); do
    measure strata $prefix "$STRATA" run --rm strata-demo "${CMD[@]}"
    if [ "$WRITES" -gt 0 ]; then
      measure kept $prefix "$STRATA" run --name "strata-bench-kept-$$" strata-demo "${CMD[@]}"
      "$STRATA" rm "strata-bench-kept-$$" >/dev/null
    fi
    measure runc $prefix runc run --bundle "$T/bundle" "strata-bench-$$"
    # Each strata run starts from an empty layer; so does runc's next run (not timed): new files
    # cost an inode allocation each, which rewriting the last run's files would not.
    [ "$WRITES" -gt 0 ] && rm -f "$T/ovl"/tmp/f*
    measure unshare $prefix unshare -mpf --mount-proc chroot "$T/rootfs" "${CMD[@]}"
  done
  read -r s_med s_min s_max <<<"$(stats strata)"
  read -r r_med r_min r_max <<<"$(stats runc)"
  read -r u_med u_min u_max <<<"$(stats unshare)"
  echo "$label ($RUNS runs each, ms: median min-max)"
  printf '  %-34s %7s  %s-%s\n' "strata run --rm IMAGE $CMD_LABEL" "$s_med" "$s_min" "$s_max"
  if [ "$WRITES" -gt 0 ]; then
    read -r k_med k_min k_max <<<"$(stats kept)"
    printf '  %-34s %7s  %s-%s\n' "strata run IMAGE (layer kept)" "$k_med" "$k_min" "$k_max"
  fi
  printf '  %-34s %7s  %s-%s\n' "runc run (fuse-overlayfs rootfs)" "$r_med" "$r_min" "$r_max"
  printf '  %-34s %7s  %s-%s\n' "unshare -mpf chroot (floor)" "$u_med" "$u_min" "$u_max"
  python3 -c "import sys; s,r,u=map(float,sys.argv[1:]); print('  ratio strata/runc %.2f   strata/unshare %.1f   target: strata <= 30 ms and < runc' % (s/r, s/u))" "$s_med" "$r_med" "$u_med"
}

echo "strata run benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), store on $([ "$DISK" = 1 ] && echo "disk (/var/tmp)" || echo tmpfs), process: $CMD_LABEL"
calibrate
pass "unpinned" ""
pass "pinned to CPU 0" "taskset -c 0"
calibrate
