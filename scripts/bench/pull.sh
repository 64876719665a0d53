#!/usr/bin/env bash
# Benchmark of `strata pull` and `strata push` against skopeo (and umoci) with one local registry
# (Debian's docker-registry on 127.0.0.1, plain HTTP), in one run (see docs/benchmarks.md,
# "Registry"):
#
#   A. Pull of the same image, N rounds, the order rotated each round, each into a fresh
#      destination on a journaled ext4 loop filesystem, each followed by `sync` (timed with it):
#        strata         strata --root FRESH pull IMAGE      (download + decompress + dedup store)
#        skopeo         skopeo copy docker://IMAGE oci:DIR  (download only, blobs kept compressed)
#        skopeo+umoci   skopeo copy ..., then umoci unpack  (download, then an unpacked rootfs)
#      Medians and min-max; ratios strata/skopeo and strata/(skopeo+umoci).
#  A2. The same pulls, strata and skopeo only, over a link of N Mbit/s (--link-mbit "N ...",
#      default "400 800": 50 and 100 MB/s), as a pull from a remote registry would see: whether
#      the import keeps up with the download. The link is the loopback of a private network
#      namespace shaped by a token bucket (tc tbf), with a second registry inside it serving the
#      main one's storage: the kernel paces the packets, costing the two CPUs nothing (a pacing
#      proxy in Python, used until Nov 29, took CPU time from the tool that needed it).
#   B. Incremental pull: the store holds v1; v2 shares all layers but the last. strata pulls v2
#      through a counting proxy (tests/testutil/fault_proxy.py): bytes of blobs transferred vs
#      the size of the one new layer blob (+ config). skopeo copies v2 into the OCI layout that
#      already holds v1 through the same proxy, for comparison.
#   C. Push of the same image to a fresh registry each time, N rounds, rotated:
#        strata         strata push (layers regenerated from the store and recompressed, gzip)
#        strata-kept    strata push of an image pulled with --keep-blobs (exact blobs)
#        skopeo         skopeo copy oci:DIR docker://... (blobs already compressed on disk)
#        skopeo-gzip    skopeo copy of the same image from an uncompressed OCI layout: skopeo
#                       compresses while pushing (parallel gzip), the peer of strata's recompression
#      Ratios strata/skopeo-gzip, strata-kept/skopeo. Every push source (strata's stores, skopeo's
#      OCI layouts) lives on the ext4 loop and caches are dropped before each push, so each tool
#      reads its input from disk: strata's from one file per distinct content, skopeo's from
#      one file per layer.
#   Calibration (perf bench sched pipe) at start and end.
#
# Image: a Debian-like base layer copied from this machine's /usr (python3 libs, perl, zoneinfo,
# docs), a layer with one 40 MiB random file, a layer of 2,000 small random files; v2 replaces
# the last layer. gzip-compressed OCI layout built by tests/testutil/mkimage.py and pushed with
# skopeo. Registry storage and fixtures live on a private tmpfs, destinations on the ext4 loop.
#
# Runs as root. Everything it creates (tmpfs, loop image and mount, registries, proxy and network
# namespaces by PID, work dir) is removed on exit, also on failure or Ctrl-C. About 6 minutes
# (full), 1 (--quick).
# Usage: scripts/bench/pull.sh [--quick] [--runs N] [--link-mbit "N ..."] [--strata PATH] [--workdir DIR]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/scripts/bench/lib.sh"
STRATA=$REPO/build-bench/tools/strata
MKIMAGE=$REPO/tests/testutil/mkimage.py
PROXY_PY=$REPO/tests/testutil/fault_proxy.py
WORKBASE=/var/tmp
QUICK=0
RUNS=
LINK_MBITS="400 800"

usage() {
  sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --link-mbit) LINK_MBITS=$2; shift 2 ;;
    --strata) STRATA=$2; shift 2 ;;
    --workdir) WORKBASE=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 >&2 ;;
  esac
done
[ -n "$RUNS" ] || RUNS=$([ "$QUICK" = 1 ] && echo 1 || echo 3)
[ "$(id -u)" = 0 ] || { echo "pull.sh: run as root (loop mount, drop_caches)" >&2; exit 1; }
[ -x "$STRATA" ] || { echo "pull.sh: no strata at $STRATA (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-bench)" >&2; exit 1; }
for c in docker-registry skopeo umoci python3 curl mkfs.ext4 unshare nsenter ip tc; do
  command -v "$c" >/dev/null || { echo "pull.sh: $c is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

WORK=$(mktemp -d "$WORKBASE/strata-bench-pull.XXXXXX")
FIX=$WORK/fix   # tmpfs: fixtures, registry storage
DST=$WORK/dst   # ext4 loop: destinations
PIDS=()
cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  mountpoint -q "$DST" && umount "$DST"
  mountpoint -q "$FIX" && umount "$FIX"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM
mkdir -p "$FIX" "$DST"
mount -t tmpfs -o size=6G tmpfs "$FIX"
# A new file system for the destinations; each timed pull of parts A and A2 gets one.
fresh_dst() { fresh_ext4 "$WORK/dst.img" 8G "$DST"; }
fresh_dst
export DOCKER_CONFIG=$WORK/docker-config STRATA_CERTS_DIR=$WORK/certs
SKOPEO=(skopeo --insecure-policy)

calibrate() {
  if command -v perf >/dev/null; then
    perf bench sched pipe -l 20000 2>/dev/null | awk '/usecs\/op/ {print $1 " us/op"}'
  else
    echo "n/a (no perf)"
  fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_registry NAME: sets REG (host:port) and REG_PID.
start_registry() {
  local dir=$FIX/reg-$1 port
  port=$(free_port)
  mkdir -p "$dir/data"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n  secret: bench\n' \
    "$dir/data" "$port" >"$dir/config.yml"
  env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID=$!
  PIDS+=("$REG_PID")
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && { REG=127.0.0.1:$port; return; }
    sleep 0.1
  done
  echo "registry did not start: $(tail -3 "$dir/log")" >&2
  exit 1
}
stop_registry() {
  kill "$REG_PID" 2>/dev/null || true
  wait "$REG_PID" 2>/dev/null || true
  rm -rf "$FIX/reg-$1"
}

now() { date +%s.%N; }
# timed CMD...: runs CMD then sync; prints the seconds both took.
timed() {
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>"$WORK/last.err" || { echo "FAILED: $* : $(tail -3 "$WORK/last.err")" >&2; exit 1; }
  sync
  t1=$(now)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
stats() {  # stats VALUES...: "median (min-max)"
  python3 -c 'import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(f"{statistics.median(v):.2f} s ({v[0]:.2f}-{v[-1]:.2f})")' "$@"
}
median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

CAL_START=$(calibrate)
echo "== calibration (start): $CAL_START"

echo "== building the image"
mkdir -p "$FIX/src/base" "$FIX/src/big" "$FIX/src/small1" "$FIX/src/small2"
if [ "$QUICK" = 1 ]; then
  cp -a /usr/share/zoneinfo "$FIX/src/base/" 2>/dev/null || true
  cp -a /usr/share/perl5 "$FIX/src/base/" 2>/dev/null || true
  BIG_MB=8 SMALL=300
else
  for d in /usr/lib/python3 /usr/share/perl /usr/share/perl5 /usr/share/zoneinfo /usr/share/doc /usr/share/mime; do
    [ -d "$d" ] && cp -a --parents "$d" "$FIX/src/base/" 2>/dev/null || true
  done
  BIG_MB=40 SMALL=2000
fi
head -c $((BIG_MB << 20)) /dev/urandom >"$FIX/src/big/big.bin"
python3 - "$FIX/src" "$SMALL" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
for layer, seed in (("small1", 1), ("small2", 2)):
    rng = random.Random(seed)
    for i in range(n):
        d = os.path.join(root, layer, f"d{i % 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
            f.write(rng.randbytes(rng.randint(1024, 8192)))
EOF
python3 "$MKIMAGE" --format oci-dir -o "$FIX/oci" --tag bench:v1 --root-owned --no-xattrs --compression gzip \
  --layer "$FIX/src/base" --layer "$FIX/src/big" --layer "$FIX/src/small1" >/dev/null
python3 "$MKIMAGE" --format oci-dir -o "$FIX/oci-raw" --tag bench:v1 --root-owned --no-xattrs --compression none \
  --layer "$FIX/src/base" --layer "$FIX/src/big" --layer "$FIX/src/small1" >/dev/null
python3 "$MKIMAGE" --format oci-dir -o "$FIX/oci2" --tag bench:v2 --root-owned --no-xattrs --compression gzip \
  --layer "$FIX/src/base" --layer "$FIX/src/big" --layer "$FIX/src/small2" >/dev/null
start_registry main
MAIN=$REG
"${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$FIX/oci:v1" "docker://$MAIN/bench:v1"
"${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$FIX/oci2:v2" "docker://$MAIN/bench:v2"
RAW=$("${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$MAIN/bench:v1")
read -r LAYERS COMPRESSED < <(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); print(len(m["layers"]), sum(l["size"] for l in m["layers"]))' "$RAW")
UNCOMPRESSED=$(du -sb --apparent-size "$FIX/src/base" "$FIX/src/big" "$FIX/src/small1" | awk '{s += $1} END {print s}')
echo "image: $LAYERS layers, $((COMPRESSED >> 20)) MiB compressed, $((UNCOMPRESSED >> 20)) MiB of files"

echo "== A. pull ($RUNS rounds)"
declare -a T_STRATA T_SKOPEO T_UMOCI
tools=(strata skopeo umoci)
for round in $(seq 1 "$RUNS"); do
  for k in 0 1 2; do
    tool=${tools[$(((k + round - 1) % 3))]}
    d=$DST/pull-$tool-$round
    fresh_dst
    drop_caches
    case $tool in
      strata) T_STRATA+=("$(timed "$STRATA" --root "$d" pull -q --tls-verify=false "$MAIN/bench:v1")") ;;
      skopeo) T_SKOPEO+=("$(timed "${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$MAIN/bench:v1" "oci:$d:v1")") ;;
      umoci)
        T_UMOCI+=("$(timed bash -c "$(printf '%q ' "${SKOPEO[@]}") copy -q --src-tls-verify=false docker://$MAIN/bench:v1 oci:$d:v1 && umoci unpack --image $d:v1 $d-bundle")")
        ;;
    esac
    rm -rf "$d" "$d-bundle"
  done
done
echo "  strata pull          $(stats "${T_STRATA[@]}")"
echo "  skopeo copy          $(stats "${T_SKOPEO[@]}")"
echo "  skopeo + umoci       $(stats "${T_UMOCI[@]}")"
R_SKOPEO=$(ratio "$(median "${T_STRATA[@]}")" "$(median "${T_SKOPEO[@]}")")
R_UMOCI=$(ratio "$(median "${T_STRATA[@]}")" "$(median "${T_UMOCI[@]}")")
echo "  ratio strata/skopeo = $R_SKOPEO, strata/(skopeo+umoci) = $R_UMOCI"

# start_link MBIT: a private network namespace whose loopback is a link of MBIT Mbit/s, with a
# registry inside serving the main registry's storage; sets IN_LINK (the command prefix that
# enters the namespace), LINK (that registry's host:port, inside it), LINK_NS and LINK_REG (PIDs).
start_link() {
  local dir=$FIX/link-$1 ours
  mkdir -p "$dir"
  unshare --net sleep infinity &
  LINK_NS=$!
  PIDS+=("$LINK_NS")
  ours=$(readlink /proc/self/ns/net)
  for _ in $(seq 1 100); do
    [ "$(readlink "/proc/$LINK_NS/ns/net" 2>/dev/null)" != "$ours" ] && break
    sleep 0.01
  done
  IN_LINK=(nsenter -t "$LINK_NS" -n)
  "${IN_LINK[@]}" ip link set lo up
  # A burst of 256 KiB: above the loopback's 64 KiB packets, small against a second of traffic.
  "${IN_LINK[@]}" tc qdisc add dev lo root tbf rate "${1}mbit" burst 256kb latency 100ms
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:5000\n  secret: bench\n' \
    "$FIX/reg-main/data" >"$dir/config.yml"
  "${IN_LINK[@]}" env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  LINK_REG=$!
  PIDS+=("$LINK_REG")
  for _ in $(seq 1 100); do
    "${IN_LINK[@]}" curl -s -o /dev/null "http://127.0.0.1:5000/v2/" && { LINK=127.0.0.1:5000; return; }
    sleep 0.1
  done
  echo "the registry behind the ${1} Mbit/s link did not start: $(tail -3 "$dir/log")" >&2
  exit 1
}
stop_link() {
  kill "$LINK_REG" "$LINK_NS" 2>/dev/null || true
  wait "$LINK_REG" "$LINK_NS" 2>/dev/null || true
}
echo "== A2. pull over a network link of a given speed ($RUNS rounds each; loopback of a private network namespace, shaped by tc tbf)"
for mbit in $LINK_MBITS; do
  start_link "$mbit"
  declare -a L_STRATA=() L_SKOPEO=()
  for round in $(seq 1 "$RUNS"); do
    for k in 0 1; do
      tool=$([ $(((k + round) % 2)) = 0 ] && echo strata || echo skopeo)
      d=$DST/link-$tool-$round
      fresh_dst
      drop_caches
      case $tool in
        strata) L_STRATA+=("$(timed "${IN_LINK[@]}" "$STRATA" --root "$d" pull -q --tls-verify=false "$LINK/bench:v1")") ;;
        skopeo) L_SKOPEO+=("$(timed "${IN_LINK[@]}" "${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$LINK/bench:v1" "oci:$d:v1")") ;;
      esac
      rm -rf "$d"
    done
  done
  echo "  $mbit Mbit/s: strata pull $(stats "${L_STRATA[@]}"), skopeo copy $(stats "${L_SKOPEO[@]}"), ratio strata/skopeo = $(ratio "$(median "${L_STRATA[@]}")" "$(median "${L_SKOPEO[@]}")")"
  stop_link
done

echo "== B. incremental pull of v2 (all layers but the last shared with v1)"
mkdir -p "$FIX/proxy"
python3 "$PROXY_PY" --upstream "$MAIN" --port-file "$FIX/proxy/port" --stats "$FIX/proxy/stats" &
PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$FIX/proxy/port" ] && break; sleep 0.05; done
PROXY=127.0.0.1:$(cat "$FIX/proxy/port")
blob_bytes() {
  python3 -c 'import json, sys
t = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["method"] == "GET" and "/blobs/sha256:" in e["path"]:
        t += e["bytes"]
print(t)' "$FIX/proxy/stats"
}
RAW2=$("${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$MAIN/bench:v2")
NEW_LAYER=$(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); print(m["layers"][-1]["size"] + m["config"]["size"])' "$RAW2")
"$STRATA" --root "$DST/inc" pull -q --tls-verify=false "$PROXY/bench:v1" >/dev/null
: >"$FIX/proxy/stats"
T_INC=$(timed "$STRATA" --root "$DST/inc" pull -q --tls-verify=false "$PROXY/bench:v2")
INC_STRATA=$(blob_bytes)
"${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$PROXY/bench:v1" "oci:$DST/inc-oci:v1" >/dev/null
: >"$FIX/proxy/stats"
"${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$PROXY/bench:v2" "oci:$DST/inc-oci:v2" >/dev/null
INC_SKOPEO=$(blob_bytes)
echo "  strata pull v2 over v1: $INC_STRATA blob bytes transferred ($T_INC s); new layer + config = $NEW_LAYER bytes; whole image $COMPRESSED"
echo "  skopeo copy v2 into the layout holding v1: $INC_SKOPEO blob bytes"

echo "== C. push ($RUNS rounds, a fresh registry each)"
"$STRATA" --root "$DST/push-src" load -q -i "$FIX/oci" >/dev/null
cp -a "$FIX/oci" "$DST/push-oci"
cp -a "$FIX/oci-raw" "$DST/push-oci-raw"
"$STRATA" --root "$DST/push-src" tag bench:v1 "push.invalid/bench:v1" >/dev/null
"$STRATA" --root "$DST/push-kept" pull -q --keep-blobs --tls-verify=false "$MAIN/bench:v1" >/dev/null
declare -a P_STRATA P_KEPT P_SKOPEO P_SKGZ
ptools=(strata kept skopeo skgz)
for round in $(seq 1 "$RUNS"); do
  for k in 0 1 2 3; do
    tool=${ptools[$(((k + round - 1) % 4))]}
    start_registry "push-$tool-$round"
    drop_caches
    case $tool in
      strata)
        "$STRATA" --root "$DST/push-src" tag bench:v1 "$REG/bench:v1" >/dev/null
        P_STRATA+=("$(timed "$STRATA" --root "$DST/push-src" push -q --tls-verify=false "$REG/bench:v1")")
        ;;
      kept)
        "$STRATA" --root "$DST/push-kept" tag "$MAIN/bench:v1" "$REG/bench:v1" >/dev/null
        P_KEPT+=("$(timed "$STRATA" --root "$DST/push-kept" push -q --tls-verify=false "$REG/bench:v1")")
        ;;
      skopeo) P_SKOPEO+=("$(timed "${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$DST/push-oci:v1" "docker://$REG/bench:v1")") ;;
      skgz) P_SKGZ+=("$(timed "${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$DST/push-oci-raw:v1" "docker://$REG/bench:v1")") ;;
    esac
    stop_registry "push-$tool-$round"
  done
done
echo "  strata push (recompress) $(stats "${P_STRATA[@]}")"
echo "  strata push (kept blobs) $(stats "${P_KEPT[@]}")"
echo "  skopeo copy (gzip blobs) $(stats "${P_SKOPEO[@]}")"
echo "  skopeo copy (compresses) $(stats "${P_SKGZ[@]}")"
echo "  ratio strata/skopeo-compressing = $(ratio "$(median "${P_STRATA[@]}")" "$(median "${P_SKGZ[@]}")"), kept/skopeo = $(ratio "$(median "${P_KEPT[@]}")" "$(median "${P_SKOPEO[@]}")"), strata/skopeo = $(ratio "$(median "${P_STRATA[@]}")" "$(median "${P_SKOPEO[@]}")")"

echo "== calibration (end): $(calibrate) (start: $CAL_START)"
echo "== machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
