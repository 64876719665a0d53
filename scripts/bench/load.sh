#!/usr/bin/env bash
# Benchmark of `strata load` against its performance targets (see docs/benchmarks.md):
#
#   A. Load speed: one image (Debian-like base layer copied from this machine's /usr, a layer with
#      one big random file, a layer with many small random files), as an uncompressed
#      docker-archive and as an uncompressed OCI layout directory. On a fresh journaled ext4 loop
#      filesystem, alternating in one run:
#        tar     GNU tar extracting the same layer tars, each into its own fresh directory (floor)
#        strata  strata --root FRESH load -i image.tar
#        umoci   umoci unpack --image OCIDIR:latest BUNDLE (unless --no-umoci)
#        baseline another strata binary, with --baseline (say, of the previous commit)
#      Medians and min-max over N runs; ratios strata/tar (target <= 1.5), strata/umoci and
#      strata/baseline, each also as the range of the ratios within a round.
#      Peak RSS of strata load, also for an image of only the big file and for a tiny image, to
#      show memory does not grow with file size.
#   B. Dedup on disk: two single-layer images sharing 95% of their files (no layers in common).
#      Store size with both loaded vs image 1 alone (target <= 1.1).
#   C. Calibration (perf bench sched pipe) at start and end, CPU count, kernel.
#
# Runs as root. Everything it makes (work dir, fixture tmpfs, loop image and its mount) is removed
# on exit, also on failure or Ctrl-C. About 10 minutes (full), 1 minute (--quick).
# Usage: scripts/bench/load.sh [--quick] [--runs N] [--strata PATH] [--baseline PATH]
#                                                  [--workdir DIR] [--profile FILE] [--no-umoci]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/scripts/bench/lib.sh"
STRATA=$REPO/build-bench/tools/strata
BASELINE=
UMOCI=1
MKIMAGE=$REPO/tests/testutil/mkimage.py
WORKBASE=/var/tmp
QUICK=0
RUNS=
PROFILE_OUT=
IMG_SIZE=8G

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--strata PATH] [--baseline PATH] [--workdir DIR] [--profile FILE] [--no-umoci]
  --quick         small fixtures and one run per tool (smoke test, ~1 min)
  --runs N        timed runs per tool (default 3; 1 with --quick)
  --strata PATH   strata binary (default build-bench/tools/strata)
  --baseline PATH another strata binary (say, of the previous commit) timed in the same rounds,
                  to compare the two side by side
  --no-umoci      leave umoci out of the rounds (it takes as long as the rest together)
  --workdir DIR   where the temporary work directory is created (default /var/tmp)
  --profile FILE  also record one extra strata load with 'perf record -g' and write flat
                  profiles (by library, symbol, system call) to FILE
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --runs) RUNS=$2; shift ;;
    --strata) STRATA=$2; shift ;;
    --baseline) BASELINE=$(realpath "$2"); shift ;;
    --no-umoci) UMOCI=0 ;;
    --workdir) WORKBASE=$2; shift ;;
    --profile) PROFILE_OUT=$(realpath -m "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then
  RUNS=${RUNS:-1}
  BIG_MB=20
  NSMALL=2000
  BASE_DIRS=(usr/sbin usr/share/perl usr/share/zoneinfo usr/share/mime usr/share/i18n)
else
  RUNS=${RUNS:-3}
  BIG_MB=200
  NSMALL=20000
  # ~320 MB, ~40k entries: binaries, perl and python modules, man pages (small gzip files),
  # documentation (with the duplicate changelogs Debian has), i18n data, zoneinfo (symlinks).
  BASE_DIRS=(usr/sbin usr/libexec usr/lib/python3 usr/share/perl usr/share/perl5 usr/share/man
             usr/share/doc usr/share/zoneinfo usr/share/i18n usr/share/mime usr/share/common-licenses)
fi

die() { echo "load.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

[[ $(id -u) == 0 ]] || die "must run as root (loop and tmpfs mounts)"
[[ -x $STRATA ]] || die "strata binary $STRATA not found; build it first:
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-bench -j2"
for tool in tar python3 mkfs.ext4 losetup mountpoint du; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [[ $UMOCI == 1 ]]; then command -v umoci >/dev/null || die "umoci is not installed (or use --no-umoci)"; fi
[[ -z $BASELINE || -x $BASELINE ]] || die "baseline binary $BASELINE not found"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is not installed (Debian package 'time')"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
if [[ -n $PROFILE_OUT ]] && ! command -v perf >/dev/null; then die "--profile needs perf (linux-perf)"; fi

W=$(mktemp -d "$WORKBASE/strata-bench.XXXXXX")
MNT=$W/mnt
FIX=$W/fix
RES=$W/res
LOGS=$W/log
IMG=$W/fs.img

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  cd /
  if mountpoint -q "$MNT" 2>/dev/null; then
    umount "$MNT" 2>/dev/null || umount -l "$MNT"
  fi
  if mountpoint -q "$FIX" 2>/dev/null; then
    umount "$FIX" 2>/dev/null || umount -l "$FIX"
  fi
  if [[ -e $IMG ]]; then
    local dev
    for dev in $(losetup -n -O NAME -j "$IMG" 2>/dev/null); do losetup -d "$dev"; done
  fi
  if [[ $rc != 0 && -d $LOGS ]]; then
    echo "load.sh: failed (exit $rc); last lines of the logs:" >&2
    tail -n 5 "$LOGS"/* >&2 2>/dev/null
  fi
  [[ -n $W && -d $W ]] && rm -rf --one-file-system "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "load.sh: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$MNT" "$FIX" "$RES" "$LOGS"
# Fixtures live on a tmpfs: inputs stay in memory (no page-out of "warm" inputs), and removing
# tens of thousands of fixture files from the unjournaled root filesystem would take minutes.
mount -t tmpfs -o size=8g,mode=0700 strata-bench-fixtures "$FIX"

calibration() {
  if command -v perf >/dev/null; then
    local u p
    u=$(perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ {print $1}')
    p=$(taskset -c 0 perf bench sched pipe -l 20000 2>&1 | awk '/usecs\/op/ {print $1}')
    printf 'calibration (%s): perf bench sched pipe -l 20000: %.1f us/op unpinned, %.1f us/op on CPU 0; loadavg %s\n' \
      "$1" "$u" "$p" "$(cut -d' ' -f1-3 /proc/loadavg)"
  else
    echo "calibration ($1): perf is not installed (Debian linux-perf), no sched pipe figure; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  fi
}

# stats FILE -> "median min max" of the numbers in FILE, one per line ("n/a n/a n/a" if none)
stats() {
  [[ -s $1 ]] || { echo "n/a n/a n/a"; return; }
  sort -g "$1" | awk '{a[NR]=$1} END {
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%.3f %.3f %.3f\n", m, a[1], a[NR] }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# rstats FILE -> "median min max" of ratios, two decimals
rstats() { stats "$1" | awk '{ for (i = 1; i <= 3; i++) $i = ($i ~ /^[0-9.]+$/) ? sprintf("%.2f", $i) : $i; print }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1048576 }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 <= t + 0) ? "yes" : "**no**" }'; }
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

echo "# strata load benchmark"
echo "date: $(date)"
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
echo "strata: $STRATA ($("$STRATA" --version 2>/dev/null | head -1)); $(tar --version | head -1); $([[ $UMOCI == 1 ]] && umoci --version || echo "umoci: not run")"
[[ -z $BASELINE ]] || echo "baseline strata: $BASELINE"
echo "mode: $([[ $QUICK == 1 ]] && echo quick || echo full), $RUNS run(s) per tool"
calibration start

# ---------------------------------------------------------------------------------------------
# Fixtures (on a tmpfs; only outputs go to the loop filesystem)
log "building fixtures in $W"
L1=$FIX/layers/base
L2=$FIX/layers/big
L3=$FIX/layers/small
mkdir -p "$L1" "$L2/data" "$L3/data/small"
(cd / && cp -a --parents "${BASE_DIRS[@]}" "$L1/")
log "  copied the base tree; writing the random files"
head -c "${BIG_MB}M" /dev/urandom >"$L2/data/big.bin"
python3 - "$L3/data/small" "$NSMALL" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 200))
    if i % 200 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 8192)))
EOF

mk() { python3 "$MKIMAGE" --root-owned "$@" >>"$LOGS/mkimage.log"; }
log "  oci-dir"
# The OCI layout first (it tars the directories); its uncompressed blobs are the layer tars that
# the docker-archive, the tar floor and part B reuse byte for byte.
mk --format oci-dir --compression none -o "$FIX/oci" --tag bench/load:latest \
  --layer "$L1" --layer "$L2" --layer "$L3" --summary "$FIX/oci.json"
mapfile -t LAYER_TARS < <(python3 -c '
import json, sys
for l in json.load(open(sys.argv[1]))["layers"]:
    print(sys.argv[2] + "/blobs/sha256/" + l["digest"].split(":")[1])' "$FIX/oci.json" "$FIX/oci")
log "  docker-archives"
mk --format docker-archive -o "$FIX/image.tar" --tag bench/load:latest \
  --layer "${LAYER_TARS[0]}" --layer "${LAYER_TARS[1]}" --layer "${LAYER_TARS[2]}"
mk --format docker-archive -o "$FIX/bigonly.tar" --tag bench/big:latest --layer "${LAYER_TARS[1]}"
mkdir -p "$FIX/layers/tiny/etc" && echo hello >"$FIX/layers/tiny/etc/hello"
mk --format docker-archive -o "$FIX/tiny.tar" --tag bench/tiny:latest --layer "$FIX/layers/tiny"

log "  part B images"
# Part B: image 2 is a copy of the base tree with every 20th regular file changed and every mtime
# moved, so its one layer differs from image 1's while 95% of the file contents are shared.
cp -a "$L1" "$FIX/layers/base2"
python3 - "$FIX/layers/base2" >"$RES/b_changed" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(2)
files, total = [], 0
for dp, dns, fns in os.walk(root):
    dns.sort()
    for fn in sorted(fns):
        p = os.path.join(dp, fn)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
            total += os.path.getsize(p)
changed = changed_bytes = 0
inodes = set()
for i, p in enumerate(files):
    st = os.lstat(p)
    if i % 20 == 0 and (st.st_dev, st.st_ino) not in inodes:
        inodes.add((st.st_dev, st.st_ino))
        with open(p, "ab") as f:
            f.write(rng.randbytes(64))
        changed += 1
        changed_bytes += st.st_size + 64
for dp, dns, fns in os.walk(root):
    for n in dns + fns:
        os.utime(os.path.join(dp, n), (1900000000, 1900000000), follow_symlinks=False)
os.utime(root, (1900000000, 1900000000))
print(changed, len(files), changed_bytes, total)
EOF
read -r B_CHANGED B_FILES B_CHANGED_BYTES B_TOTAL_BYTES <"$RES/b_changed"
mk --format docker-archive -o "$FIX/b1.tar" --tag bench/b1:latest --layer "${LAYER_TARS[0]}" \
  --summary "$FIX/b1.json"
mk --format docker-archive -o "$FIX/b2.tar" --tag bench/b2:latest --layer "$FIX/layers/base2" \
  --summary "$FIX/b2.json"
B_DIFF1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["diff_ids"][0])' "$FIX/b1.json")
B_DIFF2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["diff_ids"][0])' "$FIX/b2.json")
[[ $B_DIFF1 != "$B_DIFF2" ]] || die "part B images share their layer"
rm -rf "$FIX/layers"   # the directories are no longer needed; the tars are

BASE_ENTRIES=$(tar -tf "${LAYER_TARS[0]}" | wc -l)
BASE_MB=$(mib "$(stat -c %s "${LAYER_TARS[0]}")")
IMAGE_MB=$(mib "$(stat -c %s "$FIX/image.tar")")
echo "image: base layer ${BASE_MB} MiB tar / ${BASE_ENTRIES} entries (${BASE_DIRS[*]}), big-file layer ${BIG_MB} MiB, small-file layer ${NSMALL} files of 1-8 KiB; docker-archive ${IMAGE_MB} MiB, OCI dir uncompressed"

# ---------------------------------------------------------------------------------------------
# Every timed run gets a new file system (fresh_ext4 says why).
fresh_fs() { fresh_ext4 "$IMG" "$IMG_SIZE" "$MNT"; }
log "creating the $IMG_SIZE journaled ext4 loop filesystem"
fresh_fs

warm() {  # read the inputs into the page cache right before a timed run
  local f
  for f in "$@"; do
    if [[ -d $f ]]; then find "$f" -type f -exec cat {} + >/dev/null; else cat "$f" >/dev/null; fi
  done
}

# timed LABEL OUTPUT CMD...: runs CMD, records wall time, wall time of the sync after it, peak RSS,
# CPU time (user + system of the command and its children); then removes OUTPUT and syncs again
# (untimed).
timed() {
  local label=$1 out=$2 t0 t1 t2
  shift 2
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%M %U %S' -o "$RES/rss.tmp" "$@" >>"$LOGS/$label.log" 2>&1; then
    die "$label failed: $*"
  fi
  t1=$EPOCHREALTIME
  sync
  t2=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$RES/$label.time"
  awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f\n", b - a }' >>"$RES/$label.timesync"
  tail -n 1 "$RES/rss.tmp" | awk '{print $1}' >>"$RES/$label.rss"
  tail -n 1 "$RES/rss.tmp" | awk '{printf "%.2f\n", $2 + $3}' >>"$RES/$label.cpu"
  # sanity check (untimed): how many regular files the run produced
  find "$out" -type f | wc -l >"$RES/$label.files"
  rm -rf "$out"
  sync
}

run_tool() {  # run_tool TOOL ROUND
  local out=$MNT/out.$1.$2
  fresh_fs
  case $1 in
    tar)
      warm "${LAYER_TARS[@]}"
      # shellcheck disable=SC2016  # the inner script expands its own arguments
      timed tar "$out" bash -c 'out=$1; shift; i=0
        for t; do i=$((i+1)); mkdir -p "$out/$i"; tar -xf "$t" -C "$out/$i"; done' _ "$out" "${LAYER_TARS[@]}"
      ;;
    strata)
      warm "$FIX/image.tar"
      timed strata "$out" "$STRATA" --root "$out" load -q -i "$FIX/image.tar"
      ;;
    baseline)
      warm "$FIX/image.tar"
      timed baseline "$out" "$BASELINE" --root "$out" load -q -i "$FIX/image.tar"
      ;;
    umoci)
      warm "$FIX/oci"
      timed umoci "$out" umoci unpack --image "$FIX/oci:latest" "$out"
      ;;
  esac
}

TOOLS=(tar strata)
[[ -z $BASELINE ]] || TOOLS+=(baseline)
[[ $UMOCI == 0 ]] || TOOLS+=(umoci)
log "part A: $RUNS round(s) of ${TOOLS[*]}"
for ((r = 0; r < RUNS; r++)); do
  for ((k = 0; k < ${#TOOLS[@]}; k++)); do  # rotate the order each round
    tool=${TOOLS[$(((r + k) % ${#TOOLS[@]}))]}
    log "  round $((r + 1)): $tool"
    run_tool "$tool" "$r"
  done
  # paired ratios of this round (all measured within a minute or two of each other)
  n=$((r + 1))
  st=$(sed -n "${n}p" "$RES/strata.time")
  { div "$st" "$(sed -n "${n}p" "$RES/tar.time")"; echo; } >>"$RES/ratios_tar"
  if [[ -n $BASELINE ]]; then
    { div "$(sed -n "${n}p" "$RES/baseline.time")" "$(sed -n "${n}p" "$RES/tar.time")"; echo; } >>"$RES/ratios_base_tar"
    { div "$st" "$(sed -n "${n}p" "$RES/baseline.time")"; echo; } >>"$RES/ratios_base"
  fi
  if [[ $UMOCI == 1 ]]; then
    { div "$st" "$(sed -n "${n}p" "$RES/umoci.time")"; echo; } >>"$RES/ratios_umoci"
  fi
done

# Memory: peak RSS of loads that differ only in file size / count.
log "part A: peak RSS of strata load for the big-file-only and tiny images"
for img in bigonly tiny; do
  warm "$FIX/$img.tar"
  timed "mem_$img" "$MNT/out.mem" "$STRATA" --root "$MNT/out.mem" load -q -i "$FIX/$img.tar"
done

# Store statistics of one load (not timed), for the notes.
"$STRATA" --root "$MNT/out.df" load -q -i "$FIX/image.tar" >/dev/null
"$STRATA" --root "$MNT/out.df" system df --format json >"$RES/a_df.json"
A_OBJECTS=$(json_get "$RES/a_df.json" Objects)
A_DISK=$(json_get "$RES/a_df.json" DiskSize)
A_LOGICAL=$(json_get "$RES/a_df.json" LogicalSize)
rm -rf "$MNT/out.df"; sync

if [[ -n $PROFILE_OUT ]]; then
  log "profiling one strata load (perf record -g)"
  warm "$FIX/image.tar"
  perf record -q -g -o "$W/perf.data" -- "$STRATA" --root "$MNT/out.prof" load -q -i "$FIX/image.tar" \
    >>"$LOGS/perf.log" 2>&1
  {
    echo "=== strata load -i image.tar (full image), perf record -g"
    echo "=== self time by shared object"
    perf report -i "$W/perf.data" --stdio --no-children -g none --sort dso --percent-limit 0.5
    echo "=== self time by symbol (libcrypto has no symbols here: its SHA-256 shows as addresses)"
    perf report -i "$W/perf.data" --stdio --no-children -g none --sort dso,symbol --percent-limit 0.3
    echo "=== system calls, including callees"
    perf report -i "$W/perf.data" --stdio --children -g none --sort symbol --percent-limit 0.5 |
      grep -E '__x64_sys_' || true
  } 2>>"$LOGS/perf.log" | grep -v -e '^#' -e '^$' | cut -c1-110 | sed 's/ *$//' >"$PROFILE_OUT"
  rm -rf "$MNT/out.prof"; sync
fi

# ---------------------------------------------------------------------------------------------
log "part B: dedup on disk"
store_size() {  # store_size ROOT -> "du_apparent du_allocated DiskSize"
  local du_b du_k disk
  sync
  du_b=$(du -sb "$1" | cut -f1)
  du_k=$(du -s --block-size=1 "$1" | cut -f1)
  "$STRATA" --root "$1" system df --format json >"$RES/df.json"
  disk=$(json_get "$RES/df.json" DiskSize)
  echo "$du_b $du_k $disk"
}
"$STRATA" --root "$MNT/b-one" load -q -i "$FIX/b1.tar" >>"$LOGS/b.log"
read -r B1_DU B1_ALLOC B1_DISK < <(store_size "$MNT/b-one")
"$STRATA" --root "$MNT/b-both" load -q -i "$FIX/b1.tar" >>"$LOGS/b.log"
"$STRATA" --root "$MNT/b-both" load -q -i "$FIX/b2.tar" >>"$LOGS/b.log"
read -r B2_DU B2_ALLOC B2_DISK < <(store_size "$MNT/b-both")
B_LOGICAL=$(json_get "$RES/df.json" LogicalSize)
rm -rf "$MNT/b-one" "$MNT/b-both"; sync
B_RATIO_DU=$(div "$B2_DU" "$B1_DU")
B_RATIO_ALLOC=$(div "$B2_ALLOC" "$B1_ALLOC")
B_RATIO_DISK=$(div "$B2_DISK" "$B1_DISK")
B_IDEAL=$(awk -v c="$B_CHANGED_BYTES" -v t="$B_TOTAL_BYTES" 'BEGIN { printf "%.3f", 1 + c / t }')

# ---------------------------------------------------------------------------------------------
read -r TAR_M TAR_MIN TAR_MAX < <(stats "$RES/tar.time")
read -r STR_M STR_MIN STR_MAX < <(stats "$RES/strata.time")
read -r UMO_M UMO_MIN UMO_MAX < <(stats "$RES/umoci.time")
read -r TARS_M TARS_MIN TARS_MAX < <(stats "$RES/tar.timesync")
read -r STRS_M STRS_MIN STRS_MAX < <(stats "$RES/strata.timesync")
read -r UMOS_M UMOS_MIN UMOS_MAX < <(stats "$RES/umoci.timesync")
read -r _ RT_MIN RT_MAX < <(rstats "$RES/ratios_tar")
read -r TARC_M TARC_MIN TARC_MAX < <(stats "$RES/tar.cpu")
read -r STRC_M STRC_MIN STRC_MAX < <(stats "$RES/strata.cpu")
read -r UMOC_M UMOC_MIN UMOC_MAX < <(stats "$RES/umoci.cpu")
read -r _ RU_MIN RU_MAX < <(rstats "$RES/ratios_umoci")
read -r BASE_M BASE_MIN BASE_MAX < <(stats "$RES/baseline.time")
read -r BASES_M BASES_MIN BASES_MAX < <(stats "$RES/baseline.timesync")
read -r BASEC_M BASEC_MIN BASEC_MAX < <(stats "$RES/baseline.cpu")
read -r _ RB_MIN RB_MAX < <(rstats "$RES/ratios_base")
read -r _ RBT_MIN RBT_MAX < <(rstats "$RES/ratios_base_tar")
RATIO_TAR=$(div "$STR_M" "$TAR_M")
RATIO_UMOCI=$(div "$STR_M" "$UMO_M")
RATIO_TAR_SYNC=$(div "$STRS_M" "$TARS_M")
RATIO_UMOCI_SYNC=$(div "$STRS_M" "$UMOS_M")
rss_max() { if [[ -s $1 ]]; then sort -n "$1" | tail -n 1; else echo n/a; fi; }
RSS_TAR=$(rss_max "$RES/tar.rss"); RSS_STR=$(rss_max "$RES/strata.rss"); RSS_UMO=$(rss_max "$RES/umoci.rss")
RSS_BASE=$(rss_max "$RES/baseline.rss")
RSS_BIG=$(rss_max "$RES/mem_bigonly.rss"); RSS_TINY=$(rss_max "$RES/mem_tiny.rss")
kib2mib() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9]+$/) printf "%.0f", a / 1024; else print "n/a" }'; }
files_of() { if [[ -s $RES/$1.files ]]; then cat "$RES/$1.files"; else echo "n/a"; fi; }
UMOCI_ROW= UMOCI_RATIO_ROWS=
if [[ $UMOCI == 1 ]]; then
  UMOCI_ROW="| umoci unpack (OCI dir) | $UMO_M | $UMO_MIN–$UMO_MAX | $UMOS_M ($UMOS_MIN–$UMOS_MAX) | $UMOC_M ($UMOC_MIN–$UMOC_MAX) | $(kib2mib "$RSS_UMO") MiB |"
  UMOCI_RATIO_ROWS="| strata / umoci (ratio of medians; per-round range) | $RATIO_UMOCI ($RU_MIN–$RU_MAX) | (info) | |
| strata / umoci, both including sync | $RATIO_UMOCI_SYNC | (info) | |"
fi
BASE_ROW= BASE_RATIO_ROWS=
if [[ -n $BASELINE ]]; then
  BASE_ROW="| baseline strata load (--baseline) | $BASE_M | $BASE_MIN–$BASE_MAX | $BASES_M ($BASES_MIN–$BASES_MAX) | $BASEC_M ($BASEC_MIN–$BASEC_MAX) | $(kib2mib "$RSS_BASE") MiB |"
  BASE_RATIO_ROWS="| baseline / tar (ratio of medians; per-round range) | $(div "$BASE_M" "$TAR_M") ($RBT_MIN–$RBT_MAX) | (info) | |
| strata / baseline (ratio of medians; per-round range) | $(div "$STR_M" "$BASE_M") ($RB_MIN–$RB_MAX) | (info) | |
| strata / baseline, CPU time | $(div "$STRC_M" "$BASEC_M") | (info) | |"
fi

calibration end

cat <<EOF

## Results ($(date '+%Y-%m-%d %H:%M %Z'), $(nproc) vCPUs, kernel $(uname -r), $RUNS run(s) each, $([[ $QUICK == 1 ]] && echo "QUICK mode" || echo "full size"))

Image: base layer ${BASE_MB} MiB / ${BASE_ENTRIES} entries + one ${BIG_MB} MiB random file + ${NSMALL} random files of 1–8 KiB (docker-archive ${IMAGE_MB} MiB, uncompressed).
Times are wall seconds, median (min–max); "+ sync" adds the \`sync\` right after the command
(strata makes its data durable itself, tar and umoci leave it in the page cache). CPU time is the
command's own user + system time; kernel writeback threads are not included.

| Load (fresh journaled ext4 loop fs, warm input) | median s | min–max s | + sync, median (min–max) s | CPU s (user+sys), median (min–max) | peak RSS |
|---|---:|---:|---:|---:|---:|
| GNU tar -xf, layer tars into dirs (floor) | $TAR_M | $TAR_MIN–$TAR_MAX | $TARS_M ($TARS_MIN–$TARS_MAX) | $TARC_M ($TARC_MIN–$TARC_MAX) | $(kib2mib "$RSS_TAR") MiB |
| strata load -i docker-archive | $STR_M | $STR_MIN–$STR_MAX | $STRS_M ($STRS_MIN–$STRS_MAX) | $STRC_M ($STRC_MIN–$STRC_MAX) | $(kib2mib "$RSS_STR") MiB |
${BASE_ROW:+$BASE_ROW
}${UMOCI_ROW:+$UMOCI_ROW
}
| Target | Result | Target | Met |
|---|---:|---:|:---:|
| strata / tar (ratio of medians; per-round range) | $RATIO_TAR ($RT_MIN–$RT_MAX) | ≤ 1.5 | $(verdict "$RATIO_TAR" 1.5) |
| strata / tar, both including sync | $RATIO_TAR_SYNC | (info) | |
| strata / tar, CPU time | $(div "$STRC_M" "$TARC_M") | (info) | |
${BASE_RATIO_ROWS:+$BASE_RATIO_ROWS
}${UMOCI_RATIO_ROWS:+$UMOCI_RATIO_ROWS
}| strata load peak RSS: full image / ${BIG_MB} MiB-file-only image / tiny image | $(kib2mib "$RSS_STR") / $(kib2mib "$RSS_BIG") / $(kib2mib "$RSS_TINY") MiB | bounded | $(awk -v b="$RSS_BIG" -v t="$RSS_TINY" -v m="$BIG_MB" 'BEGIN { print (b - t < m * 1024 / 4) ? "yes" : "**no**" }') |
| Dedup: store with images 1+2 / image 1 alone, du -sb | $B_RATIO_DU ($(mib "$B2_DU") / $(mib "$B1_DU") MiB) | ≤ 1.1 | $(verdict "$B_RATIO_DU" 1.1) |
| Dedup: same, allocated blocks (du -s -B1) | $B_RATIO_ALLOC ($(mib "$B2_ALLOC") / $(mib "$B1_ALLOC") MiB) | ≤ 1.1 | $(verdict "$B_RATIO_ALLOC" 1.1) |
| Dedup: same, strata system df DiskSize | $B_RATIO_DISK ($(mib "$B2_DISK") / $(mib "$B1_DISK") MiB) | ≤ 1.1 | $(verdict "$B_RATIO_DISK" 1.1) |

Dedup images: ${B_FILES} regular files, ${B_CHANGED} changed (every 20th, 64 bytes appended; $(mib "$B_CHANGED_BYTES") of $(mib "$B_TOTAL_BYTES") MiB of content), all mtimes moved; no layer in common. Ideal ratio (changed content only) ${B_IDEAL}; logical size of both images $(mib "$B_LOGICAL") MiB.
Sanity: regular files written by one run: tar $(files_of tar), umoci $(files_of umoci) (rootfs + bundle metadata), strata $(files_of strata) (store: objects, blobs, tar-splits, metadata).
Store after loading the part A image: ${A_OBJECTS} file objects, DiskSize $(mib "$A_DISK") MiB for $(mib "$A_LOGICAL") MiB logical.
EOF
log "done"
