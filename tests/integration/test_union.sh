#!/usr/bin/env bash
# The writable layer of stratafs against kernel overlayfs as the reference: the same changes made
# through a strata mount (image + upper) and through overlayfs (the image unpacked by umoci as
# lowerdir) give the same tree; the changes survive umount/mount with the same inode numbers;
# the upper directory is in overlay format (whiteouts, opaque, redirect, metacopy); another
# writable layer over the same image sees none of it; 10,000 new files in one mount stay within a
# low fd limit; a file fsynced before the daemon is killed survives, and the mount comes back
# after `strata umount`; upper files are read and written by FUSE passthrough (on the upper copy
# itself), lower files opened for reading stay in cached mode so that a later writer can copy
# them up.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd umoci setfattr getfattr fallocate mknod prlimit

STRATAFS=${STRATAFS_BIN:-$(dirname "$STRATA_BIN")/../fs/stratafs}
[ -x "$STRATAFS" ] || fail "stratafs not found at $STRATAFS"

# mount_layer UPPER_NAME DIR [ARGS]: the image plus the writable layer $WORK/UPPER_NAME.
mount_layer() {
  local name=$1 dir=$2
  shift 2
  mkdir -p "$WORK/$name/upper" "$WORK/$name/work" "$dir"
  track_mount "$dir"
  "$STRATAFS" --root "$STRATA_ROOT" --upper "$WORK/$name/upper" --work "$WORK/$name/work" "$@" test/union:1 "$dir" ||
    fail "stratafs did not mount $dir"
}

# Files changed by the test carry the time of the change, different on each mount: compare
# without times (dump), and with them (dump_ns) where the same tree is compared with itself.
dump() { "$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$1" --no-mtime; }
dump_ns() { "$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$1" --no-dir-mtime --ns; }

step "an image with files, hardlinks, symlinks, devices, xattrs, whiteouts, opaque dirs"
L1=$WORK/l1 L2=$WORK/l2
mkdir -p "$L1"/{etc,usr/bin,usr/lib,var/cache,opaque/sub,tree/a/b,emptydir} "$L2"/{etc,opaque}
echo base > "$L1/etc/config"
echo keep > "$L1/etc/keep"
head -c 300000 /dev/urandom > "$L1/usr/bin/tool"
head -c $((9 << 20)) /dev/urandom > "$L1/usr/lib/big"  # past the size a write copies up at the open
echo "one inode" > "$L1/etc/hl-a"
ln "$L1/etc/hl-a" "$L1/usr/bin/hl-b"
ln -s ../usr/bin/tool "$L1/etc/tool-link"
echo cached > "$L1/var/cache/file"
echo lower > "$L1/opaque/sub/lower"
for i in $(seq 1 50); do echo "$i" > "$L1/tree/a/b/f$i"; done
mknod "$L1/etc/null" c 1 3
mkfifo "$L1/etc/fifo"
setfattr -n user.color -v blue "$L1/var/cache/file"
chown 1000:1000 "$L1/var/cache/file"
echo "layer 2" > "$L2/etc/config"
touch "$L2/etc/.wh.keep" "$L2/opaque/.wh..wh..opq"
echo upper > "$L2/opaque/upper"
"$PYTHON" "$MKIMAGE_PY" --format oci-dir -o "$WORK/oci" --tag test/union:1 --layer "$L1" --layer "$L2" >/dev/null
expect_rc 0 load -i "$WORK/oci"
umoci unpack --image "$WORK/oci:1" "$WORK/bundle" >/dev/null 2>&1 || fail "umoci unpack failed"
LOWER=$WORK/bundle/rootfs
head -c 4096 /dev/urandom > "$WORK/block"

# The same changes, every kind the issue names, applied to a mounted tree.
mutate() {
  local d=$1
  echo appended >> "$d/etc/config"                              # data copy-up
  chmod 600 "$d/usr/bin/tool"                                   # metadata-only copy-up
  chown -h 123:456 "$d/etc/tool-link"                           # a symlink's owner
  touch -h -d '2001-02-03 04:05:06.123456789' "$d/var/cache/file"  # ns timestamps
  setfattr -n user.added -v yes "$d/var/cache/file"
  setfattr -x user.color "$d/var/cache/file"
  echo "through a" >> "$d/etc/hl-a"                             # one of two hardlinked names
  rm "$d/etc/null"                                              # whiteout
  rm -r "$d/tree/a"                                             # a lower tree
  rmdir "$d/emptydir"
  mkdir "$d/emptydir" && echo fresh > "$d/emptydir/new"         # over a deleted dir: opaque
  mv "$d/opaque" "$d/renamed"                                   # a lower directory renamed
  echo more > "$d/renamed/upper2"
  mv "$d/etc/keep-not-there" "$d/x" 2>/dev/null && return 1     # ENOENT must stay ENOENT
  mv "$d/var/cache/file" "$d/etc/moved"                         # a lower file renamed
  ln "$d/etc/config" "$d/etc/config-link"                       # a hardlink to a copied-up file
  ln "$d/usr/bin/tool" "$d/tool-link2"                          # a hardlink to a lower file
  ln -s /etc/config "$d/etc/abs-link"
  mknod "$d/etc/tty0" c 4 0
  mkfifo "$d/etc/fifo2"
  mkdir -p "$d/new/deep/dir" && echo x > "$d/new/deep/dir/f"
  dd if="$WORK/block" of="$d/sparse" bs=4096 count=1 seek=2560 status=none  # 10 MiB, one block
  fallocate -l 1M "$d/falloc"
  truncate -s 1000 "$d/renamed/upper"                           # grow a lower file
  : > "$d/etc/config-empty"
  echo over > "$d/src" && mv "$d/src" "$d/etc/fifo"             # rename over a lower entry
  mkdir "$d/gone-again" && rmdir "$d/gone-again"
}

step "kernel overlayfs over the unpacked image, as the reference"
mkdir -p "$WORK/ovl/upper" "$WORK/ovl/work" "$WORK/ovl/mnt"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$WORK/ovl/upper,workdir=$WORK/ovl/work,redirect_dir=on,index=on" \
  "$WORK/ovl/mnt" || fail "kernel overlayfs mount failed"
track_mount "$WORK/ovl/mnt"
mutate "$WORK/ovl/mnt" || fail "the changes failed on kernel overlayfs"
dump "$WORK/ovl/mnt" > "$WORK/want.txt"

step "the same changes through stratafs"
mount_layer c1 "$WORK/mnt"
dump "$WORK/mnt" > "$WORK/before.txt"
dump "$LOWER" > "$WORK/lower.txt"
diff -u "$WORK/lower.txt" "$WORK/before.txt" || fail "an untouched writable mount differs from the image"
mutate "$WORK/mnt" || fail "the changes failed on stratafs"
dump "$WORK/mnt" > "$WORK/got.txt"
diff -u "$WORK/want.txt" "$WORK/got.txt" || fail "stratafs differs from kernel overlayfs after the same changes"
dump_ns "$WORK/mnt" > "$WORK/got-ns.txt"
assert_eq "981173106.123456789" "$(stat -c %.9Y "$WORK/mnt/etc/moved")" "mtime set with ns precision"
assert_eq "$(stat -c %.9Y "$LOWER/usr/bin/tool")" "$(stat -c %.9Y "$WORK/mnt/usr/bin/tool")" "mtime kept by copy-up"
assert_eq "$(printf 'one inode\nthrough a')" "$(cat "$WORK/mnt/usr/bin/hl-b")" "the other name of a hardlink"
assert_eq 2 "$(stat -c %h "$WORK/mnt/usr/bin/hl-b")" "link count of a lower hardlink after copy-up"
assert_eq 2 "$(stat -c %h "$WORK/mnt/etc/config")" "link count of a copied-up file with a new link"

step "errors as the kernel gives them"
if mknod "$WORK/mnt/wh" c 0 0 2>"$WORK/err"; then fail "a 0:0 device was created"; fi
assert_contains "$(cat "$WORK/err")" "not permitted" "mknod 0:0"
long=$(printf 'x%.0s' $(seq 1 256))
if touch "$WORK/mnt/$long" 2>"$WORK/err"; then fail "a 256-byte name was created"; fi
assert_contains "$(cat "$WORK/err")" "too long" "256-byte name"
if rmdir "$WORK/mnt/renamed" 2>"$WORK/err"; then fail "rmdir of a non-empty merged dir"; fi
assert_contains "$(cat "$WORK/err")" "not empty" "rmdir of a non-empty dir"
if (echo x > "$WORK/mnt/etc/config/sub") 2>/dev/null; then fail "a file below a file"; fi

step "permissions are the kernel's; other uids can use the mount; statfs"
chmod o+x "$WORK"  # mktemp made it private: let uid 1000 reach the mount point
mkdir "$WORK/mnt/shared" && chmod 1777 "$WORK/mnt/shared"
setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo mine > '$WORK/mnt/shared/by-1000'" ||
  fail "uid 1000 could not create a file in a 1777 directory"
assert_eq "1000:1000" "$(stat -c %u:%g "$WORK/mnt/shared/by-1000")" "owner of a file made by uid 1000"
if setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo x >> '$WORK/mnt/etc/config'" 2>/dev/null; then
  fail "uid 1000 wrote a root-owned 0644 file"
fi
assert_eq 255 "$(stat -f -c %l "$WORK/mnt")" "statfs name length"
[ "$(stat -f -c %b "$WORK/mnt")" -gt 0 ] || fail "statfs reports no blocks"
rm -r "$WORK/mnt/shared"

step "setuid and setgid cleared by writes and truncations as the kernel clears them"
# With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves this to the daemon (fs/src/killpriv.h), passthrough
# writes included, which the daemon hears of only through the kernel's empty SETATTR before them.
sxid_changes() {
  local d=$1/sxid as1000="setpriv --reuid 1000 --regid 1000 --clear-groups"
  mkdir "$d"
  for f in w4777 w2777 w2767 w2767g w6777 r4777 t4777 o4777 c4755 n0777; do echo data > "$d/$f"; done
  chmod 4777 "$d/w4777" "$d/r4777" "$d/t4777" "$d/o4777"
  chmod 2777 "$d/w2777"
  chmod 2767 "$d/w2767" "$d/w2767g"
  chgrp 1000 "$d/w2767g" && chmod 2767 "$d/w2767g"
  chmod 6777 "$d/w6777"
  chmod 4755 "$d/c4755"
  chmod 0777 "$d/n0777"
  for f in w4777 w2777 w2767 w2767g w6777 n0777; do $as1000 sh -c "echo more >> '$d/$f'" || return 1; done
  echo more >> "$d/r4777"                                         # root: CAP_FSETID keeps the bits
  $as1000 truncate -s 2 "$d/t4777" || return 1
  $as1000 sh -c ": > '$d/o4777'" || return 1                      # open(O_TRUNC)
  chown 1000 "$d/c4755"
  # Opened for writing by uid 1000 before root makes it setuid (a passthrough open), then written.
  echo data > "$d/h0666" && chmod 0666 "$d/h0666"
  "$PYTHON" - "$d/h0666" <<'PY' || return 1
import os, sys
opened_r, opened_w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setgroups([]); os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    os.write(opened_w, b"o")
    os.read(go_r, 1)
    os.write(fd, b"more\n")
    os._exit(0)
os.read(opened_r, 1)
os.chmod(sys.argv[1], 0o4777)
os.write(go_w, b"g")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
PY
  echo data > "$d/u4755" && chmod 4755 "$d/u4755" && "$PYTHON" -c "import os, sys; os.chown(sys.argv[1], -1, -1)" "$d/u4755"
  (cd "$d" && stat -c '%n %a %s' *)
}
sxid_changes "$WORK/ovl/mnt" > "$WORK/sxid-want.txt" || fail "the setuid changes failed on kernel overlayfs"
sxid_changes "$WORK/mnt" > "$WORK/sxid-got.txt" || fail "the setuid changes failed on stratafs"
diff -u "$WORK/sxid-want.txt" "$WORK/sxid-got.txt" || fail "stratafs clears setuid/setgid unlike kernel overlayfs"
assert_contains "$(cat "$WORK/sxid-got.txt")" "w4777 777 10" "a write by uid 1000 clears setuid"
assert_contains "$(cat "$WORK/sxid-got.txt")" "w2767g 2767 10" "setgid kept for a member of the group without group exec"
assert_contains "$(cat "$WORK/sxid-got.txt")" "r4777 4777 10" "root's write keeps setuid"
assert_contains "$(cat "$WORK/sxid-got.txt")" "h0666 777 10" "a write through a file opened before chmod u+s"
# The same modes from the upper directory itself, as the next mount will show them.
assert_eq "$(cat "$WORK/sxid-got.txt")" "$(cd "$WORK/c1/upper/sxid" && stat -c '%n %a %s' *)" "modes on disk"
rm -r "$WORK/ovl/mnt/sxid" "$WORK/mnt/sxid"
# The same through /dev/fuse, where a reader of the device sees the requests' flags.
mount_layer sx "$WORK/mnt-sx" --no-io-uring
sxid_changes "$WORK/mnt-sx" > "$WORK/sxid-dev.txt" || fail "the setuid changes failed on stratafs --no-io-uring"
diff -u "$WORK/sxid-want.txt" "$WORK/sxid-dev.txt" || fail "stratafs --no-io-uring clears setuid/setgid unlike kernel overlayfs"
expect_rc 0 umount "$WORK/mnt-sx"

step "the upper directory is in overlay format"
U=$WORK/c1/upper
[ "$(stat -c '%F %t:%T' "$U/etc/null")" = "character special file 0:0" ] || fail "no whiteout for etc/null"
assert_eq y "$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$U/emptydir")" "opaque marker"
assert_eq /opaque "$(getfattr --absolute-names --only-values -n trusted.overlay.redirect "$U/renamed")" "redirect"
getfattr --absolute-names -n trusted.overlay.metacopy "$U/usr/bin/tool" >/dev/null 2>&1 ||
  fail "a chmod copied data (no metacopy marker on usr/bin/tool)"
# No data blocks (at most one block of xattrs) for a 300 kB file whose mode changed.
[ "$(stat -c %b "$U/usr/bin/tool")" -le 8 ] || fail "a metadata-only copy-up allocated $(stat -c %b "$U/usr/bin/tool") blocks"
[ ! -e "$U/tree/a/b/f1" ] || fail "deleting a lower tree copied it up"
assert_eq 1 "$(find "$U/sparse" -printf '%b\n' | awk '{print ($1 <= 64)}')" "sparse file stays sparse"
[ -z "$(ls -A "$WORK/c1/work")" ] || fail "work directory not empty: $(ls -A "$WORK/c1/work")"
# The union's own xattrs never show; user xattrs named like them are escaped.
assert_not_contains "$(getfattr --absolute-names -d -m - "$WORK/mnt/renamed" 2>&1)" "overlay.redirect" "own xattrs"
setfattr -n trusted.overlay.mine -v 1 "$WORK/mnt/etc/moved"
assert_eq 1 "$(getfattr --absolute-names --only-values -n trusted.overlay.mine "$WORK/mnt/etc/moved")" "escaped xattr"
assert_eq 1 "$(getfattr --absolute-names --only-values -n trusted.overlay.overlay.mine "$U/etc/moved")" "stored escaped"
setfattr -x trusted.overlay.mine "$WORK/mnt/etc/moved"

step "umount and mount again: same tree, same inode numbers"
paths="etc/config etc/hl-a usr/bin/hl-b usr/bin/tool renamed renamed/upper etc/moved new/deep/dir/f sparse"
inodes_before=$(cd "$WORK/mnt" && stat -c '%i %n' $paths)
expect_rc 0 umount "$WORK/mnt"
mount_layer c1 "$WORK/mnt"
dump_ns "$WORK/mnt" > "$WORK/again.txt"
diff -u "$WORK/got-ns.txt" "$WORK/again.txt" || fail "the changes did not survive umount/mount"
inodes_after=$(cd "$WORK/mnt" && stat -c '%i %n' $paths)
assert_eq "$inodes_before" "$inodes_after" "inode numbers across a remount"
assert_eq "$(stat -c %i "$WORK/mnt/etc/hl-a")" "$(stat -c %i "$WORK/mnt/usr/bin/hl-b")" "hardlinks share an inode"

step "a second writable layer over the same image sees none of it; the image is untouched"
mount_layer c2 "$WORK/mnt2"
dump "$WORK/mnt2" > "$WORK/other.txt"
diff -u "$WORK/lower.txt" "$WORK/other.txt" || fail "a second container sees the first one's changes"
echo "c2 only" > "$WORK/mnt2/etc/config"
assert_eq "$(printf 'layer 2\nappended')" "$(cat "$WORK/mnt/etc/config")" "c1 after c2 wrote"
expect_rc 0 umount "$WORK/mnt2"

step "rm -rf of everything, then the tree is empty"
rm -rf "$WORK/mnt2-unused" 2>/dev/null || true
mount_layer c3 "$WORK/mnt3"
rm -rf "$WORK/mnt3"/*
assert_eq "" "$(ls -A "$WORK/mnt3")" "listing after rm -rf"
expect_rc 0 umount "$WORK/mnt3"
mount_layer c3 "$WORK/mnt3"
assert_eq "" "$(ls -A "$WORK/mnt3")" "listing after rm -rf and a remount"
expect_rc 0 umount "$WORK/mnt3"

step "integrity: processes and threads interleaving write, read, truncate, mmap, fsync"
FSINTEGRITY=${FSINTEGRITY_BIN:-$(dirname "$STRATA_BIN")/../tests/strata_fsintegrity}
mount_layer c4 "$WORK/mnt4"
mkdir "$WORK/mnt4/integrity"
"$FSINTEGRITY" "$WORK/mnt4/integrity" --procs 2 --threads 3 --ops 1500 --seed 7 --seed-file "$WORK/mnt4/usr/bin/tool" ||
  fail "data integrity run failed"
# Again over a large image file kept at least its size: writes, mmap, reads and syncs of a
# metadata-only copy whose written blocks override its object.
mkdir "$WORK/mnt4/integrity2"
"$FSINTEGRITY" "$WORK/mnt4/integrity2" --procs 1 --threads 2 --ops 600 --seed 11 --seed-file "$WORK/mnt4/usr/lib/big" \
  --keep-seed-size 1 || fail "data integrity run over a large image file failed"
case $(getfattr --absolute-names --only-values -n trusted.strata.object "$WORK/c4/upper/usr/lib/big") in
  sha256:*\;overrides) ;;
  *) fail "the integrity run over usr/lib/big did not keep it a metadata-only copy with overrides" ;;
esac
sums=$(cd "$WORK/mnt4" && sha256sum integrity/* integrity2/* usr/bin/tool usr/lib/big)
expect_rc 0 umount "$WORK/mnt4"
mount_layer c4 "$WORK/mnt4"
assert_eq "$sums" "$(cd "$WORK/mnt4" && sha256sum integrity/* integrity2/* usr/bin/tool usr/lib/big)" \
  "contents after the integrity runs and a remount"
expect_rc 0 umount "$WORK/mnt4"

step "10,000 new files in one mount: the daemon's fds stay bounded, every file stays readable"
# It used to hold an fd per upper inode the kernel knew, and failed with EMFILE once the files
# the kernel had not forgotten reached the fd limit (20,000 here: EMFILE at file 19,764); a limit
# of 1,024 makes that show at a tenth of the files, and keeps the step short.
mkdir -p "$WORK/c5/upper" "$WORK/c5/work" "$WORK/mnt5"
track_mount "$WORK/mnt5"
prlimit --nofile=1024:1024 "$STRATAFS" --root "$STRATA_ROOT" --upper "$WORK/c5/upper" --work "$WORK/c5/work" \
  -f test/union:1 "$WORK/mnt5" &
C5_PID=$!
track_pid "$C5_PID"
for _ in $(seq 1 100); do grep -q " $WORK/mnt5 fuse" /proc/mounts && break; sleep 0.05; done
grep -q " $WORK/mnt5 fuse" /proc/mounts || fail "stratafs with a 1024-fd limit did not mount"
"$PYTHON" - "$WORK/mnt5" "$C5_PID" > "$WORK/many-inodes.txt" <<'PY' || fail "creating and reading back 10,000 files"
import os, sys
root, pid = sys.argv[1], sys.argv[2]
paths = [f"{root}/many{i % 10}/f{i}" for i in range(10000)]
for d in range(10):
    os.mkdir(f"{root}/many{d}")
for i, p in enumerate(paths):
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"%d" % i)
    os.close(fd)
fds = len(os.listdir(f"/proc/{pid}/fd"))
if fds > 512:
    sys.exit(f"the daemon holds {fds} fds after creating {len(paths)} files")
for i, p in enumerate(paths):
    with open(p, "rb") as f:
        if f.read() != b"%d" % i:
            sys.exit(f"{p}: wrong content")
    print(os.stat(p).st_ino, p[len(root) + 1:])
PY
expect_rc 0 umount "$WORK/mnt5"
wait "$C5_PID" 2>/dev/null || true
mount_layer c5 "$WORK/mnt5"
"$PYTHON" - "$WORK/mnt5" "$WORK/many-inodes.txt" > "$WORK/many-again.txt" <<'PY'
import os, sys
for line in open(sys.argv[2]):
    ino, rel = line.split()
    print(os.stat(f"{sys.argv[1]}/{rel}").st_ino, rel)
PY
diff -q "$WORK/many-inodes.txt" "$WORK/many-again.txt" >/dev/null ||
  fail "inode numbers of the 10,000 files changed across a remount"
expect_rc 0 umount "$WORK/mnt5"

step "passthrough: the kernel reads and writes upper files on the upper copy itself"
if kernel_has_fuse_passthrough; then
  mount_layer c7 "$WORK/mnt7"
  M7=$WORK/mnt7 U7=$WORK/c7/upper
  head -c 200000 /dev/urandom > "$WORK/payload"
  cp "$WORK/payload" "$M7/new.bin"
  assert_eq "$(sha256_of "$WORK/payload")" "$(sha256_of "$M7/new.bin")" "a new file written and read back"
  assert_eq 200000 "$(stat -c %s "$M7/new.bin")" "size after passthrough writes"
  assert_eq "$(sha256_of "$WORK/payload")" "$(sha256_of "$U7/new.bin")" "the upper copy holds what was written"
  drop_cache "$U7/new.bin"
  assert_eq 0 "$(resident "$U7/new.bin")" "upper file's pages after POSIX_FADV_DONTNEED"
  assert_eq "$(sha256_of "$WORK/payload")" "$(sha256_of "$M7/new.bin")" "read again"
  [ "$(resident "$U7/new.bin")" -gt 0 ] || fail "the read did not come from the upper file: no passthrough"
  # An append to a small image file copies it up at the open, so its writes go to the upper
  # file by passthrough; the lower object is untouched.
  printf x >> "$M7/usr/bin/tool"
  { cat "$L1/usr/bin/tool"; printf x; } > "$WORK/tool.appended"
  assert_eq "$(sha256_of "$WORK/tool.appended")" "$(sha256_of "$U7/usr/bin/tool")" "a small file's copy-up"
  assert_eq "$(sha256_of "$L1/usr/bin/tool")" "$(sha256_of "$LOWER/usr/bin/tool")" "lower content after the append"
  # An append to a large one copies no data: the upper file is a metadata-only copy holding the
  # byte past the object's end, and reads (through the daemon) join the two.
  BIG=$((9 << 20))
  printf x >> "$M7/usr/lib/big"
  assert_eq $((BIG + 1)) "$(stat -c %s "$M7/usr/lib/big")" "size after the append"
  assert_eq x "$(tail -c 1 "$M7/usr/lib/big")" "the appended byte"
  cmp -n $BIG "$M7/usr/lib/big" "$L1/usr/lib/big" || fail "the append changed the old content"
  getfattr --absolute-names -n trusted.overlay.metacopy "$U7/usr/lib/big" >/dev/null 2>&1 ||
    fail "the append copied the data (no metacopy marker on usr/lib/big)"
  [ "$(stat -c %b "$U7/usr/lib/big")" -le 16 ] || fail "the append allocated $(stat -c %b "$U7/usr/lib/big") blocks"
  "$PYTHON" - "$M7/usr/lib/big" "$L1/usr/lib/big" <<'PY' || fail "mmap across the object's end"
import mmap, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "rb") as lower:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    assert m[:] == lower.read() + b"x", "mapped content"
PY
  # Mounted read-only (a copy of the layer; the kernel then reads lower files from their objects
  # directly), a file whose content runs past its object's end still reads whole.
  mkdir -p "$WORK/c8"
  cp -a "$U7" "$WORK/c8/upper"
  mount_layer c8 "$WORK/mnt8" --read-only
  { cat "$L1/usr/lib/big"; printf x; } > "$WORK/big.appended"
  assert_eq "$(sha256_of "$WORK/big.appended")" "$(sha256_of "$WORK/mnt8/usr/lib/big")" "read-only, past the object's end"
  assert_eq "$(sha256_of "$L1/etc/hl-a")" "$(sha256_of "$WORK/mnt8/etc/hl-a")" "read-only, a lower file"
  expect_rc 0 umount "$WORK/mnt8"
  # A write inside the old content copies in the rest of the blocks it touches, not the file:
  # the copy stays metadata-only, its upper file's data blocks overriding the object there.
  printf y | dd of="$M7/usr/lib/big" bs=1 seek=10 conv=notrunc status=none
  printf zz | dd of="$M7/usr/lib/big" bs=1 seek=$((5 << 20)) conv=notrunc status=none
  getfattr --absolute-names -n trusted.overlay.metacopy "$U7/usr/lib/big" >/dev/null 2>&1 ||
    fail "a write inside the object's bytes copied the file (no metacopy marker)"
  case $(getfattr --absolute-names --only-values -n trusted.strata.object "$U7/usr/lib/big") in
    sha256:*\;overrides) ;;
    *) fail "no overrides recorded on usr/lib/big" ;;
  esac
  [ "$(stat -c %b "$U7/usr/lib/big")" -le 64 ] || fail "two small writes allocated $(stat -c %b "$U7/usr/lib/big") blocks"
  "$PYTHON" - "$L1/usr/lib/big" "$WORK/big.want" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[10:11] = b"y"
data[5 << 20:(5 << 20) + 2] = b"zz"
open(sys.argv[2], "wb").write(bytes(data) + b"x")
PY
  assert_eq "$(sha256_of "$WORK/big.want")" "$(sha256_of "$M7/usr/lib/big")" "read through the mount"
  drop_cache "$M7/usr/lib/big"
  assert_eq "$(sha256_of "$WORK/big.want")" "$(sha256_of "$M7/usr/lib/big")" "read again, through the daemon"
  # cp asks for data and holes (lseek): answered from both files, without filling the copy in.
  cp "$M7/usr/lib/big" "$WORK/big.cp"
  assert_eq "$(sha256_of "$WORK/big.want")" "$(sha256_of "$WORK/big.cp")" "cp of a file with overrides"
  getfattr --absolute-names -n trusted.overlay.metacopy "$U7/usr/lib/big" >/dev/null 2>&1 ||
    fail "lseek filled the copy in"
  # A truncation into the object's bytes fills the copy in around the overrides; then passthrough.
  truncate -s $((BIG - 1)) "$M7/usr/lib/big"
  ! getfattr --absolute-names -n trusted.overlay.metacopy "$U7/usr/lib/big" >/dev/null 2>&1 ||
    fail "a truncation inside the object's bytes left the metacopy marker"
  head -c $((BIG - 1)) "$WORK/big.want" > "$WORK/big.cut"
  assert_eq "$(sha256_of "$WORK/big.cut")" "$(sha256_of "$U7/usr/lib/big")" "the upper copy after the fill"
  drop_cache "$U7/usr/lib/big"
  assert_eq "$(sha256_of "$WORK/big.cut")" "$(sha256_of "$M7/usr/lib/big")" "read through the mount after the fill"
  [ "$(resident "$U7/usr/lib/big")" -gt 0 ] || fail "the filled copy was not read by passthrough"
  # The mtime a passthrough write leaves is the one stat shows (the kernel drops its cached one).
  touch -d @1000000000 "$M7/new.bin"
  printf more >> "$M7/new.bin"
  [ "$(stat -c %Y "$M7/new.bin")" -gt 1000000000 ] || fail "mtime not updated by a passthrough write"
  # A lower file open for reading while another open writes it: the reader is in cached mode (a
  # passthrough open would tie the inode to the lower object), and sees the written data.
  "$PYTHON" - "$M7/etc/config" <<'PY' || fail "reader and writer of one lower file"
import sys
path = sys.argv[1]
reader = open(path, "rb")
assert reader.read() == b"layer 2\n", "first read"
with open(path, "ab") as writer:
    writer.write(b"written\n")
reader.seek(0)
assert reader.read() == b"layer 2\nwritten\n", "the reader after the write"
with open(path, "rb") as again:
    assert again.read() == b"layer 2\nwritten\n", "a new reader"
PY
  # Readers and appenders of the same lower files at once: each inode goes from cached opens
  # (readers of lower content) to a copy-up and on to passthrough opens of the upper copy as the
  # opens come and go; a mode the kernel refuses (ETXTBSY, EBUSY) would fail an open here.
  "$PYTHON" - "$M7/tree/a/b" <<'PY' || fail "concurrent readers and appenders"
import os, sys
from concurrent.futures import ProcessPoolExecutor
root = sys.argv[1]
paths = [f"{root}/f{i}" for i in range(1, 11)]
def work(args):
    role, seed = args
    import random
    random.seed(seed)
    for _ in range(600):
        p = random.choice(paths)
        if role == "append":
            with open(p, "ab") as f:
                f.write(b"+")
        else:
            with open(p, "rb") as f:
                assert f.read(1).isdigit(), p
    return 0
with ProcessPoolExecutor(5) as pool:
    list(pool.map(work, [("read", 1), ("read", 2), ("read", 3), ("append", 4), ("append", 5)]))
appended = sum(open(p, "rb").read().count(b"+") for p in paths)
assert appended == 1200, appended
PY
  # Shared writable mmap, truncate and fallocate of a passthrough file.
  "$PYTHON" - "$M7/new.bin" <<'PY' || fail "shared writable mmap"
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:5] = b"MMAP!"
    m.flush()
    m.close()
PY
  assert_eq "MMAP!" "$(head -c 5 "$U7/new.bin")" "mmap writes in the upper file"
  truncate -s 1000 "$M7/new.bin"
  assert_eq 1000 "$(stat -c %s "$M7/new.bin")" "size after truncate"
  fallocate -l 8192 "$M7/new.bin"
  assert_eq 8192 "$(stat -c %s "$M7/new.bin")" "size after fallocate"
  expect_rc 0 umount "$M7"
  mount_layer c7 "$M7"
  assert_eq "MMAP!" "$(head -c 5 "$M7/new.bin")" "mmap writes after a remount"
  assert_eq 8192 "$(stat -c %s "$M7/new.bin")" "size after a remount"
  assert_eq "layer 2
written" "$(cat "$M7/etc/config")" "written lower file after a remount"
  expect_rc 0 umount "$M7"
  # A lower file: cached in a writable mount (its object must never back an inode a writer may
  # open), backed by its object in a read-only one.
  OBJ=$(object_of "$L1/var/cache/file")
  [ -f "$OBJ" ] || fail "no object for var/cache/file at $OBJ"
  mount_layer c7 "$M7"
  cat "$M7/var/cache/file" > /dev/null
  drop_cache "$OBJ"
  assert_eq cached "$(cat "$M7/var/cache/file")" "lower file, writable mount"
  assert_eq 0 "$(resident "$OBJ")" "writable mount: a lower file is read through the mount's cache"
  expect_rc 0 umount "$M7"
  mount_layer c7 "$M7" --read-only
  cat "$M7/var/cache/file" > /dev/null
  drop_cache "$OBJ"
  assert_eq 0 "$(resident "$OBJ")" "object pages after POSIX_FADV_DONTNEED"
  assert_eq cached "$(cat "$M7/var/cache/file")" "lower file, read-only mount"
  [ "$(resident "$OBJ")" -gt 0 ] || fail "read-only mount: the lower file was not read from its object"
  assert_eq "MMAP!" "$(head -c 5 "$M7/new.bin")" "upper file, read-only mount"
  expect_rc 0 umount "$M7"
  # Without passthrough the mount's page cache answers a second read.
  mount_layer c7 "$M7" --no-passthrough
  cat "$M7/new.bin" > /dev/null
  drop_cache "$U7/new.bin"
  cat "$M7/new.bin" > /dev/null
  assert_eq 0 "$(resident "$U7/new.bin")" "--no-passthrough: the second read came from the mount's cache"
  expect_rc 0 umount "$M7"
else
  echo "$TEST_NAME: kernel $(uname -r) has no FUSE passthrough: its checks skipped"
fi

step "appends to an image file, readers, a write inside it, and an allocation that fills the copy in, all at once"
# Appends keep the file a metadata-only copy (its object, then the upper file's bytes); a write
# inside the object's bytes puts its block in the upper file (an override), and an allocation
# there fills the copy in, while appends and reads go on. No byte may be lost or come from the
# wrong file.
mount_layer c9 "$WORK/mnt9"
"$PYTHON" - "$WORK/mnt9/usr/lib/big" "$L1/usr/lib/big" <<'PY' || fail "appends, reads and a fill at once"
import os, re, sys, threading, time
path, lower_path = sys.argv[1:3]
lower = open(lower_path, "rb").read()
filled = lower[:10] + b"Z" + lower[11:]
records = re.compile(rb"<(\d+)-(\d+)-(x*)>")
errors = []
def records_in(tail, complete):
    found = [(int(a), int(b)) for a, b, _ in records.findall(tail)]
    whole = b"".join(m.group(0) for m in records.finditer(tail))
    if complete and whole != tail:
        errors.append("bytes past the object's end that are no record")
    return found
def appender(t):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    for i in range(300):
        os.write(fd, b"<%d-%d-%s>" % (t, i, b"x" * ((t * 7 + i) % 50)))
    os.close(fd)
def reader(stop):
    while not stop.is_set():
        with open(path, "rb") as f:
            data = f.read()
        head = data[:len(lower)]
        if head not in (lower, filled):
            errors.append("the object's bytes read wrong")
        records_in(data[len(lower):], False)
def inside():
    while os.stat(path).st_size < len(lower) + 4000:  # amid the appends
        time.sleep(0.001)
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b"Z", 10)
    while os.stat(path).st_size < len(lower) + 8000:
        time.sleep(0.001)
    os.posix_fallocate(fd, 0, 4096)
    os.close(fd)
stop = threading.Event()
readers = [threading.Thread(target=reader, args=(stop,)) for _ in range(2)]
writers = [threading.Thread(target=appender, args=(t,)) for t in range(3)] + [threading.Thread(target=inside)]
for t in readers + writers: t.start()
for t in writers: t.join()
stop.set()
for t in readers: t.join()
data = open(path, "rb").read()
assert data[:len(lower)] == filled, "the object's bytes after the write inside"
got = records_in(data[len(lower):], True)
assert sorted(got) == [(t, i) for t in range(3) for i in range(300)], "appended records"
assert not errors, errors[:3]
PY
getfattr --absolute-names -n trusted.overlay.metacopy "$WORK/c9/upper/usr/lib/big" >/dev/null 2>&1 &&
  fail "the allocation inside left the metacopy marker"
sum=$(sha256_of "$WORK/mnt9/usr/lib/big")
expect_rc 0 umount "$WORK/mnt9"
mount_layer c9 "$WORK/mnt9"
assert_eq "$sum" "$(sha256_of "$WORK/mnt9/usr/lib/big")" "after a remount"
expect_rc 0 umount "$WORK/mnt9"

step "data fsynced before the daemon dies survives; umount clears the dead mount"
expect_rc 0 umount "$WORK/mnt"
# In the foreground, so the test knows the daemon's PID.
"$STRATAFS" --root "$STRATA_ROOT" --upper "$WORK/c1/upper" --work "$WORK/c1/work" -f test/union:1 "$WORK/mnt" &
C1_PID=$!
track_pid "$C1_PID"
for _ in $(seq 1 100); do grep -q " $WORK/mnt fuse" /proc/mounts && break; sleep 0.05; done
grep -q " $WORK/mnt fuse" /proc/mounts || fail "foreground stratafs did not mount"
write_fsynced "$WORK/mnt/durable"
# And writes inside a large image file (overrides of its object), fsynced.
"$PYTHON" - "$WORK/mnt/usr/lib/big" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"DURABLE", 10)
os.pwrite(fd, b"DURABLE" * 1000, (5 << 20) + 100)
os.fsync(fd)
os.close(fd)
PY
kill -9 "$C1_PID"
wait "$C1_PID" 2>/dev/null || true
expect_rc 0 umount "$WORK/mnt"
mount_layer c1 "$WORK/mnt"
assert_eq 12000 "$(stat -c %s "$WORK/mnt/durable")" "size of the fsynced file"
assert_eq "synced data" "$(head -1 "$WORK/mnt/durable")" "content of the fsynced file"
"$PYTHON" - "$WORK/mnt/usr/lib/big" "$L1/usr/lib/big" <<'PY' || fail "fsynced writes inside usr/lib/big after the daemon died"
import sys
got, lower = (open(p, "rb").read() for p in sys.argv[1:3])
want = bytearray(lower)
want[10:17] = b"DURABLE"
want[(5 << 20) + 100:(5 << 20) + 100 + 7000] = b"DURABLE" * 1000
assert got == bytes(want), "content differs"
PY
expect_rc 0 umount "$WORK/mnt"
umount "$WORK/ovl/mnt"
pass
