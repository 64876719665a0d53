#!/usr/bin/env bash
# Benchmark of stratafs (an image served from the store, read-only and with a writable upper
# layer) against fuse-overlayfs and kernel overlayfs, over the SAME image, in one run (see
# docs/benchmarks.md, "Union mount").
#
#   Image "main" (3 layers): a Debian-like base layer copied from this machine's /usr, a layer with
#   one big random file, a layer that deletes (.wh. whiteouts), changes and hides (opaque
#   directory, whole-directory whiteout) base files.
#   Images "fifty" and "one": a ~7k-entry subset of the base tree split over 50 layers (each adds
#   1/50 of the entries, plus junk files the next layer deletes again with whiteouts), and the
#   same subset as 1 layer: the same final tree.
#
#   strata:          strata --root STORE load -i OCI-DIR, then `strata mount IMAGE DIR`.
#   fuse-overlayfs:  each layer tar extracted into its own directory, whiteouts converted to
#                    overlay's form (.wh.X -> char device 0:0, .wh..wh..opq -> xattr
#                    trusted.overlay.opaque=y), `fuse-overlayfs -o lowerdir=top:...:bottom DIR`.
#   kernel:          the same directories, `mount -t overlay overlay -o lowerdir=... DIR`.
#   stratafs dirs:   stratafs over the same directories, with fuse-overlayfs' command line
#                    (issue 6): `stratafs -o lowerdir=top:...:bottom DIR` (no store involved).
#   strata no-pt:    strata again with --no-passthrough (reads through the daemon, and image
#                    mounts answer no OPEN): the other side of FUSE passthrough's trade-off, on
#                    the read and write rows (not the layer-count rows, which read no file).
#   strata no-uring: strata again with --no-io-uring (requests read from /dev/fuse by a pool of
#                    threads, not from per-CPU io_uring queues), on the read and write rows.
#   strata (every form) turns the fuse module's enable_uring on; the script puts back the
#   setting it found.
#   Writable mounts: a fresh upper and work directory for every mount, on a fresh journaled ext4
#   image on a loop device (made here, removed on exit): `stratafs --root STORE --upper U
#   --work W IMAGE DIR`, `fuse-overlayfs -o lowerdir=...,upperdir=U,workdir=W DIR`,
#   `mount -t overlay overlay -o lowerdir=...,upperdir=U,workdir=W DIR`,
#   `stratafs -o lowerdir=...,upperdir=U,workdir=W DIR`.
#
#   Rows (N runs, median and min-max; the order of the tools rotates each round):
#     mount time (strata: the first mount, which builds the index, reported separately);
#     find DIR | wc -l on a fresh mount, and again on the same mount (kernel caches warm);
#     tar cf - . | cat >/dev/null of the whole tree (after the finds: metadata cached, file data
#     not yet read through this mount), and again;
#     cat of the big file on a fresh mount; fio 4k random reads (psync, time based) right after;
#     daemon peak RSS (VmHWM) after each mount's workload;
#     fifty vs one: lstat of every path from a list (no readdir: one LOOKUP per name) and
#     os.walk + lstat, each on a fresh mount; ratio fifty/one.
#     write rows, each on a fresh writable mount of "main" (fresh upper): creating 200 dirs x 100
#     files of 1 KiB, and 100 dirs x 100 (a small C program: mkdir, then open/write/close per
#     file; no fsync, no sync in the timing; a tool that fails is reported, the run goes on);
#     copy-up of the big file on a 1-byte append (printf x >> big.bin), and on a 1-byte write at
#     offset 4096 (dd conv=notrunc: a whole copy of the file for kernel overlayfs, fuse-overlayfs
#     and stratafs over directories; strata's store containers copy the block it lands in, the
#     object staying the rest); 80 MiB written to a new
#     file in 4 KiB writes (dd, no sync: the cost per write(2)); rm -rf of a lower tree
#     (usr/share/doc, 6-7k entries from the base layer and the whiteout layer); the daemon's
#     VmHWM after each; the time to mount with an upper.
#     Between writable mounts the upper tree is removed and everything synced (not timed).
#   Every row twice: unpinned, and with the daemon and the workload on CPU 0 (taskset -c 0; the
#   daemons are started under taskset for the pinned pass). Calibration (perf bench sched pipe)
#   at start and end.
#
# All read-side data (fixtures, store, extracted layers, mount points) live on a private tmpfs,
# so "warm" inputs cannot be paged out; upper and work directories live on the ext4 loop (see
# /work/shared/BENCHMARKING.md: the root filesystem has no journal). Runs as root. Everything it
# creates (mounts, daemons, tmpfs, loop filesystem and image, work directory) is removed on exit,
# also on failure or Ctrl-C: mounts by path, daemons by PID.
# About 15 minutes (full, plus up to 10 minutes waiting for a quiet machine), 1-3 minutes (--quick).
#   The report has one table for strata's store images and one for stratafs over the directories
#   (ratios against fuse-overlayfs, < 1 targeted, and kernel overlayfs, ≤ 1.5 on the read rows).
# Usage: scripts/bench/union.sh [--quick] [--runs N] [--strata PATH] [--stratafs PATH]
#                               [--dirs-driver PATH | --no-dirs] [--workdir DIR] [--no-wait]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STRATA=$REPO/build-union/tools/strata
STRATAFS=   # default: the one beside strata, or ../fs/stratafs in a build tree
DIRS_DRIVER=  # the "stratafs dirs" column: default $STRATAFS; "none" (--no-dirs): no such column
MKIMAGE=$REPO/tests/testutil/mkimage.py
WORKBASE=/var/tmp
QUICK=0
RUNS=
WAIT_LOAD=1
NLAYERS=50
NOPT=1      # the "strata no-pt" column (--no-passthrough)
NOURING=1   # the "strata no-uring" column (--no-io-uring)

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--strata PATH] [--stratafs PATH] [--dirs-driver PATH | --no-dirs]
          [--workdir DIR] [--no-wait] [--no-nopt] [--no-nouring]
  --quick         small fixtures, one run per tool (smoke test, 1-3 min)
  --runs N        timed runs per tool and CPU placement (default 3; 1 with --quick)
  --strata PATH   strata binary (default build-union/tools/strata; it mounts images itself)
  --stratafs PATH stratafs binary for the writable mounts, which are made with stratafs itself
                  (default: beside strata, or ../fs/stratafs in a build tree)
  --dirs-driver PATH  the driver of the "stratafs dirs" column, run with fuse-overlayfs' command
                  line over the extracted directories (default: the stratafs binary)
  --no-dirs       leave the "stratafs dirs" column out (a stratafs without -o lowerdir=)
  --workdir DIR   where the temporary work directory is created (default /var/tmp)
  --no-wait       do not wait for the 1-minute load average to drop below 3 (full mode waits
                  up to 10 minutes)
  --no-nopt       leave the "strata no-pt" column (strata with --no-passthrough) out
  --no-nouring    leave the "strata no-uring" column (strata with --no-io-uring) out
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --runs) RUNS=$2; shift ;;
    --strata) STRATA=$(realpath -m "$2"); shift ;;
    --stratafs) STRATAFS=$(realpath -m "$2"); shift ;;
    --dirs-driver) DIRS_DRIVER=$(realpath -m "$2"); shift ;;
    --no-dirs) DIRS_DRIVER=none ;;
    --workdir) WORKBASE=$2; shift ;;
    --no-wait) WAIT_LOAD=0 ;;
    --no-nopt) NOPT=0 ;;
    --no-nouring) NOURING=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then
  RUNS=${RUNS:-1}
  BIG_MB=20
  SMALLW_MB=8
  FIO_SECS=1
  WAIT_LOAD=0
  BASE_DIRS=(usr/sbin usr/share/perl usr/share/zoneinfo usr/share/mime)
  LT_DIRS=(usr/sbin usr/share/zoneinfo)
  CREATE_DIRS=20            # x 100 files of 1 KiB (and half as many)
  RM_DIR=usr/share/perl
else
  RUNS=${RUNS:-3}
  BIG_MB=200
  SMALLW_MB=80
  FIO_SECS=5
  # ~275 MB, ~39k entries: binaries, python and perl modules, man pages (small gzip files),
  # documentation (with Debian's duplicate changelogs), i18n data, zoneinfo (symlinks).
  BASE_DIRS=(usr/sbin usr/lib/python3 usr/share/perl usr/share/perl5 usr/share/man usr/share/doc
             usr/share/zoneinfo usr/share/i18n usr/share/mime usr/share/common-licenses)
  # The layer-count test uses a smaller tree (~7k entries), so that fuse-overlayfs's lookups
  # through 50 layers fit the time budget.
  LT_DIRS=(usr/sbin usr/lib/python3 usr/share/perl usr/share/zoneinfo usr/share/mime)
  CREATE_DIRS=200           # x 100 files of 1 KiB: 20,000 files (and half as many)
  RM_DIR=usr/share/doc      # a lower tree with whiteouts and an opaque directory below it
fi
CREATE_FILES=100
CREATE_N=$((CREATE_DIRS * CREATE_FILES))
CREATE_HALF_DIRS=$((CREATE_DIRS / 2))
CREATE_SIZE=1024
UPPER_IMG_SIZE=6G

die() { echo "union.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

[[ $(id -u) == 0 ]] || die "must run as root (overlay and tmpfs mounts)"
[[ -x $STRATA ]] || die "strata binary $STRATA not found; build it first:
  cmake -S . -B build-union -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-union -j2"
if [[ -z $STRATAFS ]]; then
  for STRATAFS in "$(dirname "$STRATA")/stratafs" "$(dirname "$(dirname "$STRATA")")/fs/stratafs" ""; do
    [[ -z $STRATAFS || -x $STRATAFS ]] && break
  done
  [[ -n $STRATAFS ]] || STRATAFS=$(command -v stratafs) || die "stratafs not found beside $STRATA; use --stratafs"
fi
[[ -x $STRATAFS ]] || die "stratafs binary $STRATAFS not found"
"$STRATAFS" --help 2>&1 | grep -q -- --upper || die "$STRATAFS has no --upper (writable layer): too old"
DIRS_DRIVER=${DIRS_DRIVER:-$STRATAFS}
[[ $DIRS_DRIVER == none || -x $DIRS_DRIVER ]] || die "--dirs-driver $DIRS_DRIVER not found"
DIRS_COMM=$(basename "$DIRS_DRIVER")
DIRS_COMM=${DIRS_COMM:0:15}   # as /proc/PID/comm shows it
for tool in tar python3 fuse-overlayfs fusermount3 fio taskset mountpoint cc mkfs.ext4 losetup findmnt; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
# The daemons inherit this shell's open-file limit (raised to the hard limit). stratafs holds one
# O_PATH fd per upper inode the kernel knows (released on FORGET), so below a hard limit of about
# 20,200 its CREATE fails with EMFILE before the 20,000th new file: the create row then records
# the failure, and the half-size create row still gives a ratio (docs/benchmarks.md).
ulimit -n "$(ulimit -Hn)"
grep -qw overlay /proc/filesystems || die "kernel overlayfs is not available"

# ---------------------------------------------------------------------------------------------
# A quiet machine first (other jobs share these 2 vCPUs): wait up to 10 minutes for the 1-minute
# load average to drop below 3, then run anyway; the load is recorded either way.
LOAD_BEFORE_WAIT=$(cut -d' ' -f1-3 /proc/loadavg)
WAITED=0
if [[ $WAIT_LOAD == 1 ]]; then
  while awk '{ exit !($1 > 3) }' /proc/loadavg && ((WAITED < 600)); do
    log "load average $(cut -d' ' -f1-3 /proc/loadavg) > 3; waiting (${WAITED}s of at most 600s)"
    sleep 30
    WAITED=$((WAITED + 30))
  done
fi
SCRIPT_T0=$EPOCHREALTIME

W=$(mktemp -d "$WORKBASE/strata-union.XXXXXX")
RES=$W/res        # on the root filesystem: results and logs survive a full tmpfs
LOGS=$W/log
T=$W/t            # tmpfs: fixtures, store, extracted layers, mount points
FIX=$T/fix
STORE=$T/store
X=$T/x            # extracted layers for the overlays
MP_BASE=$T/m
MOUNTS=$RES/mounts   # "kind path pid" of every mount this script made, for cleanup
MP_SEQ=0
UPPER_IMG=$W/upper.img
E=$W/ext4         # journaled ext4 on a loop device: upper and work directories of writable mounts
LOOPDEV=

# tool_comm TOOL: the comm of TOOL's daemon (empty for the kernel).
tool_comm() {
  case $1 in strata|snopt|snour) echo stratafs ;; fuseovl) echo fuse-overlayfs ;; sdirs) echo "$DIRS_COMM" ;; *) echo ;; esac
}
# Is PID (still) the daemon we started? Guards against PID reuse.
pid_is() { [[ -n $1 && -r /proc/$1/comm && $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM ERR
  cd /
  if [[ -f $MOUNTS ]]; then
    local kind path pid comm i
    # newest first
    while read -r kind path pid; do
      if mountpoint -q "$path" 2>/dev/null; then
        case $kind in
          strata|snopt|snour) "$STRATA" --root "$STORE" umount "$path" >/dev/null 2>&1 ;;
          fuseovl|sdirs) fusermount3 -u "$path" 2>/dev/null ;;
        esac
        mountpoint -q "$path" 2>/dev/null && { umount "$path" 2>/dev/null || umount -l "$path"; }
      fi
      comm=$(tool_comm "$kind")
      if [[ -n $comm && $pid != - ]] && pid_is "$pid" "$comm"; then
        for ((i = 0; i < 20; i++)); do pid_is "$pid" "$comm" || break; sleep 0.1; done
        pid_is "$pid" "$comm" && kill "$pid" 2>/dev/null
      fi
    done < <(tac "$MOUNTS")
  fi
  # The writable mounts are gone now; then the ext4 that held their upper directories, and its
  # loop device (mount -o loop sets autoclear, but not after a lazy unmount that is still busy).
  if mountpoint -q "$E" 2>/dev/null; then
    umount "$E" 2>/dev/null || umount -l "$E"
  fi
  if [[ -n $LOOPDEV ]] && losetup "$LOOPDEV" 2>/dev/null | grep -qF "$UPPER_IMG"; then
    losetup -d "$LOOPDEV" 2>/dev/null
  fi
  if mountpoint -q "$T" 2>/dev/null; then
    umount "$T" 2>/dev/null || umount -l "$T"
  fi
  if [[ $rc != 0 && -d $LOGS ]]; then
    echo "union.sh: failed (exit $rc); last lines of the logs:" >&2
    tail -n 5 "$LOGS"/* >&2 2>/dev/null
  fi
  [[ -n $W && -d $W ]] && rm -rf --one-file-system "$W"
  [[ -n $URING_SAVED ]] && echo "$URING_SAVED" >"$URING_PARAM" 2>/dev/null
  exit "$rc"
}
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=$(cat "$URING_PARAM" 2>/dev/null || true)
trap cleanup EXIT
trap 'echo "union.sh: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RES" "$LOGS" "$T"
touch "$MOUNTS"
mount -t tmpfs -o size=12g,mode=0700 strata-union-bench "$T"
mkdir -p "$FIX" "$STORE" "$X" "$MP_BASE"
# Upper and work directories of the writable mounts: a fresh journaled ext4 on a loop device.
# lazy_*_init=0: mkfs writes the inode tables and journal now, so no ext4lazyinit thread zeroes
# them in the background during the timed runs. The image is allocated up front: in a sparse
# one, a 200 MiB copy and fsync took 0.30-0.34 s by hand once an earlier 200 MiB file had been
# written, deleted and synced, against 0.15-0.18 s on the fresh filesystem; in an allocated image
# 0.15-0.18 s either way (5 rounds of 6), so a row's time depended on what the rows before it
# left in the image.
mkdir "$E"
fallocate -l "$UPPER_IMG_SIZE" "$UPPER_IMG" 2>/dev/null || truncate -s "$UPPER_IMG_SIZE" "$UPPER_IMG"
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$UPPER_IMG"
mount -o loop "$UPPER_IMG" "$E"
LOOPDEV=$(findmnt -n -o SOURCE --mountpoint "$E")

calibration() {
  local u p
  if command -v perf >/dev/null; then
    u=$(perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ {print $1}')
    p=$(taskset -c 0 perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ {print $1}')
    printf 'calibration (%s): perf bench sched pipe -l 20000: %.1f us/op unpinned, %.1f us/op on CPU 0; loadavg %s\n' \
      "$1" "$u" "$p" "$(cut -d' ' -f1-3 /proc/loadavg)"
  else
    echo "calibration ($1): perf is not installed (linux-perf); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  fi
}

# stats FILE -> "median min max" of the numbers in FILE, one per line
stats() {
  sort -g "$1" | awk '{a[NR]=$1} END {
    if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%s %s %s\n", f(m), f(a[1]), f(a[NR]) }
    function f(v) { return sprintf(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : v >= 0.1 ? "%.3f" : "%.4f", v) }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { n = "^[0-9.]+([eE][-+]?[0-9]+)?$"; if (a ~ n && b ~ n && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
rec() { echo "$2" >>"$RES/$1"; }   # rec KEY VALUE
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'; }

echo "# strata union mount benchmark"
echo "date: $(date)"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
echo "strata: $STRATA ($("$STRATA" --version 2>/dev/null | head -1)), stratafs $STRATAFS; fuse-overlayfs $(dpkg-query -W -f '${Version}' fuse-overlayfs 2>/dev/null); $(fio --version); $(tar --version | head -1)"
echo "mode: $([[ $QUICK == 1 ]] && echo quick || echo full), $RUNS run(s) per tool and placement"
echo "open-file limit (soft/hard) of the daemons: $(ulimit -Sn)/$(ulimit -Hn)"
echo "upper/work directories: ext4 ($(findmnt -n -o OPTIONS --mountpoint "$E")) on $LOOPDEV, a ${UPPER_IMG_SIZE} image in $W"
echo "load average before the run: $LOAD_BEFORE_WAIT; waited ${WAITED}s for it to drop; at start: $(cut -d' ' -f1-3 /proc/loadavg)"
calibration start

# ---------------------------------------------------------------------------------------------
# Fixtures
log "building fixtures in $T"
SRC=$FIX/src
mkdir -p "$SRC/base" "$SRC/big/data" "$SRC/wh"
(cd / && cp -a --parents "${BASE_DIRS[@]}" "$SRC/base/")
head -c "${BIG_MB}M" /dev/urandom >"$SRC/big/data/big.bin"
BIG_LAST=$(tail -c 1 "$SRC/big/data/big.bin" | od -An -tx1 | tr -d ' \n')  # checks the copy-up row

# The whiteout layer: deletes every 97th non-directory entry of the base tree, changes every
# 97th (offset 48) regular file, makes one directory opaque (adding 3 files) and deletes one
# whole directory. Also writes the list of the base tree's paths (for the lookup test).
python3 - "$SRC/base" "$SRC/wh" "$FIX/paths.base" >"$RES/wh_summary" <<'EOF'
import os, sys
base, wh, listfile = sys.argv[1:4]
entries = []   # (relpath, is_dir)
for dp, dns, fns in os.walk(base):
    dns.sort(); fns.sort()
    rel = os.path.relpath(dp, base)
    for n in dns:
        entries.append((os.path.normpath(os.path.join(rel, n)), True))
    for n in fns:
        entries.append((os.path.normpath(os.path.join(rel, n)), False))
with open(listfile, "w") as f:
    for p, _ in entries:
        f.write(p + "\n")
# candidates for the opaque dir and the deleted dir: directories with 10..100 direct children
def children(p): return os.listdir(os.path.join(base, p))
dirs = [p for p, d in entries if d and 10 <= len(children(p)) <= 100]
def inside(p, d): return p == d or p.startswith(d + "/")
opaque = dirs[len(dirs) // 3]
gone = [d for d in dirs[2 * len(dirs) // 3:] if not inside(d, opaque) and not inside(opaque, d)][0]
def mk(p):
    os.makedirs(os.path.join(wh, p), exist_ok=True)
deleted = changed = 0
files = [p for p, d in entries if not d and not inside(p, opaque) and not inside(p, gone)
         and not inside(opaque, p) and not inside(gone, p)]
for i, p in enumerate(files):
    d, n = os.path.split(p)
    full = os.path.join(base, p)
    if i % 97 == 0:
        mk(d)
        open(os.path.join(wh, d, ".wh." + n), "wb").close()
        deleted += 1
    elif i % 97 == 48 and os.path.isfile(full) and not os.path.islink(full):
        mk(d)
        with open(full, "rb") as src, open(os.path.join(wh, p), "wb") as dst:
            dst.write(src.read() + b"\nchanged by the whiteout layer\n")
        os.chmod(os.path.join(wh, p), 0o644)
        changed += 1
mk(opaque)
open(os.path.join(wh, opaque, ".wh..wh..opq"), "wb").close()
for k in range(3):
    with open(os.path.join(wh, opaque, "new%d" % k), "w") as f:
        f.write("new file %d\n" % k)
gd, gn = os.path.split(gone)
mk(gd)
open(os.path.join(wh, gd, ".wh." + gn), "wb").close()
print(deleted, changed, opaque, gone)
EOF
read -r WH_DELETED WH_CHANGED WH_OPAQUE WH_GONE <"$RES/wh_summary"

# The layer-test tree (a subset of the base tree) and its fifty-layer split: layer i holds the entries with index % 50 == i (with
# their parent directories), plus junk/i/f0..f9; layer i>0 deletes junk/(i-1) with a whiteout,
# and the last layer deletes junk/ itself: the final tree is exactly the layer-test tree.
mkdir -p "$SRC/lt"
(cd "$SRC/base" && cp -a --parents "${LT_DIRS[@]}" "$SRC/lt/")
python3 - "$SRC/lt" "$SRC/fifty" "$NLAYERS" "$FIX/paths.lt" <<'EOF'
import os, shutil, sys
base, out, n, listfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
entries = []
for dp, dns, fns in os.walk(base):
    dns.sort(); fns.sort()
    rel = os.path.relpath(dp, base)
    entries += [os.path.normpath(os.path.join(rel, x)) for x in dns + fns]
with open(listfile, "w") as f:
    for p in entries:
        f.write(p + "\n")
layers = [os.path.join(out, "%02d" % i) for i in range(n)]
for l in layers:
    os.makedirs(l)
for i, p in enumerate(entries):
    src, dst = os.path.join(base, p), os.path.join(layers[i % n], p)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    elif os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
        shutil.copystat(src, dst)
    else:
        shutil.copy2(src, dst)
for i in range(n):
    if i < n - 1:
        d = os.path.join(layers[i], "junk", str(i))
        os.makedirs(d)
        for k in range(10):
            with open(os.path.join(d, "f%d" % k), "w") as f:
                f.write("junk %d %d\n" % (i, k))
    if 0 < i < n - 1:
        open(os.path.join(layers[i], "junk", ".wh.%d" % (i - 1)), "wb").close()
open(os.path.join(layers[n - 1], ".wh.junk"), "wb").close()
EOF

mk() { python3 "$MKIMAGE" --root-owned "$@" 2>>"$LOGS/mkimage.log"; }
blobs() {  # blobs SUMMARY OCIDIR -> layer tar paths, bottom first
  python3 -c '
import json, sys
for l in json.load(open(sys.argv[1]))["layers"]:
    print(sys.argv[2] + "/blobs/sha256/" + l["digest"].split(":")[1])' "$1" "$2"
}
log "  OCI layouts (uncompressed layers)"
ID_MAIN=$(mk --format oci-dir --compression none -o "$FIX/oci-main" --tag bench/main:latest \
  --layer "$SRC/base" --layer "$SRC/big" --layer "$SRC/wh" --summary "$FIX/main.json" | tail -n 1)
mapfile -t MAIN_TARS < <(blobs "$FIX/main.json" "$FIX/oci-main")
ID_ONE=$(mk --format oci-dir --compression none -o "$FIX/oci-one" --tag bench/one:latest \
  --layer "$SRC/lt" --summary "$FIX/one.json" | tail -n 1)
mapfile -t ONE_TARS < <(blobs "$FIX/one.json" "$FIX/oci-one")
fifty_args=()
for ((i = 0; i < NLAYERS; i++)); do fifty_args+=(--layer "$SRC/fifty/$(printf %02d "$i")"); done
ID_FIFTY=$(mk --format oci-dir --compression none -o "$FIX/oci-fifty" --tag bench/fifty:latest \
  "${fifty_args[@]}" --summary "$FIX/fifty.json" | tail -n 1)
mapfile -t FIFTY_TARS < <(blobs "$FIX/fifty.json" "$FIX/oci-fifty")
[[ ${#FIFTY_TARS[@]} == "$NLAYERS" ]] || die "the fifty-layer image has ${#FIFTY_TARS[@]} layers"
BASE_ENTRIES=$(wc -l <"$FIX/paths.base")
LT_ENTRIES=$(wc -l <"$FIX/paths.lt")
BASE_MB=$(awk -v a="$(stat -c %s "${MAIN_TARS[0]}")" 'BEGIN { printf "%.1f", a / 1048576 }')
rm -rf "$SRC"

# Layers extracted for the overlays, whiteouts converted to overlay's on-disk form.
cat >"$FIX/wh2ovl.py" <<'EOF'
# wh2ovl.py DIR: converts OCI whiteouts in an extracted layer to overlayfs whiteouts:
#   .wh..wh..opq  -> removed, trusted.overlay.opaque=y on its directory
#   .wh.NAME      -> removed, NAME created as a char device 0:0 (owner 0:0)
import os, stat, sys
root = sys.argv[1]
n_wh = n_opq = 0
for dp, dns, fns in os.walk(root):
    for fn in fns:
        if not fn.startswith(".wh."):
            continue
        os.unlink(os.path.join(dp, fn))
        if fn == ".wh..wh..opq":
            os.setxattr(dp, "trusted.overlay.opaque", b"y")
            n_opq += 1
        else:
            target = os.path.join(dp, fn[4:])
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            os.lchown(target, 0, 0)
            n_wh += 1
print(n_wh, n_opq)
EOF
extract() {  # extract TAR DIR
  mkdir -p "$2"
  tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$1" -C "$2"
  python3 "$FIX/wh2ovl.py" "$2" >>"$LOGS/wh2ovl.log"
}
log "  extracting layers for the overlays"
MAIN_LOWER=
for ((i = 0; i < ${#MAIN_TARS[@]}; i++)); do
  extract "${MAIN_TARS[$i]}" "$X/m$i"
  MAIN_LOWER=$X/m$i${MAIN_LOWER:+:$MAIN_LOWER}
done
# Overlayfs without an upper directory needs two lower directories: an empty one goes below the
# one-layer image (for fuse-overlayfs too, to compare like with like).
extract "${ONE_TARS[0]}" "$X/o0"
mkdir "$X/empty"
ONE_LOWER=$X/o0:$X/empty
FIFTY_LOWER=
for ((i = 0; i < NLAYERS; i++)); do
  extract "${FIFTY_TARS[$i]}" "$X/f$i"
  FIFTY_LOWER=$X/f$i${FIFTY_LOWER:+:$FIFTY_LOWER}
done

log "  strata load"
for img in main one fifty; do
  t0=$EPOCHREALTIME
  "$STRATA" --root "$STORE" load -q -i "$FIX/oci-$img" >>"$LOGS/load.log" 2>&1 || die "strata load of $img failed"
  rec "load.$img" "$(since "$t0")"
done
for id in "$ID_MAIN" "$ID_ONE" "$ID_FIFTY"; do
  [[ $id == sha256:* ]] || die "mkimage printed no image ID ($id)"
done
declare -A IMG_ID=([main]=$ID_MAIN [one]=$ID_ONE [fifty]=$ID_FIFTY)
declare -A IMG_LOWER=([main]=$MAIN_LOWER [one]=$ONE_LOWER [fifty]=$FIFTY_LOWER)
rm -rf "$FIX/oci-main" "$FIX/oci-one" "$FIX/oci-fifty"   # the store and the extractions remain

echo "image main: base layer ${BASE_MB} MiB tar / ${BASE_ENTRIES} entries (${BASE_DIRS[*]}); ${BIG_MB} MiB random file; whiteout layer: ${WH_DELETED} files deleted, ${WH_CHANGED} changed, /${WH_OPAQUE} opaque (+3 files), /${WH_GONE} deleted"
echo "images one / fifty: a ${LT_ENTRIES}-entry subset of the base tree (${LT_DIRS[*]}) as 1 layer / split over ${NLAYERS} layers (+ whiteouts of junk files); same final tree"

# ---------------------------------------------------------------------------------------------
# Mounting. do_mount TOOL IMAGE PASS [KEY] [rw]: mounts on a fresh directory, sets MP and DPID
# (the daemon's PID, - for the kernel), records the mount time under KEY if given (KEY may be
# ""). With rw: a writable mount over fresh, empty upper and work directories UP and WK on the
# ext4 loop, which drop_upper removes after the unmount.
PIN=()
set_pass() { if [[ $1 == pinned ]]; then PIN=(taskset -c 0); else PIN=(); fi; }

find_daemon() {  # find_daemon COMM MOUNTPOINT -> PID of the daemon serving MOUNTPOINT
  local f pid
  for f in $(grep -lzxF -- "$2" /proc/[0-9]*/cmdline 2>/dev/null); do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    if pid_is "$pid" "$1"; then echo "$pid"; return 0; fi
  done
  return 1
}

do_mount() {
  local tool=$1 img=$2 pass=$3 key=${4:-} rw=${5:-} t0 comm
  set_pass "$pass"
  MP_SEQ=$((MP_SEQ + 1))
  MP=$MP_BASE/$MP_SEQ
  mkdir "$MP"
  UP= WK=
  if [[ $rw == rw ]]; then
    UP=$E/$MP_SEQ/upper WK=$E/$MP_SEQ/work
    mkdir -p "$UP" "$WK"
  fi
  echo "$tool $MP -" >>"$MOUNTS"   # recorded before mounting: cleanup checks mountpoint -q
  t0=$EPOCHREALTIME
  case $tool.$rw in
    strata.) "${PIN[@]}" "$STRATA" --root "$STORE" mount "${IMG_ID[$img]}" "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    strata.rw) "${PIN[@]}" "$STRATAFS" --root "$STORE" --upper "$UP" --work "$WK" "${IMG_ID[$img]}" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
    snopt.) "${PIN[@]}" "$STRATA" --root "$STORE" mount --no-passthrough "${IMG_ID[$img]}" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
    snopt.rw) "${PIN[@]}" "$STRATAFS" --root "$STORE" --no-passthrough --upper "$UP" --work "$WK" "${IMG_ID[$img]}" \
        "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    snour.) "${PIN[@]}" "$STRATA" --root "$STORE" mount --no-io-uring "${IMG_ID[$img]}" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
    snour.rw) "${PIN[@]}" "$STRATAFS" --root "$STORE" --no-io-uring --upper "$UP" --work "$WK" "${IMG_ID[$img]}" \
        "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    fuseovl.) "${PIN[@]}" fuse-overlayfs -o "lowerdir=${IMG_LOWER[$img]}" "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    fuseovl.rw) "${PIN[@]}" fuse-overlayfs -o "lowerdir=${IMG_LOWER[$img]},upperdir=$UP,workdir=$WK" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
    kernel.) "${PIN[@]}" mount -t overlay overlay -o "ro,lowerdir=${IMG_LOWER[$img]}" "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    kernel.rw) "${PIN[@]}" mount -t overlay overlay -o "lowerdir=${IMG_LOWER[$img]},upperdir=$UP,workdir=$WK" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
    sdirs.) "${PIN[@]}" "$DIRS_DRIVER" -o "lowerdir=${IMG_LOWER[$img]}" "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    sdirs.rw) "${PIN[@]}" "$DIRS_DRIVER" -o "lowerdir=${IMG_LOWER[$img]},upperdir=$UP,workdir=$WK" "$MP" \
        >>"$LOGS/mount.log" 2>&1 ;;
  esac || die "$tool mount of $img on $MP failed"
  [[ -n $key ]] && rec "$key" "$(since "$t0")"
  mountpoint -q "$MP" || die "$tool: $MP is not a mount point after mounting"
  DPID=-
  comm=$(tool_comm "$tool")
  if [[ -n $comm ]]; then
    DPID=$(find_daemon "$comm" "$MP") || die "$tool: no $comm daemon found for $MP"
    echo "$tool $MP $DPID" >>"$MOUNTS"
    if [[ $pass == pinned ]]; then
      [[ $(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$DPID/status") == 0 ]] || die "$comm $DPID is not pinned to CPU 0"
    fi
  fi
}

do_umount() {  # do_umount TOOL: unmounts MP, waits for the daemon to exit, removes MP
  local tool=$1 comm i
  case $tool in
    strata|snopt|snour) "$STRATA" --root "$STORE" umount "$MP" >>"$LOGS/mount.log" 2>&1 ;;
    fuseovl|sdirs) fusermount3 -u "$MP" ;;
    kernel) umount "$MP" ;;
  esac || die "$tool: unmounting $MP failed"
  comm=$(tool_comm "$tool")
  if [[ $DPID != - ]]; then
    for ((i = 0; i < 100; i++)); do pid_is "$DPID" "$comm" || break; sleep 0.05; done
    pid_is "$DPID" "$comm" && { kill "$DPID"; log "killed $comm $DPID (still running 5 s after unmount)"; }
  fi
  rmdir "$MP"
}

# drop_upper: after do_umount of a writable mount, removes its upper and work directories and
# writes back the ext4, so that the next timed run starts with nothing dirty (not timed).
drop_upper() {
  [[ -n $UP ]] || return 0
  rm -rf --one-file-system "$(dirname "$UP")"
  # All filesystems, not just the loop one: its writes sit dirty in the image file's page cache on
  # the root filesystem until something flushes them, and the next row's first fsync (a synced
  # copy-up) would pay for every earlier row's data (strata's write-inside row did, 0.3-0.4 s
  # against 0.12-0.15 after a full sync, once its append row stopped syncing anything).
  sync
  UP= WK=
}

vmhwm() { [[ $DPID == - ]] && return 0; awk '/^VmHWM/ {print $2}' "/proc/$DPID/status"; }  # KiB

# Workloads: shell snippets run in $MP under "${PIN[@]}" (empty when unpinned), timed from here.
timed() {  # timed KEY SNIPPET
  local t0
  t0=$EPOCHREALTIME
  (cd "$MP" && "${PIN[@]}" bash -c "$2") || die "$1 failed: $2"
  rec "$1" "$(since "$t0")"
}
timed_try() {  # timed_try KEY SNIPPET: as timed, but a failure is recorded in KEY.fail, not fatal
  local t0 out
  t0=$EPOCHREALTIME
  if out=$(cd "$MP" && "${PIN[@]}" bash -c "$2" 2>&1); then
    rec "$1" "$(since "$t0")"
    return 0
  fi
  rec "$1.fail" "${out//$'\n'/ }"
  log "$1 failed after $(since "$t0") s: $out"
  return 1
}
W_FIND="find . | wc -l >'$RES/count.tmp'"
# GNU tar skips reading files when writing to /dev/null itself: pipe through cat. Exit 1 of tar
# ("file changed as we read it") is accepted.
W_TAR="tar cf - . 2>>'$LOGS/tar.log' | cat >/dev/null; s=(\"\${PIPESTATUS[@]}\"); ((s[0] <= 1 && s[1] == 0))"
W_SEQ="cat data/big.bin >/dev/null"

cat >"$FIX/lookups.py" <<'EOF'
# lookups.py MODE ROOT LIST: MODE "list" lstats every path of LIST (relative to ROOT) without
# reading any directory, so each new name costs one LOOKUP; MODE "walk" is os.walk + lstat of
# every entry. Prints "seconds entries missing".
import os, sys, time
mode, root, lst = sys.argv[1:4]
paths = [p for p in open(lst, "rb").read().split(b"\n") if p]
os.chdir(root)
n = missing = 0
t0 = time.perf_counter()
if mode == "list":
    for p in paths:
        try:
            os.lstat(p)
            n += 1
        except FileNotFoundError:
            missing += 1
else:
    for dp, dns, fns in os.walk(b"."):
        for x in dns + fns:
            os.lstat(os.path.join(dp, x))
            n += 1
print("%.4f %d %d" % (time.perf_counter() - t0, n, missing))
EOF
lookups() {  # lookups KEY MODE
  local out
  out=$(cd "$MP" && "${PIN[@]}" python3 "$FIX/lookups.py" "$2" . "$FIX/paths.lt") || die "$1 failed"
  read -r secs n missing <<<"$out"
  rec "$1" "$secs"
  rec "$1.n" "$n"
  [[ $missing == 0 ]] || die "$1: $missing paths of the layer-test tree are missing"
}

# The create workload, the same program for every tool: what an unpacking tool or a build does
# per file (open O_CREAT|O_EXCL, one write, close), with no per-file interpreter cost.
cat >"$FIX/mkfiles.c" <<'EOF'
/* mkfiles DIR NDIRS NFILES SIZE: mkdir DIR, then NDIRS directories DIR/dNNN holding NFILES files
   fNNN of SIZE bytes each. No fsync. Stops at the first error, saying after how many files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char name[64] = "";
  if (argc != 5) {
    fprintf(stderr, "usage: mkfiles DIR NDIRS NFILES SIZE\n");
    return 2;
  }
  int ndirs = atoi(argv[2]), nfiles = atoi(argv[3]);
  size_t size = strtoul(argv[4], NULL, 10);
  char *buf = malloc(size ? size : 1);
  memset(buf, 'x', size);
  long made = 0;
  if (mkdir(argv[1], 0755) != 0) goto fail;
  int top = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) goto fail;
  for (int d = 0; d < ndirs; d++) {
    snprintf(name, sizeof name, "d%03d", d);
    if (mkdirat(top, name, 0755) != 0) goto fail;
    int dir = openat(top, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) goto fail;
    for (int f = 0; f < nfiles; f++) {
      snprintf(name, sizeof name, "f%03d", f);
      int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, buf, size) != (ssize_t)size || close(fd) != 0) goto fail;
      made++;
    }
    close(dir);
  }
  return 0;
fail:
  fprintf(stderr, "%s after %ld files (at %s)\n", strerror(errno), made, name);
  return 1;
}
EOF
cc -O2 -Wall -o "$FIX/mkfiles" "$FIX/mkfiles.c" || die "cannot compile mkfiles.c"

# ---------------------------------------------------------------------------------------------
# Can the "stratafs dirs" driver mount directory layers at all? (stratafs before issue 6 cannot.)
if [[ $DIRS_DRIVER != none ]]; then
  PROBE=$MP_BASE/probe
  mkdir "$PROBE"
  echo "sdirs $PROBE -" >>"$MOUNTS"
  "$DIRS_DRIVER" -o "lowerdir=$X/o0:$X/empty" "$PROBE" >>"$LOGS/mount.log" 2>&1 && mountpoint -q "$PROBE" ||
    die "$DIRS_DRIVER cannot mount directory layers (-o lowerdir=..., issue 6); --no-dirs leaves that column out"
  PROBE_PID=$(find_daemon "$DIRS_COMM" "$PROBE") || die "no $DIRS_COMM daemon found for $PROBE"
  echo "sdirs $PROBE $PROBE_PID" >>"$MOUNTS"
  fusermount3 -u "$PROBE"
  for ((i = 0; i < 100; i++)); do pid_is "$PROBE_PID" "$DIRS_COMM" || break; sleep 0.05; done
  rmdir "$PROBE"
fi

# ---------------------------------------------------------------------------------------------
# First mounts (strata builds each chain's index here), then sanity checks and warm-up.
log "first strata mounts (index build)"
for img in main one fifty; do
  do_mount strata "$img" unpinned "strata.first.$img"
  do_umount strata
done

TOOLS=(strata fuseovl kernel)
[[ $DIRS_DRIVER == none ]] || TOOLS+=(sdirs)
[[ $NOPT == 0 ]] || TOOLS+=(snopt)
[[ $NOURING == 0 ]] || TOOLS+=(snour)
NTOOLS=${#TOOLS[@]}
log "sanity: same listing on every tool; warm-up (find, tar, cat of every mount)"
listing() {  # type, mode, owner, size of non-directories, path; sorted
  (cd "$MP" && find . \( -type d -printf '%y %m %U:%G - %p\n' \) -o -printf '%y %m %U:%G %s %p\n' | LC_ALL=C sort)
}
for tool in "${TOOLS[@]}"; do
  for img in main fifty one; do
    do_mount "$tool" "$img" unpinned
    listing >"$RES/listing.$tool.$img"
    (cd "$MP" && tar cf - . 2>/dev/null | cat >/dev/null) || true
    do_umount "$tool"
  done
done
LISTING_NOTE=identical
for f in "$RES"/listing.*; do
  if ! cmp -s "$f" "$RES/listing.strata.main" && [[ $f == *.main ]]; then
    LISTING_NOTE="DIFFERENT (see below)"
    echo "listing of ${f##*/listing.} differs from strata's:"; diff "$RES/listing.strata.main" "$f" | head -n 10
  fi
done
for f in "$RES"/listing.*.fifty "$RES"/listing.*.one; do
  # the fifty-layer split creates directories with their own metadata: compare paths and types
  awk '{print $1, $NF}' "$f" >"$f.paths"
done
for f in "$RES"/listing.*.paths; do
  if ! cmp -s "$f" "$RES/listing.strata.one.paths"; then
    LISTING_NOTE="DIFFERENT (see below)"
    echo "paths of ${f##*/listing.} differ from strata's one-layer image:"; diff "$RES/listing.strata.one.paths" "$f" | head -n 10
  fi
done
echo "sanity: listings (type, mode, owner, size, path) of the main image: $LISTING_NOTE across tools; fifty == one (paths, types): checked"
RM_ENTRIES=$(awk -v d="./$RM_DIR" '$NF == d || index($NF, d "/") == 1' "$RES/listing.strata.main" | wc -l)
echo "write rows: create $CREATE_N files ($CREATE_DIRS dirs x $CREATE_FILES x $CREATE_SIZE bytes), and half as many; copy-up of data/big.bin (${BIG_MB} MiB) on a 1-byte append and on a 1-byte write at offset 4096; rm -rf /$RM_DIR ($RM_ENTRIES entries in the merged view)"

# ---------------------------------------------------------------------------------------------
PASSES=(unpinned pinned)
run_main() {  # run_main TOOL PASS
  local tool=$1 pass=$2 p=$1.$2
  # mount A: metadata and whole-tree reads
  do_mount "$tool" main "$pass" "$p.mount"
  timed "$p.find" "$W_FIND"; rec "count.$tool" "$(cat "$RES/count.tmp")"
  timed "$p.find2" "$W_FIND"
  timed "$p.tar" "$W_TAR"
  timed "$p.tar2" "$W_TAR"
  [[ $DPID == - ]] || rec "$p.rss_tree" "$(vmhwm)"
  do_umount "$tool"
  # mount B: the big file, sequential then random (fio drops the file's cached pages first)
  do_mount "$tool" main "$pass" "$p.mount"
  timed "$p.seq" "$W_SEQ"
  (cd "$MP" && "${PIN[@]}" fio --name=rr --filename=data/big.bin --readonly --rw=randread --bs=4k \
    --ioengine=psync --time_based --runtime="$FIO_SECS" --output-format=json >"$RES/fio.json" 2>>"$LOGS/fio.log") ||
    die "$p fio failed"
  rec "$p.iops" "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"]))' "$RES/fio.json")"
  [[ $DPID == - ]] || rec "$p.rss_io" "$(vmhwm)"
  do_umount "$tool"
}
run_write() {  # run_write TOOL PASS: each write row on a fresh writable mount of main (fresh upper)
  local tool=$1 pass=$2 p=$1.$2 n blocks dirs key want ok
  for dirs in "$CREATE_DIRS" "$CREATE_HALF_DIRS"; do
    key=wcreate; [[ $dirs == "$CREATE_DIRS" ]] || key=wcreate_half
    want=$((dirs * CREATE_FILES))
    do_mount "$tool" main "$pass" "$p.wmount" rw
    ok=1
    timed_try "$p.$key" "'$FIX/mkfiles' new $dirs $CREATE_FILES $CREATE_SIZE" || ok=0
    [[ $DPID == - || $key != wcreate ]] || rec "$p.rss_create" "$(vmhwm)"   # also after a failure
    if [[ $ok == 1 ]]; then
      n=$(cd "$MP" && find new -type f | wc -l)
      [[ $n == "$want" ]] || die "$p create: $n files through the mount, $want expected"
      # (fuse-overlayfs also leaves an opaque marker file .wh..wh..opq in every directory it makes)
      n=$(find "$UP/new" -type f -name 'f[0-9][0-9][0-9]' -size "${CREATE_SIZE}c" | wc -l)
      [[ $n == "$want" ]] || die "$p create: $n files in the upper directory, $want expected"
    fi
    do_umount "$tool"
    drop_upper
  done

  do_mount "$tool" main "$pass" "$p.wmount" rw
  timed "$p.wcopyup" "printf x >>data/big.bin"
  [[ $DPID == - ]] || rec "$p.rss_copyup" "$(vmhwm)"
  n=$(stat -c %s "$MP/data/big.bin")
  [[ $n == $((BIG_MB * 1048576 + 1)) ]] || die "$p copy-up: data/big.bin has $n bytes through the mount"
  [[ $(tail -c 2 "$MP/data/big.bin" | od -An -tx1 | tr -d ' \n') == "${BIG_LAST}78" ]] ||
    die "$p copy-up: data/big.bin does not end in its last byte and the appended x"
  # Over directories the upper holds a full data copy; strata's store containers keep a
  # metadata-only copy, the object followed by the appended byte.
  read -r n blocks < <(stat -c '%s %b' "$UP/data/big.bin")
  case $tool in
    strata|snopt|snour) ((n == BIG_MB * 1048576 + 1 && blocks * 512 < 1048576)) ;;
    *) ((n == BIG_MB * 1048576 + 1 && blocks * 512 >= BIG_MB * 1048576)) ;;
  esac || die "$p copy-up: the upper data/big.bin has $n bytes in $blocks blocks"
  do_umount "$tool"
  drop_upper

  # A write inside the file's old content: a whole data copy, except in a store container, whose
  # upper file holds the written block (overriding the object there).
  do_mount "$tool" main "$pass" "$p.wmount" rw
  timed "$p.wcopyin" "printf x | dd of=data/big.bin bs=1 seek=4096 conv=notrunc status=none"
  read -r n blocks < <(stat -c '%s %b' "$UP/data/big.bin")
  case $tool in
    strata|snopt|snour) ((n == BIG_MB * 1048576 && blocks * 512 < 1048576)) ;;
    *) ((n == BIG_MB * 1048576 && blocks * 512 >= BIG_MB * 1048576)) ;;
  esac || die "$p copy-up (write inside): the upper data/big.bin has $n bytes in $blocks blocks"
  [[ $(dd if="$MP/data/big.bin" bs=1 skip=4096 count=1 status=none) == x ]] ||
    die "$p copy-up (write inside): byte 4096 is not the x written"
  do_umount "$tool"
  drop_upper

  # Many small writes to one new file: each is a round trip to a daemon that must see it (or, in
  # a FUSE mount that does not handle killpriv itself, the kernel's GETXATTR security.capability
  # before every write).
  do_mount "$tool" main "$pass" "$p.wmount" rw
  timed "$p.wsmall" "dd if=/dev/zero of=small-writes bs=4096 count=$((SMALLW_MB * 256)) status=none"
  n=$(stat -c %s "$UP/small-writes")
  [[ $n == $((SMALLW_MB * 1048576)) ]] || die "$p small writes: the upper small-writes has $n bytes"
  do_umount "$tool"
  drop_upper

  do_mount "$tool" main "$pass" "$p.wmount" rw
  timed "$p.wrm" "rm -rf '$RM_DIR'"
  [[ $DPID == - ]] || rec "$p.rss_rm" "$(vmhwm)"
  [[ ! -e $MP/$RM_DIR && -d $MP/$(dirname "$RM_DIR") ]] || die "$p rm -rf: $RM_DIR still there, or its parent gone"
  do_umount "$tool"
  drop_upper
}
run_layers() {  # run_layers TOOL PASS: fresh mount per measurement
  local tool=$1 pass=$2 img
  for img in fifty one; do
    do_mount "$tool" "$img" "$pass" "$tool.$pass.mount_$img"
    lookups "$tool.$pass.list_$img" list
    do_umount "$tool"
    do_mount "$tool" "$img" "$pass"
    lookups "$tool.$pass.walk_$img" walk
    do_umount "$tool"
  done
}

for ((r = 0; r < RUNS; r++)); do
  rec loadavg "$(cut -d' ' -f1 /proc/loadavg)"
  for pass in "${PASSES[@]}"; do
    for ((k = 0; k < NTOOLS; k++)); do
      tool=${TOOLS[$(((r + k) % NTOOLS))]}
      log "round $((r + 1))/$RUNS, $pass: $tool"
      run_main "$tool" "$pass"
      [[ $tool == snopt || $tool == snour ]] || run_layers "$tool" "$pass"
      run_write "$tool" "$pass"
    done
  done
done
rec loadavg "$(cut -d' ' -f1 /proc/loadavg)"

# Equal entry counts across tools (find . | wc -l of the main image)
for tool in "${TOOLS[@]}"; do
  sort -u "$RES/count.$tool" >"$RES/count.$tool.u"
  [[ $(wc -l <"$RES/count.$tool.u") == 1 ]] || die "$tool: find counts differ between runs: $(tr '\n' ' ' <"$RES/count.$tool.u")"
done
COUNT=$(cat "$RES/count.strata.u")
for tool in "${TOOLS[@]:1}"; do
  [[ $(cat "$RES/count.$tool.u") == "$COUNT" ]] || die "find counts differ: strata $COUNT, $tool $(cat "$RES/count.$tool.u")"
done
for key in "$RES"/*.list_*.n "$RES"/*.walk_*.n; do
  [[ $(sort -u "$key" | wc -l) == 1 ]] || die "${key##*/}: entry counts differ between runs"
done
WALK_N=$(sort -u "$RES/strata.unpinned.walk_one.n")
for key in "$RES"/*.walk_*.n; do
  [[ $(sort -u "$key") == "$WALK_N" ]] || die "${key##*/}: os.walk found $(sort -u "$key") entries, strata one-layer $WALK_N"
done

calibration end
TOTAL_SECS=$(since "$SCRIPT_T0")

# ---------------------------------------------------------------------------------------------
# Report
cell() {  # cell KEY -> "median (min–max)", and failed runs (KEY.fail) if any
  local c= nf
  if [[ -s $RES/$1 ]]; then
    read -r m lo hi < <(stats "$RES/$1")
    if [[ $lo == "$hi" ]]; then c=$m; else c="$m ($lo–$hi)"; fi
  fi
  if [[ -s $RES/$1.fail ]]; then
    nf=$(wc -l <"$RES/$1.fail")
    c="${c:+$c; }**failed** in $nf run(s): $(head -n 1 "$RES/$1.fail")"
  fi
  echo "${c:-–}"
}
med() { [[ -s $RES/$1 ]] && stats "$RES/$1" | cut -d' ' -f1 || echo nan; }
mibcell() {  # peak over runs, KiB -> MiB
  [[ -s $RES/$1 ]] || { echo "–"; return; }
  sort -n "$RES/$1" | tail -n 1 | awk '{ printf "%.0f MiB", $1 / 1024 }'
}
verdict() {  # verdict RATIO OP LIMIT
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    if (v != v + 0) { print "–"; exit }
    ok = (op == "<") ? (v < t) : (v <= t); print ok ? "yes" : "**no**" }'
}
PASS_LABEL=([0]="unpinned" [1]="CPU 0")
SUBJ=strata   # the tool in the first column of row: strata (store images) or sdirs (directories)
row() {  # row LABEL SUFFIX KIND(time|iops|rss) KERNEL_TARGET(1.5|-)
  local label=$1 sfx=$2 kind=$3 ktarget=$4 pi pass s f k rsf rsk vf vk
  for pi in 0 1; do
    pass=${PASSES[$pi]}
    if [[ $kind == rss ]]; then
      s=$(mibcell "$SUBJ.$pass.$sfx"); f=$(mibcell "fuseovl.$pass.$sfx"); k="–"
      rsf=$(div "$(sort -n "$RES/$SUBJ.$pass.$sfx" 2>/dev/null | tail -n 1)" "$(sort -n "$RES/fuseovl.$pass.$sfx" 2>/dev/null | tail -n 1)")
      rsk="–"
    else
      s=$(cell "$SUBJ.$pass.$sfx"); f=$(cell "fuseovl.$pass.$sfx"); k=$(cell "kernel.$pass.$sfx")
      if [[ $kind == iops ]]; then   # ratio of time per operation
        rsf=$(div "$(med "fuseovl.$pass.$sfx")" "$(med "$SUBJ.$pass.$sfx")")
        rsk=$(div "$(med "kernel.$pass.$sfx")" "$(med "$SUBJ.$pass.$sfx")")
      else
        rsf=$(div "$(med "$SUBJ.$pass.$sfx")" "$(med "fuseovl.$pass.$sfx")")
        rsk=$(div "$(med "$SUBJ.$pass.$sfx")" "$(med "kernel.$pass.$sfx")")
      fi
    fi
    vf=$(verdict "$rsf" "<" 1)
    [[ -s $RES/$SUBJ.$pass.$sfx.fail ]] && vf="**no** (failed)"
    if [[ $ktarget == - ]]; then vk="(info)"; else vk=$(verdict "$rsk" "<=" "$ktarget"); fi
    echo "| $label, ${PASS_LABEL[$pi]} | $s | $f | $k | $rsf | $vf | $rsk | $vk |"
  done
}
subject_rows() {  # the read and write rows of SUBJ against fuse-overlayfs and the kernel
  row "mount" mount time -
  row "find \\| wc -l, fresh mount" find time 1.5
  row "find \\| wc -l, again (same mount)" find2 time 1.5
  row "tar cf - . \\| cat (after find)" tar time 1.5
  row "tar cf - . \\| cat, again" tar2 time 1.5
  row "cat ${BIG_MB} MiB file, fresh mount" seq time 1.5
  row "fio 4k randread psync ${FIO_SECS} s, IOPS" iops iops 1.5
  row "daemon VmHWM after find+tar" rss_tree rss -
  row "daemon VmHWM after cat+fio" rss_io rss -
  row "mount, writable (fresh upper)" wmount time -
  row "create ${CREATE_N} files of ${CREATE_SIZE} B in ${CREATE_DIRS} dirs" wcreate time -
  row "create $((CREATE_N / 2)) files of ${CREATE_SIZE} B in ${CREATE_HALF_DIRS} dirs" wcreate_half time -
  row "copy-up: 1-byte append to the ${BIG_MB} MiB file" wcopyup time -
  row "copy-up: 1-byte write at offset 4096 of the ${BIG_MB} MiB file" wcopyin time -
  row "write ${SMALLW_MB} MiB to a new file in 4 KiB writes" wsmall time -
  row "rm -rf /${RM_DIR} (${RM_ENTRIES} entries)" wrm time -
  row "daemon VmHWM after create" rss_create rss -
  row "daemon VmHWM after copy-up" rss_copyup rss -
  row "daemon VmHWM after rm -rf" rss_rm rss -
}
layer_row() {  # layer_row LABEL MODE
  local pi pass t a b c c3
  for pi in 0 1; do
    pass=${PASSES[$pi]}
    a=(); for t in "${TOOLS[@]}"; do a+=("$(cell "$t.$pass.$2_fifty") / $(cell "$t.$pass.$2_one")"); done
    b=(); for t in "${TOOLS[@]}"; do b+=("$(div "$(med "$t.$pass.$2_fifty")" "$(med "$t.$pass.$2_one")")"); done
    c=$(awk -v v="${b[0]}" 'BEGIN { print (v + 0 <= 1.2) ? "yes" : "**no**" }')
    if [[ $DIRS_DRIVER != none ]]; then   # stratafs over directories: the same target as strata's
      c3=$(awk -v v="${b[3]}" 'BEGIN { print (v + 0 <= 1.2) ? "yes" : "**no**" }')
      echo "| $1, ${PASS_LABEL[$pi]} | ${a[0]} | ${a[3]} | ${a[1]} | ${a[2]} | **${b[0]}** ($c) | **${b[3]}** ($c3) | ${b[1]} | ${b[2]} |"
    else
      echo "| $1, ${PASS_LABEL[$pi]} | ${a[0]} | ${a[1]} | ${a[2]} | **${b[0]}** ($c) | ${b[1]} | ${b[2]} |"
    fi
  done
}

read -r _ LA_MIN LA_MAX < <(stats "$RES/loadavg")
cat <<EOF

## Results ($(date '+%Y-%m-%d %H:%M %Z'), $(nproc) vCPUs, kernel $(uname -r), $RUNS run(s) each, $([[ $QUICK == 1 ]] && echo "QUICK mode" || echo "full size"), script time $(awk -v s="$TOTAL_SECS" 'BEGIN { printf "%d min %d s", s / 60, s % 60 }'))

Load average (1 min) during the timed rounds: ${LA_MIN}–${LA_MAX}. Main image: ${COUNT} entries
(\`find . | wc -l\`, equal on all ${NTOOLS} tools). Seconds, median (min–max) over $RUNS run(s); IOPS for fio.
Ratios are ratios of medians (for IOPS: time per operation, so < 1 is strata faster).
"CPU 0": daemon started under \`taskset -c 0\` and workload run under it.

| Row | strata | fuse-overlayfs | kernel overlay | strata / fuse-ovl | < 1 | strata / kernel | ≤ 1.5 |
|---|---:|---:|---:|---:|:---:|---:|:---:|
$(subject_rows)

strata first mount (builds the chain's index), unpinned: main $(cell strata.first.main) s, one-layer $(cell strata.first.one) s, ${NLAYERS}-layer $(cell strata.first.fifty) s.
strata load times: main $(cell load.main) s, one $(cell load.one) s, fifty $(cell load.fifty) s.
EOF
if [[ $DIRS_DRIVER != none ]]; then
  cat <<EOF

### stratafs over directory layers (fuse-overlayfs' command line)

\`$DIRS_DRIVER -o lowerdir=TOP:...:BOTTOM[,upperdir=U,workdir=W] DIR\` over the same extracted
directories fuse-overlayfs and kernel overlayfs use (no store). Ratios: stratafs dirs / fuse-overlayfs
(target < 1 on every row), stratafs dirs / kernel (target ≤ 1.5 on the read rows).

| Row | stratafs dirs | fuse-overlayfs | kernel overlay | stratafs dirs / fuse-ovl | < 1 | stratafs dirs / kernel | ≤ 1.5 |
|---|---:|---:|---:|---:|:---:|---:|:---:|
$(SUBJ=sdirs subject_rows)
$(SUBJ=sdirs row "mount, ${NLAYERS}-layer image" mount_fifty time -)
$(SUBJ=sdirs row "mount, 1-layer image" mount_one time -)
EOF
fi
if [[ $NOPT == 1 ]]; then
  cat <<EOF

### strata with --no-passthrough

The same store images, mounted with \`strata mount --no-passthrough\` (writable: \`stratafs
--no-passthrough --upper U --work W\`): reads through the daemon, and an image mount answers no
OPEN (the kernel stops sending them after the first ENOSYS). Ratios: strata no-pt / fuse-overlayfs,
strata no-pt / kernel.

| Row | strata no-pt | fuse-overlayfs | kernel overlay | strata no-pt / fuse-ovl | < 1 | strata no-pt / kernel | ≤ 1.5 |
|---|---:|---:|---:|---:|:---:|---:|:---:|
$(SUBJ=snopt subject_rows)
EOF
fi
if [[ $NOURING == 1 ]]; then
  cat <<EOF

### strata with --no-io-uring

The same store images, mounted with \`strata mount --no-io-uring\` (writable: \`stratafs
--no-io-uring --upper U --work W\`): requests read from /dev/fuse by libfuse's pool of threads
instead of per-CPU io_uring queues (passthrough as in the strata column). Ratios: strata
no-uring / fuse-overlayfs, strata no-uring / kernel.

| Row | strata no-uring | fuse-overlayfs | kernel overlay | strata no-uring / fuse-ovl | < 1 | strata no-uring / kernel | ≤ 1.5 |
|---|---:|---:|---:|---:|:---:|---:|:---:|
$(SUBJ=snour subject_rows)
EOF
fi
if [[ $DIRS_DRIVER != none ]]; then
  LAYER_HDR="| Row | strata | stratafs dirs | fuse-overlayfs | kernel overlay | strata ${NLAYERS}/1 | stratafs dirs ${NLAYERS}/1 | fuse-ovl ${NLAYERS}/1 | kernel ${NLAYERS}/1 |
|---|---:|---:|---:|---:|---:|---:|---:|---:|"
else
  LAYER_HDR="| Row | strata | fuse-overlayfs | kernel overlay | strata ${NLAYERS}/1 | fuse-ovl ${NLAYERS}/1 | kernel ${NLAYERS}/1 |
|---|---:|---:|---:|---:|---:|---:|"
fi
cat <<EOF

Layer count: ${NLAYERS}-layer vs 1-layer image, same final tree (${WALK_N} entries), each on a fresh mount.
Cells: ${NLAYERS} layers / 1 layer, seconds; ratio ${NLAYERS}/1 (strata target ≈ 1.0, here ≤ 1.2).

$LAYER_HDR
$(layer_row "lstat every path from a list (lookups only)" list)
$(layer_row "os.walk + lstat" walk)

| Row | strata | fuse-overlayfs | kernel overlay | strata / fuse-ovl | < 1 | strata / kernel | ≤ 1.5 |
|---|---:|---:|---:|---:|:---:|---:|:---:|
$(row "mount, ${NLAYERS}-layer image" mount_fifty time -)
$(row "mount, 1-layer image" mount_one time -)
EOF
log "done"
