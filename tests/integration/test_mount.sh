#!/usr/bin/env bash
# strata mount: the view of a multi-layer image (whiteouts, opaque directories, hardlinks,
# symlinks, devices, xattrs, a deep layer stack) equals what `umoci unpack` makes of the same
# image; inode numbers are stable across remounts; a mounted image cannot be removed; --layer
# shows one layer as stored; umount leaves nothing behind; files are read by FUSE passthrough
# from the store's objects (or, with --no-passthrough, through the driver); requests come
# through per-CPU io_uring queues (or, with --no-io-uring, /dev/fuse).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mount_image() {  # mount_image IMAGE DIR [ARGS...]
  local image=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  track_mount "$dir"
  expect_rc 0 mount "$@" "$image" "$dir"
}

# --- an image with every kind of entry and every kind of deletion ---
L1=$WORK/l1 L2=$WORK/l2 L3=$WORK/l3
mkdir -p "$L1"/{etc,usr/bin,var/cache,opaque/sub,gone/deep} "$L2"/{etc,opaque} "$L3"/usr/bin
echo base > "$L1/etc/config"
echo "keep me" > "$L1/etc/keep"
head -c 300000 /dev/urandom > "$L1/usr/bin/tool"
ln "$L1/usr/bin/tool" "$L1/usr/bin/tool-hardlink"
ln -s ../usr/bin/tool "$L1/etc/tool-link"
echo cached > "$L1/var/cache/file"
echo lower > "$L1/opaque/sub/lower"
echo lower2 > "$L1/opaque/lower-top"
echo deep > "$L1/gone/deep/file"
mknod "$L1/etc/null" c 1 3
mkfifo "$L1/etc/fifo"
setfattr -n user.color -v blue "$L1/var/cache/file"
chmod 4755 "$L1/usr/bin/tool"
chown 1000:1000 "$L1/var/cache/file"
cp /bin/busybox "$L1/usr/bin/busybox"
# layer 2: replace a file, delete a file and a directory tree, make a directory opaque
echo "changed in layer 2" > "$L2/etc/config"
touch "$L2/etc/.wh.keep" "$L2/.wh.gone" "$L2/opaque/.wh..wh..opq"
echo upper > "$L2/opaque/upper"
# layer 3: a new file and a file replacing a hardlink
echo new > "$L3/usr/bin/new"
echo replaced > "$L3/usr/bin/tool-hardlink"

"$PYTHON" "$MKIMAGE_PY" --format oci-dir -o "$WORK/oci" --tag test/union:1 \
  --layer "$L1" --layer "$L2" --layer "$L3" >/dev/null
expect_rc 0 load -i "$WORK/oci"

umoci unpack --image "$WORK/oci:1" "$WORK/bundle" >/dev/null 2>&1 || fail "umoci unpack failed"
mount_image test/union:1 "$WORK/mnt"

"$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$WORK/bundle/rootfs" > "$WORK/want.txt"
"$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$WORK/mnt" > "$WORK/got.txt"
diff -u "$WORK/want.txt" "$WORK/got.txt" || fail "the mounted view differs from umoci unpack"
assert_contains "$(cat "$WORK/got.txt")" "opaque/upper" "file added above an opaque dir"
assert_not_contains "$(cat "$WORK/got.txt")" "opaque/sub" "opaque dir hides lower content"
assert_not_contains "$(cat "$WORK/got.txt")" "etc/keep" "whiteout hides the file"
assert_eq "changed in layer 2" "$(cat "$WORK/mnt/etc/config")" "upper layer wins"
assert_eq "blue" "$(getfattr --absolute-names --only-values -n user.color "$WORK/mnt/var/cache/file")" "xattr"
[ ! -e "$WORK/mnt/gone" ] || fail "whited-out directory is visible"

# Ordinary tools read it.
tar -C "$WORK/mnt" -cf "$WORK/view.tar" . || fail "tar over the mount"
tar -tf "$WORK/view.tar" > "$WORK/view.list"
grep -qx './usr/bin/tool' "$WORK/view.list" || fail "tar over the mount lacks usr/bin/tool"
[ "$(find "$WORK/mnt" | wc -l)" -eq "$(find "$WORK/bundle/rootfs" | wc -l)" ] || fail "find counts differ"
sha256sum "$WORK/mnt/usr/bin/tool" | grep -q "$(sha256sum < "$L1/usr/bin/tool" | cut -d' ' -f1)" || fail "content"

# Passthrough (Linux 6.9+; the CI kernel has it): the kernel reads the store's object itself, so
# a read after the object's pages were dropped brings them back into memory. With
# --no-passthrough the mount's own page cache answers the second read and the object stays out.
mmap_sha() {
  "$PYTHON" -c 'import hashlib, mmap, sys; f = open(sys.argv[1], "rb"); print(hashlib.sha256(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)).hexdigest())' "$1"
}
tool_obj=$(object_of "$L1/usr/bin/tool")
[ -f "$tool_obj" ] || fail "no object for usr/bin/tool at $tool_obj"
tool_sha=$(sha256_of "$L1/usr/bin/tool")
if kernel_has_fuse_passthrough; then
  mount_image test/union:1 "$WORK/pt"
  cat "$WORK/pt/usr/bin/tool" > /dev/null
  drop_cache "$tool_obj"
  assert_eq 0 "$(resident "$tool_obj")" "object pages after POSIX_FADV_DONTNEED"
  assert_eq "$tool_sha" "$(sha256_of "$WORK/pt/usr/bin/tool")" "content read by passthrough"
  [ "$(resident "$tool_obj")" -gt 0 ] || fail "the second read did not come from the object: no passthrough"
  assert_eq "$tool_sha" "$(mmap_sha "$WORK/pt/usr/bin/tool")" "content mapped by passthrough"
  assert_eq "passthrough exec" "$("$WORK/pt/usr/bin/busybox" echo passthrough exec)" "exec from a passthrough file"
  # Many opens of one file at once share its backing object; each sees the whole content.
  for i in 1 2 3 4 5 6 7 8; do sha256_of "$WORK/pt/usr/bin/tool" > "$WORK/par.$i" & done
  wait
  for i in 1 2 3 4 5 6 7 8; do assert_eq "$tool_sha" "$(cat "$WORK/par.$i")" "concurrent open $i"; done
  expect_rc 0 umount "$WORK/pt"

  mount_image test/union:1 "$WORK/pt" --no-passthrough
  cat "$WORK/pt/usr/bin/tool" > /dev/null
  drop_cache "$tool_obj"
  assert_eq "$tool_sha" "$(sha256_of "$WORK/pt/usr/bin/tool")" "content read through the driver"
  assert_eq 0 "$(resident "$tool_obj")" "--no-passthrough: the second read came from the mount's cache"
  assert_eq "passthrough exec" "$("$WORK/pt/usr/bin/busybox" echo passthrough exec)" "exec without passthrough"
  expect_rc 0 umount "$WORK/pt"
else
  echo "$TEST_NAME: kernel $(uname -r) has no FUSE passthrough: its checks skipped"
fi

# FUSE over io_uring (Linux 6.14+; the CI kernel has it): strata turns the fuse module's
# enable_uring on, the daemon keeps one ring per CPU, and a request is answered by the ring of
# the CPU that made it. With --no-io-uring the daemon reads /dev/fuse and has no ring.
if kernel_has_fuse_uring; then
  param=/sys/module/fuse/parameters/enable_uring
  at_exit "echo $(cat "$param") > $param"
  echo N > "$param"
  mount_image test/union:1 "$WORK/ur"
  assert_eq Y "$(cat "$param")" "enable_uring after strata mount"
  pid=$(daemon_pid "$WORK/ur") || fail "no daemon for $WORK/ur"
  rings=$(uring_fds "$pid")
  assert_eq "$((2 * $(possible_cpus)))" "$(echo "$rings" | grep -c .)" "rings of the daemon (two per CPU)"
  assert_eq "$tool_sha" "$(sha256_of "$WORK/ur/usr/bin/tool")" "content over the rings"
  [ "$(find "$WORK/ur" | wc -l)" -eq "$(find "$WORK/bundle/rootfs" | wc -l)" ] || fail "find counts differ over the rings"
  # A lookup of a name not yet seen is a request: made on each CPU, a ring answers it.
  ring_total() { local fd n=0; for fd in $rings; do n=$((n + $(uring_completions "$pid" "$fd"))); done; echo "$n"; }
  for cpu in $(seq 0 $(($(nproc --all) - 1))); do
    before=$(ring_total)
    taskset -c "$cpu" stat "$WORK/ur/etc/absent-$cpu" >/dev/null 2>&1 && fail "etc/absent-$cpu exists"
    [ "$(ring_total)" -gt "$before" ] || fail "no ring answered the lookup made on CPU $cpu"
  done
  expect_rc 0 umount "$WORK/ur"

  mount_image test/union:1 "$WORK/ur" --no-io-uring
  pid=$(daemon_pid "$WORK/ur") || fail "no daemon for $WORK/ur"
  assert_eq "" "$(uring_fds "$pid")" "--no-io-uring: rings of the daemon"
  assert_eq "$tool_sha" "$(sha256_of "$WORK/ur/usr/bin/tool")" "content through /dev/fuse"
  expect_rc 0 umount "$WORK/ur"
else
  echo "$TEST_NAME: kernel $(uname -r) has no FUSE over io_uring: its checks skipped"
fi

# Read-only, with the kernel enforcing it.
if touch "$WORK/mnt/newfile" 2>/dev/null; then fail "a write to an image mount succeeded"; fi

# Stable inode numbers across remounts; the mounted image cannot be removed.
ino_before=$(stat -c %i "$WORK/mnt/usr/bin/tool")
expect_rc 1 rmi -f test/union:1
assert_contains "$ERR" "in use by the mount" "rmi of a mounted image"
expect_rc 0 umount "$WORK/mnt"
grep -q " $WORK/mnt fuse" /proc/mounts && fail "still mounted after umount"
mount_image test/union:1 "$WORK/mnt"
assert_eq "$ino_before" "$(stat -c %i "$WORK/mnt/usr/bin/tool")" "st_ino after remount"
expect_rc 0 umount "$WORK/mnt"

# A mount holds the store's GC lock (shared) from looking the image up until its lease is
# recorded: while rmi or prune holds it exclusively, the mount waits, so neither can delete the
# image between the two.
mkdir -p "$WORK/waiting"
track_mount "$WORK/waiting"
exec {gc_fd}>"$STRATA_ROOT/gc.lock"
flock -x "$gc_fd"
# (not inherited: a flock belongs to the open file, which the waiting mount would then hold too)
"$STRATA_BIN" mount test/union:1 "$WORK/waiting" 2>"$WORK/waiting.err" {gc_fd}>&- &
mount_pid=$!
track_pid "$mount_pid"
sleep 0.5
grep -q " $WORK/waiting fuse" /proc/mounts && fail "mounted while the GC lock was held exclusively"
kill -0 "$mount_pid" 2>/dev/null || fail "the mount did not wait for the GC lock: $(cat "$WORK/waiting.err")"
exec {gc_fd}>&-
wait "$mount_pid" || fail "the mount failed once the GC lock was free: $(cat "$WORK/waiting.err")"
grep -q " $WORK/waiting fuse" /proc/mounts || fail "not mounted once the GC lock was free"
expect_rc 1 rmi -f test/union:1
assert_contains "$ERR" "in use by the mount at $WORK/waiting" "rmi after a mount that waited"
expect_rc 0 umount "$WORK/waiting"

# --layer: one layer as stored, whiteouts visible as .wh. files.
mount_image test/union:1 "$WORK/layer2" --layer 2
[ -e "$WORK/layer2/etc/.wh.keep" ] || fail "--layer 2 does not show etc/.wh.keep"
[ -e "$WORK/layer2/opaque/.wh..wh..opq" ] || fail "--layer 2 does not show the opaque marker"
assert_eq "changed in layer 2" "$(cat "$WORK/layer2/etc/config")" "--layer 2 content"
[ ! -e "$WORK/layer2/usr" ] || fail "--layer 2 shows another layer's files"
expect_rc 0 umount "$WORK/layer2"
expect_rc 1 mount --layer 9 test/union:1 "$WORK/layer2"
assert_contains "$ERR" "--layer 9" "bad --layer named"

# A daemon killed under a live mount: umount clears it, and the image mounts again.
mount_image test/union:1 "$WORK/mnt"
pid=$(daemon_pid "$WORK/mnt") || fail "no stratafs daemon found for the mount"
# Its fd table was grown before its workers started: growing it under them waits for RCU at each
# doubling. 16384 slots, or what the daemon's fd limit (raised to the hard one) allows.
want_slots=16384
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 16384 ] || want_slots=0
fd_slots=$(awk '/^FDSize:/ {print $2}' "/proc/$pid/status")
[ "$fd_slots" -ge "$want_slots" ] || fail "daemon fd table: $fd_slots slots, want $want_slots"
kill -9 "$pid"
sleep 0.2
expect_rc 0 umount "$WORK/mnt"
expect_rc 0 rmi test/union:1   # the dead daemon's lease no longer protects the image
expect_rc 0 load -i "$WORK/oci"
mount_image test/union:1 "$WORK/mnt"
assert_eq "new" "$(cat "$WORK/mnt/usr/bin/new")" "remount after a crash"
expect_rc 0 umount "$WORK/mnt"

# --- a 50-layer image: every layer adds and deletes; lookups are one index probe ---
layers=()
for i in $(seq 1 50); do
  d=$WORK/deep$i
  mkdir -p "$d/data"
  echo "layer $i" > "$d/data/file$i"
  [ "$i" -gt 1 ] && touch "$d/data/.wh.file$((i - 1))"
  layers+=(--layer "$d")
done
"$PYTHON" "$MKIMAGE_PY" --format docker-archive -o "$WORK/deep.tar" --tag test/deep:50 "${layers[@]}" >/dev/null
expect_rc 0 load -i "$WORK/deep.tar"
mount_image test/deep:50 "$WORK/deep"
assert_eq "file50" "$(ls "$WORK/deep/data")" "only the top layer's file survives 49 whiteouts"
assert_eq "layer 50" "$(cat "$WORK/deep/data/file50")" "50-layer content"
expect_rc 0 umount "$WORK/deep"

pass
