# Shared helpers for the integration tests: source it first thing.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   STRATA_BIN, STRATA_SRC  from the environment (ctest sets both), else found in the repo
#   WORK                    a fresh temp directory, removed on exit (also on failure)
#   STRATA_ROOT             a fresh store root under WORK (exported; new_root makes another)
#   run_strata ARGS...      runs strata (through NETNS_EXEC, when set); sets OUT, ERR (text) and RC;
#                           never fails itself
#   NETNS_EXEC              a command prefix that enters the test's private network namespace
#                           (empty: the host's); set by registry_lib.sh's enter_private_netns
#   expect_rc N ARGS...     run_strata, then fails unless the exit code is N
#   fail MSG, assert_eq EXPECTED ACTUAL [WHAT], assert_contains HAYSTACK NEEDLE [WHAT],
#   assert_not_contains, assert_match TEXT REGEX [WHAT], assert_file_count DIR N [WHAT]
#   strata_ok ARGS...       expect_rc 0, then prints OUT (for $(...))
#   mkimage ARGS...         tests/testutil/mkimage.py (prints the image ID)
#   demo_image OUT          scripts/make-demo-image.sh OUT (cached per test run); prints the ID
#   json_eval EXPR [ARGS]   evaluates a Python expression on the JSON document on stdin (`j`)
#   count_files DIR, sha256_of FILE, need_cmd CMD..., track_pid PID (killed at exit)
#   resident FILE, drop_cache FILE, kernel_has_fuse_passthrough   page-cache probes (passthrough)
#   new_root                switches STRATA_ROOT to another fresh root
#   track_mount DIR         DIR is unmounted at exit if it is still mounted (also on failure)
#   unmount_under_work      unmounts everything below WORK (register with at_exit)
#   step MSG, pass          progress lines with elapsed time; call pass at the end
set -Eeuo pipefail

TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
STRATA_SRC=${STRATA_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${STRATA_BIN:-}" ]; then
  for candidate in "$STRATA_SRC/build/tools/strata" "$STRATA_SRC/build-it/tools/strata"; do
    if [ -x "$candidate" ]; then
      STRATA_BIN=$candidate
      break
    fi
  done
fi
if [ -z "${STRATA_BIN:-}" ] || [ ! -x "$STRATA_BIN" ]; then
  echo "$TEST_NAME: strata binary not found; set STRATA_BIN (build with cmake first)" >&2
  exit 1
fi
export STRATA_BIN STRATA_SRC
# The interpreter itself, not a version manager's shim (pyenv's costs ~0.3 s per start).
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)}
export PYTHON
MKIMAGE_PY="$STRATA_SRC/tests/testutil/mkimage.py"
MKTARCORPUS_PY="$STRATA_SRC/tests/testutil/mktarcorpus.py"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-it-$TEST_NAME.XXXXXX")
_BG_PIDS=()
_AT_EXIT=()

# write_fsynced FILE: "synced data\n" 1,000 times (12,000 bytes), fsynced before it returns: what
# a crash test expects to find again.
write_fsynced() {
  "$PYTHON" - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"synced data\n" * 1000)
os.fsync(fd)
os.close(fd)
PY
}

# at_exit CMD: runs CMD (eval'd) at exit, before the work directory goes; last registered first.
# Use this instead of replacing the EXIT trap (e.g. to unmount what a test mounted).
at_exit() { _AT_EXIT=("$1" "${_AT_EXIT[@]}"); }

# The EXIT trap. Exits with RC (default: the status the script exited with). Never stops early:
# errexit is off here, so one failing step does not leave the rest undone.
_cleanup() {
  local rc=${1:-$?}
  set +e
  trap - ERR
  local pid hook
  for hook in "${_AT_EXIT[@]}"; do
    eval "$hook"
  done
  for pid in "${_BG_PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "$TEST_NAME: kept $WORK" >&2
  else
    # Store files are 0444 and some tests chmod directories: make it all removable first.
    chmod -R u+rwX "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'echo "FAIL: $TEST_NAME: line $LINENO: command failed (exit $?): $BASH_COMMAND" >&2' ERR

_MOUNTS=()
track_mount() { _MOUNTS+=("$1"); }
_unmount_tracked() {
  local m
  for m in "${_MOUNTS[@]}"; do
    if grep -q " $m " /proc/mounts; then umount -l "$m" 2>/dev/null || true; fi
  done
}
at_exit _unmount_tracked

# unmount_under_work: every mount below WORK, deepest first (for at_exit; tests whose mounts
# are made by strata itself, which track_mount cannot know in advance).
unmount_under_work() {
  local m
  for m in $(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# Remember a background process started by the test so cleanup kills it.
track_pid() { _BG_PIDS+=("$1"); }

_ROOT_SEQ=0
# A fresh, empty store root (exported as STRATA_ROOT); prints nothing.
new_root() {
  _ROOT_SEQ=$((_ROOT_SEQ + 1))
  STRATA_ROOT="$WORK/root$_ROOT_SEQ"
  export STRATA_ROOT
}
new_root

fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  if [ -n "${OUT+x}" ]; then
    printf '  last strata (exit %s) stdout:\n%s\n  stderr:\n%s\n' "${RC:-?}" "${OUT:-}" "${ERR:-}" >&2
  fi
  exit 1
}

assert_eq() {
  local expected=$1 actual=$2 what=${3:-value}
  if [ "$expected" != "$actual" ]; then
    fail "$what: expected [$expected], got [$actual]"
  fi
}

assert_contains() {
  local haystack=$1 needle=$2 what=${3:-output}
  case "$haystack" in
    *"$needle"*) ;;
    *) fail "$what does not contain [$needle]: [$haystack]" ;;
  esac
}

assert_not_contains() {
  local haystack=$1 needle=$2 what=${3:-output}
  case "$haystack" in
    *"$needle"*) fail "$what contains [$needle]: [$haystack]" ;;
    *) ;;
  esac
}

assert_match() {
  local text=$1 regex=$2 what=${3:-value}
  if ! [[ $text =~ $regex ]]; then
    fail "$what [$text] does not match /$regex/"
  fi
}

# Number of regular files below DIR (0 when DIR does not exist).
count_files() {
  if [ -d "$1" ]; then find "$1" -type f | wc -l | tr -d ' '; else echo 0; fi
}

assert_file_count() {
  local dir=$1 want=$2 what=${3:-"files under $1"}
  assert_eq "$want" "$(count_files "$dir")" "$what"
}

NETNS_EXEC=()
# Runs strata with the current stdin; sets OUT, ERR and RC. Trailing newlines are stripped, as by $(...).
run_strata() {
  local rc=0
  "${NETNS_EXEC[@]}" "$STRATA_BIN" "$@" >"$WORK/.stdout" 2>"$WORK/.stderr" || rc=$?
  RC=$rc
  OUT=$(cat "$WORK/.stdout")
  ERR=$(cat "$WORK/.stderr")
}

# expect_rc N ARGS...: runs strata and fails unless it exits N.
expect_rc() {
  local want=$1
  shift
  run_strata "$@"
  if [ "$RC" != "$want" ]; then
    fail "strata $* exited $RC, expected $want"
  fi
}

# Strata must succeed; its stdout is printed (for $(...)).
strata_ok() {
  expect_rc 0 "$@"
  if [ -n "$OUT" ]; then printf '%s\n' "$OUT"; fi
}

mkimage() { "$PYTHON" "$MKIMAGE_PY" "$@"; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
# object_of FILE: where the store at $STRATA_ROOT keeps FILE's content.
object_of() { local h; h=$(sha256_of "$1"); echo "$STRATA_ROOT/objects/${h:0:2}/${h:2}"; }

# Page-cache probes for FUSE passthrough: with it the kernel reads the backing file (a store
# object, a lower file) itself, so its pages come back after drop_cache; without it the mount's
# own page cache answers a second read. resident FILE prints the bytes of FILE in memory.
resident() { fincore --bytes --noheadings --output RES "$1" | tr -d ' '; }
drop_cache() {
  # Dirty pages (a file just written) are not dropped: written back first.
  "$PYTHON" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}
kernel_has_fuse_passthrough() {  # Linux 6.9+
  local major minor
  IFS=. read -r major minor _ <<< "$(uname -r)"
  [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 9 ]; }
}

# FUSE over io_uring (Linux 6.14+). The daemon's rings are its io_uring fds; fdinfo's CqTail
# counts the completions of each, one per request the ring answered.
kernel_has_fuse_uring() { [ -e /sys/module/fuse/parameters/enable_uring ]; }
possible_cpus() {  # what the kernel counts queues for: "0-1" -> 2
  "$PYTHON" -c 'import sys
n = 0
for r in open("/sys/devices/system/cpu/possible").read().strip().split(","):
    a, _, b = r.partition("-")
    n += int(b or a) - int(a) + 1
print(n)'
}
uring_fds() {  # uring_fds PID: its io_uring fd numbers
  local fd
  for fd in /proc/"$1"/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:[io_uring]" ] && echo "${fd##*/}"
  done
  return 0
}
uring_completions() {  # uring_completions PID FD: CqTail of that ring
  awk '$1 == "CqTail:" { print $2 }' "/proc/$1/fdinfo/$2"
}
# daemon_pid DIR: the stratafs daemon serving mount point DIR (named stratafs, its command line
# ends in the mount point).
daemon_pid() {
  local p
  for p in $(pgrep -x stratafs || true); do
    if [ "$(tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | tail -1)" = "$1" ]; then echo "$p"; return 0; fi
  done
  return 1
}

# demo_image OUT: the busybox demo image (strata-demo:latest), built once per test run; prints
# its image ID (sha256:...).
demo_image() {
  if [ ! -f "$WORK/.demo-image.tar" ]; then
    "$STRATA_SRC/scripts/make-demo-image.sh" "$WORK/.demo-image.tar" >"$WORK/.demo-image.id" 2>"$WORK/.demo-image.log" ||
      fail "make-demo-image.sh failed: $(cat "$WORK/.demo-image.log")"
  fi
  cp "$WORK/.demo-image.tar" "$1"
  cat "$WORK/.demo-image.id"
}

# json_eval EXPR [ARGS...]: parses JSON from stdin as `j` and prints eval(EXPR) (strings as they
# are, anything else as JSON); ARGS are sys.argv[2:].
json_eval() {
  "$PYTHON" -c 'import json,sys
j = json.load(sys.stdin)
r = eval(sys.argv[1])
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))' "$@"
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || fail "required tool '$c' is not installed"
  done
}

_T0=${EPOCHREALTIME/[.,]/}
_elapsed() { local now=${EPOCHREALTIME/[.,]/}; printf '%d.%02ds' $(((now - _T0) / 1000000)) $(((now - _T0) / 10000 % 100)); }
step() {
  echo "--- $TEST_NAME [$(_elapsed)]: $*"
}

pass() {
  echo "PASS: $TEST_NAME ($(_elapsed))"
}
