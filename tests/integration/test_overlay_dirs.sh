#!/usr/bin/env bash
# stratafs as a drop-in for fuse-overlayfs over plain directory layers (issue 6): the driver is
# given fuse-overlayfs' command line (`DRIVER -o lowerdir=TOP:...:BOTTOM[,upperdir=U,workdir=W]
# [,options] MNT`) over layers in overlay format made here by hand, and must
#   - show the merged view (0:0 char-device and `.wh.NAME` whiteouts, opaque directories by the
#     trusted.overlay.opaque xattr and by a `.wh..wh..opq` file, directories merged over layers),
#     the same as kernel overlayfs shows for the same layers;
#   - make every change of test_union.sh, with the results kernel overlayfs gives for the same
#     changes (copy-up, chmod/chown/utimes, truncate, unlink, rmdir, rm -rf, renames of files and
#     of lower DIRECTORIES, hardlinks, symlinks, xattrs; EPERM for a 0:0 device, ENAMETOOLONG for a
#     256-byte name, deep paths, no hang on an xattr of a symlink into the mount, EROFS without
#     an upper directory);
#   - write an upper that kernel overlayfs reads back with the identical listing, and read the
#     upper kernel overlayfs wrote;
#   - take the options containers-storage passes to a mount_program (uidmapping/gidmapping,
#     squash_to_uid/gid, volatile, nodev, lowerdirs through symlinks), squash_to_root,
#     static_nlink, noacl, fsync=0, threaded, fsname=; mount by `mount -t fuse.NAME` and unmount
#     with `umount` and `fusermount3 -u`; refuse unknown options and missing lower directories.
#
# The driver is a variable, so that the test is checked against other implementations of the
# same command line:
#   DRIVER=/path/to/stratafs (default: STRATAFS_BIN, as ctest sets it, or the build's fs/stratafs)
#   DRIVER=$(command -v fuse-overlayfs)
#   DRIVER=kernel            kernel overlayfs itself (`mount -t overlay`); the FUSE-only checks
#                            (mount options, mount helper) and the `.wh.`-file layer do not apply.
# Every check runs even when an earlier one failed; the summary lists the failed ones.
# EXPECT_FAIL="name name..." turns those failures into expected ones (exit 0 if nothing else
# fails), e.g. the checks fuse-overlayfs 1.10 is known to fail:
#   EXPECT_FAIL="$(cat tests/integration/overlay_dirs_fuse-overlayfs.xfail)" \
#     DRIVER=$(command -v fuse-overlayfs) FSINTEGRITY_BIN=build/tests/strata_fsintegrity bash tests/integration/test_overlay_dirs.sh
# Against another driver, no strata build is needed: this test runs no strata command (lib.sh
# wants one; fsintegrity then comes from FSINTEGRITY_BIN).
if [ -n "${DRIVER:-}" ] && [ -z "${STRATA_BIN:-}" ]; then STRATA_BIN=$(type -P true); export STRATA_BIN; fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd setfattr getfattr mknod timeout setpriv fusermount3 mountpoint

if [ -z "${DRIVER:-}" ]; then
  DRIVER=${STRATAFS_BIN:-$(dirname "$STRATA_BIN")/../fs/stratafs}
fi
if [ "$DRIVER" = kernel ]; then
  KIND=kernel DRIVER_NAME=overlay
else
  KIND=fuse
  DRIVER=$(realpath "$DRIVER" 2>/dev/null) || fail "driver $DRIVER not found"
  [ -x "$DRIVER" ] || fail "driver $DRIVER is not executable"
  DRIVER_NAME=$(basename "$DRIVER")
fi
# Options kernel overlayfs needs to read what a union driver writes: renamed lower directories
# (trusted.overlay.redirect) and metadata-only copy-ups (trusted.overlay.metacopy).
KOPTS=redirect_dir=on,metacopy=on
FSINTEGRITY=${FSINTEGRITY_BIN:-$(dirname "$STRATA_BIN")/../tests/strata_fsintegrity}
echo "driver: $DRIVER ($KIND)"

# --- soft checks --------------------------------------------------------------------------------
FAILED=()
NPASSED=0
# check NAME FUNC [ARGS...]: runs FUNC in a subshell with errexit (assert_* and fail end it); a
# failure is recorded and the test goes on. FUNC must not rely on variables set by other checks.
check() {
  local name=$1 rc=0
  shift
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    NPASSED=$((NPASSED + 1))
    echo "  ok    $name"
  else
    FAILED+=("$name")
    echo "  FAIL  $name (exit $rc)" >&2
  fi
}
# expect_errno MSG CMD...: CMD must fail within 20 s with an error message containing MSG.
expect_errno() {
  local want=$1 rc=0
  shift
  timeout -s KILL 20 "$@" >/dev/null 2>"$WORK/.err" || rc=$?
  [ "$rc" != 0 ] || fail "$* succeeded, expected '$want'"
  [ "$rc" != 137 ] || fail "$* hung (killed after 20 s)"
  assert_contains "$(cat "$WORK/.err")" "$want" "error of $*"
}
# pyrename FROM TO: rename(2) itself; mv would copy and delete on EXDEV and hide the error.
pyrename() { "$PYTHON" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$1" "$2"; }

# --- mounting -----------------------------------------------------------------------------------
# Mounts made inside a check (a subshell) are unknown to track_mount: everything mounted below
# WORK is unmounted at exit, then the daemons listed in WORK/.daemons are killed if still there.
touch "$WORK/.daemons"
kill_daemons() {
  local pid
  while read -r pid; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${DRIVER_NAME:0:15}" ] && kill -9 "$pid" 2>/dev/null
  done < "$WORK/.daemons"
  return 0
}
at_exit kill_daemons
at_exit unmount_under_work
# alive PID: the process exists and is not a zombie.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# daemon_of MNT: PID of the FUSE daemon whose command line names MNT (the driver forks away).
daemon_of() {
  local f pid
  for f in $(grep -lzxF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${DRIVER_NAME:0:15}" ] && { echo "$pid"; return 0; }
  done
  return 1
}
# drv_mount OPTS MNT: mounts with the driver as a container engine runs it (it daemonizes); the
# mount is unmounted and the daemon killed at exit if still there. Sets nothing; fails if the
# mount is not there afterwards.
drv_mount() {
  local opts=$1 mnt=$2 pid
  mkdir -p "$mnt"
  track_mount "$mnt"
  if [ "$KIND" = kernel ]; then
    mount -t overlay overlay -o "$opts,$KOPTS" "$mnt" || fail "mount -t overlay -o $opts $mnt failed"
  else
    "$DRIVER" -o "$opts" "$mnt" || fail "$DRIVER -o $opts $mnt failed"
    pid=$(daemon_of "$mnt") || fail "no $DRIVER_NAME daemon found for $mnt"
    echo "$pid" >> "$WORK/.daemons"
  fi
  mountpoint -q "$mnt" || fail "$mnt is not a mount point after mounting"
}
# drv_umount MNT: unmounts as the engine does (fusermount3 -u, umount for the kernel) and waits
# up to 5 s for the daemon to exit.
drv_umount() {
  local mnt=$1 pid=
  [ "$KIND" = kernel ] || pid=$(daemon_of "$mnt") || true
  if [ "$KIND" = kernel ]; then umount "$mnt"; else fusermount3 -u "$mnt"; fi || fail "unmounting $mnt failed"
  ! mountpoint -q "$mnt" || fail "$mnt still mounted after unmounting"
  if [ -n "$pid" ]; then
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    ! alive "$pid" || fail "daemon $pid still running 5 s after unmounting $mnt"
  fi
}
# force_umount MNT: whatever is (still) mounted on MNT goes, stacked mounts included; a daemon
# is killed first, so that a deadlocked one cannot block the unmount.
force_umount() {
  local pid
  while mountpoint -q "$1" 2>/dev/null; do
    pid=$(daemon_of "$1") || pid=
    [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    umount -l "$1"
  done
}
# same_listing WANT GOT: the two listing files are equal, else the first lines of the diff.
same_listing() {
  diff -u "$1" "$2" > "$WORK/.diff" && return 0
  head -n 40 "$WORK/.diff" >&2
  fail "$2 differs from $1 ($(grep -c '^[-+][^-+]' "$WORK/.diff") lines)"
}

# A canonical listing: path, type, mode, owner, size, sha256, symlink target, rdev, user xattrs,
# hardlink groups (tests/testutil/treedump.py); with mtimes in ns (same upper: must be equal), or
# without them (the same changes made twice, at different times).
dump_full() { "$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$1" --ns; }
dump_nomtime() { "$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$1" --no-mtime; }
paths_of() { (cd "$1" && find . -mindepth 1 -printf '%y %p\n' | LC_ALL=C sort); }

# --- the layers -----------------------------------------------------------------------------------
step "directory layers in overlay format"
LD=$WORK/layers
L1=$LD/l1 L2=$LD/l2 L3=$LD/l3 LW=$LD/lw LWK=$LD/lw-kernel
mkdir -p "$L1"/{etc,usr/bin,var/cache,opq1/sub,opq2/d,tree/a/b,movedir/sub,merge/deep,emptydir,gone}
echo base > "$L1/etc/config"
echo keep > "$L1/etc/keep"
head -c 300000 /dev/urandom > "$L1/usr/bin/tool"
echo "one inode" > "$L1/etc/hl-a"
ln "$L1/etc/hl-a" "$L1/usr/bin/hl-b"
ln -s ../usr/bin/tool "$L1/etc/tool-link"
echo xattrs > "$L1/etc/xa"
setfattr -n user.a -v 1 "$L1/etc/xa"
setfattr -n user.b -v 2 "$L1/etc/xa"
echo cached > "$L1/var/cache/file"
setfattr -n user.color -v blue "$L1/var/cache/file"
chown 1000:1000 "$L1/var/cache/file"
echo lower > "$L1/opq1/sub/lower"
echo keep > "$L1/opq1/keepme"
echo a > "$L1/opq2/lower-a"
echo x > "$L1/opq2/d/x"
echo g > "$L1/gone/file"
echo g2 > "$L1/gone2"
for i in $(seq 1 50); do echo "$i" > "$L1/tree/a/b/f$i"; done
echo t > "$L1/tree/top"
echo f > "$L1/movedir/sub/f"
echo top > "$L1/movedir/top"
echo l1 > "$L1/merge/l1only"
echo "from l1" > "$L1/merge/shared"
echo l1 > "$L1/merge/deep/l1"
# layer 2: a changed file, a directory deleted by a 0:0 char device, an opaque directory by xattr
mkdir -p "$L2"/{etc,opq1,merge/deep,movedir}
echo "layer 2" > "$L2/etc/config"
mknod "$L2/gone" c 0 0
setfattr -n trusted.overlay.opaque -v y "$L2/opq1"
echo new > "$L2/opq1/new"
echo l2 > "$L2/merge/l2only"
echo "from l2" > "$L2/merge/shared"
echo l2 > "$L2/merge/deep/l2"
echo l2 > "$L2/movedir/l2file"
# layer 3: more of the merged directories, a symlink
mkdir -p "$L3"/{etc,merge/deep/deeper}
echo l3 > "$L3/merge/l3only"
echo l3 > "$L3/merge/deep/l3"
echo l3 > "$L3/merge/deep/deeper/l3"
ln -s config "$L3/etc/l3-link"
# the top layer with the OCI-style markers: `.wh.NAME` files and a `.wh..wh..opq` file
mkdir -p "$LW"/{etc,opq2,merge/deep}
touch "$LW/.wh.gone2" "$LW/etc/.wh.keep" "$LW/opq2/.wh..wh..opq"
echo new2 > "$LW/opq2/new"
echo lw > "$LW/merge/deep/lw"
# The same top layer as kernel overlayfs reads it (it knows no `.wh.` files), directory times kept.
cp -a "$LW" "$LWK"
rm "$LWK/.wh.gone2" "$LWK/etc/.wh.keep" "$LWK/opq2/.wh..wh..opq"
mknod "$LWK/gone2" c 0 0
mknod "$LWK/etc/keep" c 0 0
setfattr -n trusted.overlay.opaque -v y "$LWK/opq2"
(cd "$LW" && find . -type d) | while read -r d; do touch -r "$LW/$d" "$LWK/$d"; done
if [ "$KIND" = kernel ]; then TOP=$LWK; else TOP=$LW; fi
LOWERS=$TOP:$L3:$L2:$L1
KLOWERS=$LWK:$L3:$L2:$L1

{
  printf '%s\n' "d ./emptydir" "d ./etc" "f ./etc/config" "f ./etc/hl-a" "l ./etc/l3-link" "l ./etc/tool-link" \
    "f ./etc/xa" "d ./merge" "d ./merge/deep" "d ./merge/deep/deeper" "f ./merge/deep/deeper/l3" "f ./merge/deep/l1" \
    "f ./merge/deep/l2" "f ./merge/deep/l3" "f ./merge/deep/lw" "f ./merge/l1only" "f ./merge/l2only" \
    "f ./merge/l3only" "f ./merge/shared" "d ./movedir" "f ./movedir/l2file" "d ./movedir/sub" "f ./movedir/sub/f" \
    "f ./movedir/top" "d ./opq1" "f ./opq1/new" "d ./opq2" "f ./opq2/new" "d ./tree" "d ./tree/a" "d ./tree/a/b" \
    "f ./tree/top" "d ./usr" "d ./usr/bin" "f ./usr/bin/hl-b" "f ./usr/bin/tool" "d ./var" "d ./var/cache" \
    "f ./var/cache/file"
  for i in $(seq 1 50); do echo "f ./tree/a/b/f$i"; done
} | LC_ALL=C sort > "$WORK/want-paths.txt"

# --- the merged view ----------------------------------------------------------------------------
step "read-only mount of the merged view (no upperdir)"
RO=$WORK/ro
drv_mount "lowerdir=$LOWERS" "$RO"

read_paths() { paths_of "$RO" > "$WORK/ro-paths.txt"; same_listing "$WORK/want-paths.txt" "$WORK/ro-paths.txt"; }
read_contents() {
  assert_eq "layer 2" "$(cat "$RO/etc/config")" "etc/config (changed in layer 2)"
  assert_eq "from l2" "$(cat "$RO/merge/shared")" "merge/shared (in layers 1 and 2)"
  assert_eq "new2" "$(cat "$RO/opq2/new")" "opq2/new"
  assert_eq "$(sha256_of "$L1/usr/bin/tool")" "$(sha256_of "$RO/usr/bin/tool")" "usr/bin/tool"
  assert_eq "layer 2" "$(cat "$RO/etc/l3-link")" "through the layer-3 symlink"
  assert_eq ../usr/bin/tool "$(readlink "$RO/etc/tool-link")" "symlink target"
}
read_meta() {
  assert_eq 1000:1000 "$(stat -c %u:%g "$RO/var/cache/file")" "owner of var/cache/file"
  assert_eq blue "$(getfattr --absolute-names --only-values -n user.color "$RO/var/cache/file")" "user.color"
  assert_eq "$(stat -c %i "$RO/etc/hl-a")" "$(stat -c %i "$RO/usr/bin/hl-b")" "inode of the two names of a hardlink"
  assert_eq 2 "$(stat -c %h "$RO/etc/hl-a")" "link count of a lower hardlink"
}
read_whiteouts() {
  for p in gone gone2 etc/keep opq1/sub opq1/keepme opq2/lower-a opq2/d; do
    [ ! -e "$RO/$p" ] && [ ! -L "$RO/$p" ] || fail "$p shows through its whiteout / opaque directory"
    expect_errno "No such file" stat "$RO/$p"
  done
  assert_not_contains "$(ls -a "$RO" "$RO/etc" "$RO/opq2")" ".wh." "listing"
}
read_like_kernel() {
  mkdir -p "$WORK/kro"
  track_mount "$WORK/kro"
  mount -t overlay overlay -o "lowerdir=$KLOWERS,$KOPTS" "$WORK/kro"
  dump_full "$WORK/kro" > "$WORK/kro.txt"
  umount "$WORK/kro"
  dump_full "$RO" > "$WORK/ro.txt"
  same_listing "$WORK/kro.txt" "$WORK/ro.txt"
}
read_only_erofs() {
  expect_errno "Read-only file system" touch "$RO/newfile"
  expect_errno "Read-only file system" sh -c "echo x >> '$RO/etc/config'"
  expect_errno "Read-only file system" mkdir "$RO/newdir"
  expect_errno "Read-only file system" rm "$RO/merge/l1only"
  expect_errno "Read-only file system" chmod 600 "$RO/etc/config"
  expect_errno "Read-only file system" setfattr -n user.x -v 1 "$RO/etc/config"
  assert_eq "layer 2" "$(cat "$RO/etc/config")" "etc/config after refused writes"
}
check read-paths read_paths
check read-contents read_contents
check read-owner-xattr-hardlink read_meta
check read-whiteouts-opaque read_whiteouts
check read-same-as-kernel read_like_kernel
# stratafs reads lower files by FUSE passthrough: the kernel reads the lower file itself (its
# pages come back after being dropped); with passthrough=0 the mount's page cache answers.
read_passthrough() {
  local lower=$L1/usr/bin/tool want got
  want=$(sha256_of "$lower")
  cat "$RO/usr/bin/tool" > /dev/null
  drop_cache "$lower"
  assert_eq 0 "$(resident "$lower")" "lower file's pages after POSIX_FADV_DONTNEED"
  assert_eq "$want" "$(sha256_of "$RO/usr/bin/tool")" "usr/bin/tool by passthrough"
  got=$(resident "$lower")
  [ "$got" -gt 0 ] || fail "the second read did not come from the lower file: no passthrough"
  local off=$WORK/ro-nopt
  drv_mount "lowerdir=$LOWERS,passthrough=0" "$off"
  cat "$off/usr/bin/tool" > /dev/null
  drop_cache "$lower"
  assert_eq "$want" "$(sha256_of "$off/usr/bin/tool")" "usr/bin/tool through the driver"
  assert_eq 0 "$(resident "$lower")" "passthrough=0: the second read came from the mount's cache"
  drv_umount "$off"
}
# Without CAP_SYS_ADMIN the kernel refuses backing files (EPERM): the mount must still work, in
# the no-open mode (the pages of the first read answer the second). Run as uid 1000 in a private
# mount namespace, where a 0666 copy of /dev/fuse is bound over the 0600 original, so that the
# unprivileged daemon can open it and fusermount3 mounts for it; the host is left as it was.
read_unprivileged() {
  local mnt=$WORK/unpriv lower=$L1/usr/bin/tool want out
  want=$(sha256_of "$lower")
  mkdir -p "$mnt" "$WORK/devfuse"
  chown 1000:1000 "$mnt"
  chmod o+x "$WORK"
  export PYTHON
  export -f drop_cache resident
  out=$(unshare -m --propagation private bash -c '
    set -e
    mknod "$1/devfuse/fuse" c 10 229
    chmod 666 "$1/devfuse/fuse"
    mount --bind "$1/devfuse/fuse" /dev/fuse
    as_user() { setpriv --reuid 1000 --regid 1000 --clear-groups "$@"; }
    as_user "$2" -o "lowerdir=$3" "$4"
    trap "umount \"$4\"" EXIT
    as_user sha256sum "$4/usr/bin/tool" | cut -d" " -f1
    drop_cache "$5"
    as_user sha256sum "$4/usr/bin/tool" | cut -d" " -f1
    resident "$5"
  ' _ "$WORK" "$DRIVER" "$LOWERS" "$mnt" "$lower" 2>&1) || fail "unprivileged mount: $out"
  assert_eq "$want
$want
0" "$out" "content read twice by an unprivileged daemon, the second time from the mount's cache"
}
check read-only-erofs read_only_erofs
if [ "$DRIVER_NAME" = stratafs ] && kernel_has_fuse_passthrough; then
  check read-passthrough read_passthrough
  check read-unprivileged-no-passthrough read_unprivileged
fi
drv_umount "$RO"

# --- changes --------------------------------------------------------------------------------------
# Each mutation is one check; run through the driver, and through kernel overlayfs as the
# reference (which validates the check itself), then the trees are compared.
m_create() {
  printf 'new\n' > "$1/new-file"
  assert_eq new "$(cat "$1/new-file")" "a created file"
  mkdir "$1/new-dir"
  echo x > "$1/new-dir/f"
  assert_eq x "$(cat "$1/new-dir/f")" "a file in a created directory"
}
m_overwrite() {
  printf 'over\n' > "$1/etc/config"
  assert_eq over "$(cat "$1/etc/config")" "overwritten etc/config"
  assert_eq "layer 2" "$(cat "$L2/etc/config")" "the lower etc/config"
}
m_append() {
  echo more >> "$1/merge/shared"
  assert_eq "$(printf 'from l2\nmore')" "$(cat "$1/merge/shared")" "appended merge/shared"
  assert_eq "from l2" "$(cat "$L2/merge/shared")" "the lower merge/shared"
}
m_chmod() {
  chmod 600 "$1/usr/bin/tool"
  assert_eq 600 "$(stat -c %a "$1/usr/bin/tool")" "mode after chmod"
  assert_eq "$(sha256_of "$L1/usr/bin/tool")" "$(sha256_of "$1/usr/bin/tool")" "content after chmod"
  assert_eq 644 "$(stat -c %a "$L1/usr/bin/tool")" "mode of the lower file"
}
m_chown() {
  chown 123:456 "$1/merge/deep/l3"
  assert_eq 123:456 "$(stat -c %u:%g "$1/merge/deep/l3")" "owner after chown"
  chown -h 7:8 "$1/etc/tool-link"
  assert_eq 7:8 "$(stat -c %u:%g "$1/etc/tool-link")" "owner of a symlink after chown -h"
  assert_eq 0:0 "$(stat -c %u:%g "$1/usr/bin/tool")" "owner of the symlink's target"
}
m_utimes() {
  touch -d @981173106.123456789 "$1/merge/l1only"
  assert_eq 981173106.123456789 "$(stat -c %.9Y "$1/merge/l1only")" "mtime set with ns precision"
  touch -h -d @981173107 "$1/etc/l3-link"
  assert_eq 981173107 "$(stat -c %Y "$1/etc/l3-link")" "mtime of a symlink (touch -h)"
}
m_truncate() {
  truncate -s 1000 "$1/merge/deep/l1"
  assert_eq 1000 "$(stat -c %s "$1/merge/deep/l1")" "size after growing"
  assert_eq l1 "$(head -c 2 "$1/merge/deep/l1")" "start of a grown file"
  truncate -s 1 "$1/merge/deep/l2"
  assert_eq l "$(cat "$1/merge/deep/l2")" "shrunk file"
}
m_unlink() {
  rm "$1/merge/l2only"
  [ ! -e "$1/merge/l2only" ] || fail "merge/l2only still there"
  assert_not_contains "$(ls "$1/merge")" l2only "listing of merge"
  rm "$1/opq2/new"
  assert_eq "" "$(ls -A "$1/opq2")" "opq2 after removing its only file"
}
m_rmdir() {
  rmdir "$1/emptydir"
  [ ! -e "$1/emptydir" ] || fail "emptydir still there"
  expect_errno "not empty" rmdir "$1/merge"
  mkdir "$1/emptydir"
  assert_eq "" "$(ls -A "$1/emptydir")" "a directory made again over a removed one"
}
m_rmrf() {
  rm -rf "$1/tree"
  [ ! -e "$1/tree" ] || fail "tree still there"
  mkdir "$1/tree"
  assert_eq "" "$(ls -A "$1/tree")" "tree made again after rm -rf (opaque)"
  rm -rf "$1/opq1"
  [ ! -e "$1/opq1" ] || fail "opq1 still there"
}
m_rename_file() {
  pyrename "$1/var/cache/file" "$1/etc/moved"
  [ ! -e "$1/var/cache/file" ] || fail "var/cache/file still there after the rename"
  assert_eq cached "$(cat "$1/etc/moved")" "content of a renamed lower file"
  assert_eq blue "$(getfattr --absolute-names --only-values -n user.color "$1/etc/moved")" "xattr of a renamed file"
  assert_eq 1000:1000 "$(stat -c %u:%g "$1/etc/moved")" "owner of a renamed file"
  expect_errno "No such file" pyrename "$1/etc/not-there" "$1/x"
  echo over > "$1/src"
  pyrename "$1/src" "$1/merge/l3only"
  assert_eq over "$(cat "$1/merge/l3only")" "a file renamed over a lower file"
}
m_rename_dir() {
  pyrename "$1/movedir" "$1/renamed"
  [ ! -e "$1/movedir" ] || fail "movedir still there after the rename"
  assert_eq "f l2 top" "$(cat "$1/renamed/sub/f" "$1/renamed/l2file" "$1/renamed/top" | tr '\n' ' ' | sed 's/ $//')" \
    "contents of a renamed lower directory (from two layers)"
  echo more > "$1/renamed/upper2"
  mkdir "$1/movedir"
  assert_eq "" "$(ls -A "$1/movedir")" "a directory made under the old name of a renamed one"
}
m_hardlink() {
  ln "$1/merge/deep/deeper/l3" "$1/merge/hl-new"
  assert_eq "$(stat -c %i "$1/merge/deep/deeper/l3")" "$(stat -c %i "$1/merge/hl-new")" "inode of a new hardlink"
  assert_eq "2 2" "$(stat -c %h "$1/merge/deep/deeper/l3" "$1/merge/hl-new" | tr '\n' ' ' | sed 's/ $//')" \
    "link counts after ln"
  echo changed >> "$1/merge/hl-new"
  assert_eq "$(printf 'l3\nchanged')" "$(cat "$1/merge/deep/deeper/l3")" "written through the other name"
  ln "$1/new-file" "$1/new-file-2"
  rm "$1/new-file-2"
  assert_eq 1 "$(stat -c %h "$1/new-file")" "link count after ln and rm"
}
m_symlink() {
  ln -s ../etc/config "$1/merge/sl"
  assert_eq ../etc/config "$(readlink "$1/merge/sl")" "new symlink's target"
  assert_eq over "$(cat "$1/merge/sl")" "read through a new symlink"
  ln -s /nonexistent/abs "$1/merge/dangling"
  assert_eq /nonexistent/abs "$(readlink "$1/merge/dangling")" "dangling symlink's target"
}
m_xattr() {
  setfattr -n user.c -v 3 "$1/etc/xa"
  setfattr -x user.a "$1/etc/xa"
  assert_eq "user.b=\"2\" user.c=\"3\"" "$(getfattr --absolute-names -d -m '^user\.' "$1/etc/xa" | grep '^user' | tr '\n' ' ' | sed 's/ $//')" \
    "user xattrs after set and remove"
  expect_errno "No such attribute" getfattr --absolute-names -n user.a "$1/etc/xa"
  setfattr -n user.dir -v d "$1/merge"
  assert_eq d "$(getfattr --absolute-names --only-values -n user.dir "$1/merge")" "xattr of a merged directory"
  assert_eq 1:2 "$(getfattr --absolute-names --only-values -n user.a "$L1/etc/xa"):$(getfattr --absolute-names --only-values -n user.b "$L1/etc/xa")" \
    "xattrs of the lower file"
}
m_mknod_whiteout() {
  expect_errno "not permitted" mknod "$1/wh" c 0 0
  [ ! -e "$1/wh" ] && [ ! -L "$1/wh" ] || fail "a 0:0 device was created"
  mknod "$1/tty0" c 4 0
  assert_eq "character special file 4:0" "$(stat -c '%F %t:%T' "$1/tty0")" "another char device"
}
m_name_max() {
  local n255 n256
  n255=$(printf 'x%.0s' $(seq 1 255))
  n256=${n255}y
  expect_errno "too long" touch "$1/$n256"
  expect_errno "too long" mkdir "$1/merge/$n256"
  expect_errno "too long" stat "$1/$n256"
  touch "$1/$n255"
  assert_eq 1 "$(ls "$1" | grep -cx "$n255")" "a 255-byte name listed"
  rm "$1/$n255"
  [ ! -e "$1/$n255" ] || fail "a 255-byte name still there after rm"
}
m_deep() {
  local p=$1/deep i
  for i in $(seq 1 100); do p=$p/d; done
  mkdir -p "$p"
  echo bottom > "$p/f"
  assert_eq bottom "$(cat "$p/f")" "a file 100 directories deep"
  assert_eq 101 "$(find "$1/deep" -type d | wc -l)" "directories of the deep tree"
}
# Deeper than PATH_MAX (80 names of 60 bytes), walked with relative opens as on ext4.
m_deep_pathmax() {
  "$PYTHON" - "$1" <<'PY'
import os, sys
name = "n" * 60
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for _ in range(80):
    os.mkdir(name, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
w = os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
os.write(w, b"deepest\n")
os.close(w)
r = os.open("f", os.O_RDONLY, dir_fd=fd)
assert os.read(r, 100) == b"deepest\n", "content of the deepest file"
os.close(r)
PY
  local n60
  n60=$(printf 'n%.0s' $(seq 1 60))
  rm -rf "${1:?}/$n60"
  [ ! -e "$1/$n60" ] || fail "the deep tree is still there after rm -rf"
}
m_symlink_xattr_loop() {
  local rc=0
  echo t > "$1/loop-target"
  ln -s "$1/loop-target" "$1/loop-link"
  timeout -s KILL 20 setfattr -h -n trusted.loop -v 1 "$1/loop-link" || rc=$?
  [ "$rc" != 137 ] || fail "setfattr -h on a symlink into the mount hung"
  assert_eq 0 "$rc" "setfattr -h trusted.loop"
  assert_eq 1 "$(timeout -s KILL 20 getfattr -h --absolute-names --only-values -n trusted.loop "$1/loop-link")" "xattr of the symlink"
  if timeout -s KILL 20 getfattr --absolute-names -n trusted.loop "$1/loop-target" >/dev/null 2>&1; then
    fail "the symlink's xattr landed on its target"
  fi
  expect_errno "not permitted" setfattr -h -n user.loop -v 1 "$1/loop-link"
  timeout -s KILL 20 setfattr -n user.through -v 1 "$1/loop-link"   # follows the link, into the mount again
  assert_eq 1 "$(getfattr --absolute-names --only-values -n user.through "$1/loop-target")" "xattr set through the symlink"
  timeout -s KILL 20 stat "$1/etc" >/dev/null || fail "the mount does not answer after the symlink xattrs"
  rm "$1/loop-link" "$1/loop-target"
}
m_errors() {
  expect_errno "Not a directory" touch "$1/etc/config/sub"
  expect_errno "File exists" mkdir "$1/merge"
  expect_errno "Is a directory" sh -c "echo x > '$1/merge'"
}
m_other_uid() {
  mkdir "$1/shared"
  chmod 1777 "$1/shared"
  setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo mine > '$1/shared/by-1000'" ||
    fail "uid 1000 could not create a file in a 1777 directory"
  assert_eq 1000:1000 "$(stat -c %u:%g "$1/shared/by-1000")" "owner of a file made by uid 1000"
  if setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo x >> '$1/merge/l1only'" 2>/dev/null; then
    fail "uid 1000 wrote a root-owned 0644 file"
  fi
  rm -r "$1/shared"
}
m_statfs() {
  assert_eq 255 "$(stat -f -c %l "$1")" "statfs name length"
  [ "$(stat -f -c %b "$1")" -gt 0 ] || fail "statfs reports no blocks"
}
MUTATIONS="create overwrite append chmod chown utimes truncate unlink rmdir rmrf rename_file rename_dir hardlink
  symlink xattr mknod_whiteout name_max deep deep_pathmax errors other_uid statfs"
mutate_all() {  # mutate_all PREFIX DIR
  local m
  for m in $MUTATIONS; do check "$1${m//_/-}" "m_$m" "$2"; done
}
chmod o+x "$WORK"  # mktemp made it private: let uid 1000 reach the mount points

step "the changes through kernel overlayfs (the reference; also checks the checks)"
mkdir -p "$WORK/k1/upper" "$WORK/k1/work" "$WORK/k1/mnt"
track_mount "$WORK/k1/mnt"
mount -t overlay overlay -o "lowerdir=$KLOWERS,upperdir=$WORK/k1/upper,workdir=$WORK/k1/work,$KOPTS" "$WORK/k1/mnt"
mutate_all "kernel-reference:" "$WORK/k1/mnt"
check kernel-reference:symlink-xattr-loop m_symlink_xattr_loop "$WORK/k1/mnt"
dump_nomtime "$WORK/k1/mnt" > "$WORK/k1.txt"
dump_full "$WORK/k1/mnt" > "$WORK/k1-full.txt"
umount "$WORK/k1/mnt"

step "the same changes through $DRIVER_NAME (writable mount, fresh upper)"
mkdir -p "$WORK/c1/upper" "$WORK/c1/work"
M1=$WORK/c1/mnt
drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c1/upper,workdir=$WORK/c1/work" "$M1"
untouched() {
  dump_nomtime "$M1" > "$WORK/c1-before.txt"
  sed 's/ mtime=[0-9.]*//' "$WORK/kro.txt" > "$WORK/kro-nomtime.txt"
  same_listing "$WORK/kro-nomtime.txt" "$WORK/c1-before.txt"
}
check rw-untouched-equals-read-view untouched
mutate_all "" "$M1"
same_tree() { dump_nomtime "$M1" > "$WORK/c1.txt"; same_listing "$WORK/k1.txt" "$WORK/c1.txt"; }
check same-changes-same-tree-as-kernel same_tree
dump_full "$M1" > "$WORK/c1-full.txt"

step "isolation: a second writable mount over the same layers sees none of it"
isolation() {
  mkdir -p "$WORK/c2/upper" "$WORK/c2/work"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c2/upper,workdir=$WORK/c2/work" "$WORK/c2/mnt"
  dump_nomtime "$WORK/c2/mnt" > "$WORK/c2.txt"
  echo "c2 only" > "$WORK/c2/mnt/etc/config"
  assert_eq over "$(cat "$M1/etc/config")" "c1 after c2 wrote"
  drv_umount "$WORK/c2/mnt"
  same_listing "$WORK/c1-before.txt" "$WORK/c2.txt"
}
check isolation isolation
force_umount "$WORK/c2/mnt"

step "umount and mount again: same tree, same inode numbers"
PATHS="etc/config usr/bin/hl-b usr/bin/tool renamed renamed/sub/f etc/moved deep merge/hl-new merge/shared"
inodes() { (cd "$1" && for p in $PATHS; do stat -c '%i %n' "$p" 2>/dev/null || echo "- $p"; done); }
inodes "$M1" > "$WORK/c1-inodes.txt"
drv_umount "$M1"
drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c1/upper,workdir=$WORK/c1/work" "$M1"
remount_tree() { dump_full "$M1" > "$WORK/c1-again.txt"; same_listing "$WORK/c1-full.txt" "$WORK/c1-again.txt"; }
remount_inodes() { inodes "$M1" > "$WORK/c1-inodes2.txt"; same_listing "$WORK/c1-inodes.txt" "$WORK/c1-inodes2.txt"; }
check remount-same-tree remount_tree
check remount-same-inodes remount_inodes
drv_umount "$M1"

step "an xattr on a symlink into the mount (a mount of its own: a deadlock must not stop the test)"
loop_check() {
  mkdir -p "$WORK/c6/upper" "$WORK/c6/work"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c6/upper,workdir=$WORK/c6/work" "$WORK/c6/mnt"
  m_symlink_xattr_loop "$WORK/c6/mnt"
  drv_umount "$WORK/c6/mnt"
}
check symlink-xattr-loop loop_check
force_umount "$WORK/c6/mnt"

# --- interop with kernel overlayfs ----------------------------------------------------------------
step "interop: kernel overlayfs reads the upper $DRIVER_NAME wrote"
interop_forward() {
  mkdir -p "$WORK/c1/kwork" "$WORK/c1/kmnt"
  mount -t overlay overlay -o "lowerdir=$KLOWERS,upperdir=$WORK/c1/upper,workdir=$WORK/c1/kwork,$KOPTS" "$WORK/c1/kmnt"
  dump_full "$WORK/c1/kmnt" > "$WORK/c1-kernel.txt"
  umount "$WORK/c1/kmnt"
  same_listing "$WORK/c1-full.txt" "$WORK/c1-kernel.txt"
}
check interop-kernel-reads-driver-upper interop_forward
step "interop: $DRIVER_NAME reads the upper kernel overlayfs wrote"
interop_reverse() {
  mkdir -p "$WORK/k1/dwork"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/k1/upper,workdir=$WORK/k1/dwork" "$WORK/k1/dmnt"
  dump_full "$WORK/k1/dmnt" > "$WORK/k1-driver.txt"
  drv_umount "$WORK/k1/dmnt"
  same_listing "$WORK/k1-full.txt" "$WORK/k1-driver.txt"
}
check interop-driver-reads-kernel-upper interop_reverse
force_umount "$WORK/k1/dmnt"

# --- the rest of test_union's semantics -----------------------------------------------------------
step "rm -rf of everything, then the tree is empty, also after a remount"
rm_everything() {
  mkdir -p "$WORK/c3/upper" "$WORK/c3/work"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c3/upper,workdir=$WORK/c3/work" "$WORK/c3/mnt"
  rm -rf "$WORK/c3/mnt"/*
  assert_eq "" "$(ls -A "$WORK/c3/mnt")" "listing after rm -rf"
  drv_umount "$WORK/c3/mnt"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c3/upper,workdir=$WORK/c3/work" "$WORK/c3/mnt"
  assert_eq "" "$(ls -A "$WORK/c3/mnt")" "listing after rm -rf and a remount"
  drv_umount "$WORK/c3/mnt"
}
check rm-rf-everything rm_everything
force_umount "$WORK/c3/mnt"

step "integrity: processes and threads interleaving write, read, truncate, mmap, fsync"
integrity() {
  [ -x "$FSINTEGRITY" ] || fail "strata_fsintegrity not found at $FSINTEGRITY (set FSINTEGRITY_BIN)"
  mkdir -p "$WORK/c4/upper" "$WORK/c4/work"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c4/upper,workdir=$WORK/c4/work" "$WORK/c4/mnt"
  mkdir "$WORK/c4/mnt/integrity"
  "$FSINTEGRITY" "$WORK/c4/mnt/integrity" --procs 2 --threads 3 --ops 1500 --seed 7 \
    --seed-file "$WORK/c4/mnt/usr/bin/tool" || fail "data integrity run failed"
  local sums
  sums=$(cd "$WORK/c4/mnt" && sha256sum integrity/* usr/bin/tool)
  drv_umount "$WORK/c4/mnt"
  drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c4/upper,workdir=$WORK/c4/work" "$WORK/c4/mnt"
  assert_eq "$sums" "$(cd "$WORK/c4/mnt" && sha256sum integrity/* usr/bin/tool)" "contents after a remount"
  drv_umount "$WORK/c4/mnt"
}
check integrity integrity
force_umount "$WORK/c4/mnt"

if [ "$KIND" = fuse ]; then
  step "data fsynced before the daemon dies survives"
  durable() {
    local pid
    mkdir -p "$WORK/c5/upper" "$WORK/c5/work" "$WORK/c5/mnt"
    "$DRIVER" -f -o "lowerdir=$LOWERS,upperdir=$WORK/c5/upper,workdir=$WORK/c5/work" "$WORK/c5/mnt" &
    pid=$!
    echo "$pid" >> "$WORK/.daemons"
    for _ in $(seq 1 100); do mountpoint -q "$WORK/c5/mnt" && break; sleep 0.05; done
    mountpoint -q "$WORK/c5/mnt" || { kill -9 "$pid"; fail "$DRIVER -f did not mount"; }
    write_fsynced "$WORK/c5/mnt/durable"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    umount "$WORK/c5/mnt" 2>/dev/null || umount -l "$WORK/c5/mnt"
    drv_mount "lowerdir=$LOWERS,upperdir=$WORK/c5/upper,workdir=$WORK/c5/work" "$WORK/c5/mnt"
    assert_eq 12000 "$(stat -c %s "$WORK/c5/mnt/durable")" "size of the fsynced file"
    assert_eq "synced data" "$(head -1 "$WORK/c5/mnt/durable")" "content of the fsynced file"
    drv_umount "$WORK/c5/mnt"
  }
  check fsync-survives-kill durable
force_umount "$WORK/c5/mnt"
fi

# --- what containers-storage does -----------------------------------------------------------------
if [ "$KIND" = fuse ]; then
  step "Podman-style: lowerdirs through l/ symlinks, volatile, nodev, uid/gid mappings"
  # containers-storage (drivers/overlay) runs its mount_program as
  #   PROG -o lowerdir=L/A:L/B...,upperdir=ID/diff,workdir=ID/work[,mountopt][,volatile],
  #           uidmapping=C:H:N[:C:H:N...],gidmapping=... MERGED
  # from the driver's home, each lowerdir a symlink l/SHORTID -> ../LAYERID/diff; with one
  # mapping of size 1 it passes squash_to_uid=H,squash_to_gid=H instead. The layers hold the
  # image's own ids (the first column, C); the mount shows them as the second (H), and maps ids
  # written through the mount back. The mapping here: 0 -> 1000, 1..65536 -> 100000...
  H=$WORK/storage/overlay
  mkdir -p "$H/l" "$H/ctr/diff" "$H/ctr/work" "$H/ctr/merged"
  PLOWERS=
  for l in l1 l2 l3 lw; do
    mkdir "$H/$l-id"
    cp -a "$LD/$l" "$H/$l-id/diff"
    ln -s "../$l-id/diff" "$H/l/SHORT${l^^}"
  done
  for l in lw l3 l2 l1; do PLOWERS=${PLOWERS:+$PLOWERS:}$H/l/SHORT${l^^}; done
  MAP=0:1000:1:1:100000:65536
  podman_mapped() {
    (cd "$H" && "$DRIVER" -o "lowerdir=$PLOWERS,upperdir=$H/ctr/diff,workdir=$H/ctr/work,nodev,volatile,uidmapping=$MAP,gidmapping=$MAP" \
      "$H/ctr/merged") || fail "the Podman-style mount failed"
    daemon_of "$H/ctr/merged" >> "$WORK/.daemons" || fail "no daemon for the Podman-style mount"
    local m=$H/ctr/merged
    paths_of "$m" > "$WORK/podman-paths.txt"
    same_listing "$WORK/want-paths.txt" "$WORK/podman-paths.txt"
    assert_eq 1000:1000 "$(stat -c %u:%g "$m/etc/config")" "owner of a file stored as 0:0"
    assert_eq 100999:100999 "$(stat -c %u:%g "$m/var/cache/file")" "owner of a file stored as 1000:1000"
    assert_eq 1000:1000 "$(stat -c %u:%g "$m")" "owner of the root directory"
    # The container's root (host uid 1000) makes entries: stored as the image's root.
    setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo made > '$m/made-by-root' && mkdir '$m/dir-by-root'" ||
      fail "uid 1000 (the container's root) could not create entries"
    assert_eq 1000:1000 "$(stat -c %u:%g "$m/made-by-root")" "owner of a new file in the mount"
    assert_eq "0:0 0:0" "$(stat -c %u:%g "$H/ctr/diff/made-by-root" "$H/ctr/diff/dir-by-root" | tr '\n' ' ' | sed 's/ $//')" \
      "owner of new entries in the upper"
    chown 100032:100033 "$m/made-by-root"
    assert_eq 100032:100033 "$(stat -c %u:%g "$m/made-by-root")" "owner after chown in the mount"
    assert_eq 33:34 "$(stat -c %u:%g "$H/ctr/diff/made-by-root")" "owner after chown, in the upper"
    chown 100999:100999 "$m/etc/config"
    assert_eq 1000:1000 "$(stat -c %u:%g "$H/ctr/diff/etc/config")" "owner of a copied-up file, in the upper"
    "$PYTHON" -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND); os.write(fd, b"x"); os.fsync(fd); os.close(fd)' \
      "$m/made-by-root" || fail "fsync on a volatile mount"
    assert_contains "$(awk -v m="$m" '$2 == m {print $4}' /proc/mounts)" nodev "mount flags"
    drv_umount "$m"
  }
  check podman-mapped podman_mapped
force_umount "$H/ctr/merged"
  podman_squash() {
    rm -rf "$H/ctr/diff" "$H/ctr/work"
    mkdir -p "$H/ctr/diff" "$H/ctr/work"
    (cd "$H" && "$DRIVER" -o "lowerdir=$PLOWERS,upperdir=$H/ctr/diff,workdir=$H/ctr/work,nodev,volatile,squash_to_uid=1000,squash_to_gid=1000" \
      "$H/ctr/merged") || fail "the Podman-style mount with squash_to_uid/gid failed"
    daemon_of "$H/ctr/merged" >> "$WORK/.daemons" || fail "no daemon for the squash mount"
    assert_eq "1000:1000 1000:1000 1000:1000" \
      "$(stat -c %u:%g "$H/ctr/merged/etc/config" "$H/ctr/merged/var/cache/file" "$H/ctr/merged/etc" | tr '\n' ' ' | sed 's/ $//')" \
      "owners with squash_to_uid/gid"
    drv_umount "$H/ctr/merged"
  }
  check podman-squash-to-uid-gid podman_squash
force_umount "$H/ctr/merged"

  step "fuse-overlayfs' other options: squash_to_root, static_nlink, noacl, fsync=0, threaded, fsname"
  opt_squash_root() {
    mkdir -p "$WORK/o1/upper" "$WORK/o1/work"
    drv_mount "lowerdir=$LOWERS,upperdir=$WORK/o1/upper,workdir=$WORK/o1/work,squash_to_root" "$WORK/o1/mnt"
    assert_eq "0:0 0:0" "$(stat -c %u:%g "$WORK/o1/mnt/var/cache/file" "$WORK/o1/mnt/etc/config" | tr '\n' ' ' | sed 's/ $//')" \
      "owners with squash_to_root"
    drv_umount "$WORK/o1/mnt"
  }
  check opt-squash-to-root opt_squash_root
force_umount "$WORK/o1/mnt"
  opt_others() {
    mkdir -p "$WORK/o2/upper" "$WORK/o2/work"
    drv_mount "lowerdir=$LOWERS,upperdir=$WORK/o2/upper,workdir=$WORK/o2/work,static_nlink,noacl,fsync=0,threaded=1" "$WORK/o2/mnt"
    assert_eq 1 "$(stat -c %h "$WORK/o2/mnt/merge")" "st_nlink of a directory with static_nlink"
    echo x > "$WORK/o2/mnt/f"
    assert_eq x "$(cat "$WORK/o2/mnt/f")" "a write with these options"
    drv_umount "$WORK/o2/mnt"
  }
  check opt-static-nlink-noacl-fsync0-threaded opt_others
force_umount "$WORK/o2/mnt"
  opt_fsname() {
    drv_mount "lowerdir=$LOWERS,fsname=strata-test-src" "$WORK/o3/mnt"
    assert_eq strata-test-src "$(awk -v m="$WORK/o3/mnt" '$2 == m {print $1}' /proc/mounts)" "source in /proc/mounts"
    drv_umount "$WORK/o3/mnt"
  }
  check opt-fsname opt_fsname
force_umount "$WORK/o3/mnt"

  step "mount -t fuse.$DRIVER_NAME (mount.fuse3 helper), umount and fusermount3 -u"
  # mount(8) clears PATH for its helpers, so mount.fuse3 finds the driver only in /bin/sh's
  # default directories. /usr/local/sbin comes first there: a link to the driver under test
  # goes in for this step (unless something is there already), removed at exit.
  HELPER_LINK=/usr/local/sbin/$DRIVER_NAME
  if [[ ! -e $HELPER_LINK && ! -L $HELPER_LINK ]]; then
    mkdir -p /usr/local/sbin
    ln -s "$DRIVER" "$HELPER_LINK"
    at_exit 'rm -f "$HELPER_LINK"'
  fi
  mount_helper() {
    local m=$WORK/mh/mnt pid
    mkdir -p "$WORK/mh/upper" "$WORK/mh/work" "$m"
    mount -t "fuse.$DRIVER_NAME" \
      -o "lowerdir=$LOWERS,upperdir=$WORK/mh/upper,workdir=$WORK/mh/work" "$DRIVER_NAME" "$m" ||
      fail "mount -t fuse.$DRIVER_NAME failed"
    pid=$(daemon_of "$m") || fail "no daemon for the mount -t mount"
    echo "$pid" >> "$WORK/.daemons"
    assert_eq "fuse.$DRIVER_NAME" "$(findmnt -n -o FSTYPE --mountpoint "$m")" "fstype"
    assert_eq "layer 2" "$(cat "$m/etc/config")" "etc/config through mount -t"
    echo via-helper > "$m/helper-file"
    umount "$m" || fail "umount failed"
    ! mountpoint -q "$m" || fail "still mounted after umount"
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    ! alive "$pid" || fail "daemon $pid still running 5 s after umount"
    assert_eq via-helper "$(cat "$WORK/mh/upper/helper-file")" "the file written before umount, in the upper"
    mount -t "fuse.$DRIVER_NAME" \
      -o "lowerdir=$LOWERS,upperdir=$WORK/mh/upper,workdir=$WORK/mh/work" "$DRIVER_NAME" "$m" ||
      fail "mount -t fuse.$DRIVER_NAME failed the second time"
    pid=$(daemon_of "$m") || fail "no daemon for the second mount -t mount"
    echo "$pid" >> "$WORK/.daemons"
    assert_eq via-helper "$(cat "$m/helper-file")" "the file after a remount"
    fusermount3 -u "$m" || fail "fusermount3 -u failed"
    ! mountpoint -q "$m" || fail "still mounted after fusermount3 -u"
  }
  check mount-t-fuse-umount-fusermount3 mount_helper
force_umount "$WORK/mh/mnt"

  step "errors: an unknown option, a missing lower directory"
  err_unknown_option() {
    local rc=0
    mkdir -p "$WORK/e1"
    "$DRIVER" -o "lowerdir=$LOWERS,no_such_option=1" "$WORK/e1" 2>"$WORK/e1.err" || rc=$?
    if mountpoint -q "$WORK/e1"; then force_umount "$WORK/e1"; fail "mounted despite an unknown option"; fi
    [ "$rc" != 0 ] || fail "exit 0 with an unknown option"
    assert_contains "$(cat "$WORK/e1.err")" no_such_option "the error"
  }
  check error-unknown-option err_unknown_option
  err_missing_lower() {
    local rc=0
    mkdir -p "$WORK/e2"
    "$DRIVER" -o "lowerdir=$L1:$WORK/no-such-layer" "$WORK/e2" 2>"$WORK/e2.err" || rc=$?
    if mountpoint -q "$WORK/e2"; then force_umount "$WORK/e2"; fail "mounted despite a missing lower directory"; fi
    [ "$rc" != 0 ] || fail "exit 0 with a missing lower directory"
    assert_contains "$(cat "$WORK/e2.err")" "$WORK/no-such-layer" "the error"
  }
  check error-missing-lowerdir err_missing_lower
fi

# --- summary --------------------------------------------------------------------------------------
unexpected=() expected=() xpass=()
EXPECT_FAIL=$(echo ${EXPECT_FAIL:-})  # one line, names separated by single spaces
for f in "${FAILED[@]}"; do
  if [[ " ${EXPECT_FAIL:-} " == *" $f "* ]]; then expected+=("$f"); else unexpected+=("$f"); fi
done
for x in ${EXPECT_FAIL:-}; do
  [[ " ${FAILED[*]} " == *" $x "* ]] || xpass+=("$x")
done
echo "$TEST_NAME: driver $DRIVER: $NPASSED checks passed, ${#FAILED[@]} failed"
[ ${#expected[@]} = 0 ] || echo "  failed as expected (EXPECT_FAIL): ${expected[*]}"
[ ${#xpass[@]} = 0 ] || echo "  expected to fail but passed: ${xpass[*]}"
[ ${#unexpected[@]} = 0 ] || fail "failed checks: ${unexpected[*]}"
pass
