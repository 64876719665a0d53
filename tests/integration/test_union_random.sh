#!/usr/bin/env bash
# Random operations, stratafs against kernel overlayfs (issues 3 and 6): over the same two
# directory layers in overlay format (a 0:0 whiteout, an opaque directory, a hardlink, a symlink,
# an xattr), a writable stratafs mount and a writable kernel overlay mount get the same seeded
# random sequence of writes (whole, appended, at an offset), truncates, mkdir/rmdir, unlinks,
# renames (plain, RENAME_NOREPLACE, RENAME_EXCHANGE; of files and of lower directories),
# hardlinks, symlinks, FIFOs, 0:0 character devices (refused), chmods, chowns, xattrs (user.*,
# trusted.*, and trusted.overlay.*, which a union must escape), utimes, tree removals, and reads,
# writes, truncates and chmods through fds held open across steps; a quarter of them as uid 1000
# (tests/testutil/union_diff.py). Every operation must have the same outcome (success or the
# same errno) on both, and the trees must stay identical. Then kernel overlayfs mounts the upper
# stratafs wrote, over the same layers, and must show that same tree too (and the same inode
# numbers), and stratafs the upper kernel overlayfs wrote (as a layer, and as its upper); and
# before that, a new stratafs daemon over its upper shows the same tree and goes on giving the
# same outcomes for another sequence.
# The same again with a strata container (`strata mount --container`) of an image made of those
# layers in OCI form (`.wh.` whiteout and opaque markers), from the store.
#
# SEEDS (default "1 2 3 4 5 6 7 8") and STEPS (default 300) choose the sequences.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd setfattr mknod mountpoint

STRATAFS=${STRATAFS_BIN:-$(dirname "$STRATA_BIN")/../fs/stratafs}
DIFF_PY="$STRATA_SRC/tests/testutil/union_diff.py"
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8}
STEPS=${STEPS:-300}
# The reference mounts rename lower directories (redirect xattrs) as stratafs does, and copy up
# whole files: with metacopy=on, the kernel's later fill-in of a metadata-only copy's data (at an
# open for writing, even one that writes nothing) sets the file's mtime to the time of the fill-in.
KOPTS=redirect_dir=on
# What kernel overlayfs needs to read an upper stratafs wrote: metadata-only copy-ups too.
KREAD_OPTS=redirect_dir=on,metacopy=on
at_exit unmount_under_work
chmod 755 "$WORK"  # union_diff.py runs some steps as an unprivileged user, through the mounts here

step "two layers in overlay format"
L1=$WORK/l1 L2=$WORK/l2
mkdir -p "$L2/a/sub" "$L2/b" "$L2/deep/a/b" "$L1/a" "$L1/b" "$L1/c"
echo bottom-x >"$L2/x.txt"
echo bottom-ax >"$L2/a/x.txt"
echo sub-y >"$L2/a/sub/y.txt"
echo deep >"$L2/deep/a/b/x.txt"
ln -s x.txt "$L2/a/c"
ln "$L2/x.txt" "$L2/b/x.txt"
ln "$L2/a/sub/y.txt" "$L2/deep/y.txt"  # a hardlinked pair both of whose names show
setfattr -n user.k1 -v low "$L2/a/x.txt"
echo top-ax >"$L1/a/x.txt"
# Large enough (8 MiB) that a strata container keeps it a metadata-only copy when it is opened
# for writing, until a write lands inside the image's bytes (an append alone copies nothing).
{ echo top-y; head -c $((8 << 20)) /dev/zero | tr '\0' y; } >"$L1/y.txt"
mknod "$L1/a/c" c 0 0                        # hides the bottom layer's a/c
setfattr -n trusted.overlay.opaque -v y "$L1/b"  # hides the bottom layer's b/x.txt
echo opaque-d >"$L1/b/d"
# Times from before any a step sets (whole seconds, as image layers have them): a copy-up must
# keep an entry's, and its parent's.
find "$L1" "$L2" -exec touch -h -d @900000000 {} +

FAILED=()
# run_diff WHAT ARGS...: union_diff.py ARGS; a difference is recorded under WHAT (and fails it).
run_diff() {
  local what=$1 out
  shift
  if ! out=$("$PYTHON" "$DIFF_PY" "$@" 2>&1); then
    printf '%s\n' "$out" | head -n 20 >&2
    FAILED+=("$what")
    return 1
  fi
  [ -z "$out" ] || echo "    $out"
}
for seed in $SEEDS; do
  step "seed $seed: $STEPS random operations on kernel overlayfs and on stratafs"
  K=$WORK/k$seed S=$WORK/s$seed
  mkdir -p "$K" "$S" "$WORK/uk$seed" "$WORK/wk$seed" "$WORK/us$seed" "$WORK/ws$seed"
  mount -t overlay overlay -o "lowerdir=$L1:$L2,upperdir=$WORK/uk$seed,workdir=$WORK/wk$seed,$KOPTS" "$K"
  "$STRATAFS" -o "lowerdir=$L1:$L2,upperdir=$WORK/us$seed,workdir=$WORK/ws$seed" "$S" ||
    fail "stratafs did not mount"
  run_diff "seed $seed" --lower-inos "$L1:$L2" "$seed" "$STEPS" "$K" "$S" || true
  # A new daemon over the upper the first one left: the same tree, and the same outcomes on.
  umount "$S"
  "$STRATAFS" -o "lowerdir=$L1:$L2,upperdir=$WORK/us$seed,workdir=$WORK/ws$seed" "$S" ||
    fail "stratafs did not mount again"
  { run_diff "seed $seed, after a remount" --lower-inos "$L1:$L2" --compare "$K" "$S" &&
    run_diff "seed $seed, after a remount" --lower-inos "$L1:$L2" "$((seed + 1000))" "$STEPS" "$K" "$S"; } || true
  umount "$S"
  # The upper stratafs wrote, as kernel overlayfs' upper over the same layers (read-only): the
  # same tree, the same inode numbers (overlayfs follows the origins stratafs recorded).
  R=$WORK/r$seed
  mkdir -p "$R"
  mount -t overlay overlay -o "ro,lowerdir=$L1:$L2,upperdir=$WORK/us$seed,workdir=$WORK/ws$seed,$KREAD_OPTS" "$R"
  run_diff "seed $seed, kernel overlayfs reading stratafs' upper" --lower-inos "$L1:$L2" --compare "$K" "$R" || true
  umount "$R"
  # And the other way round: the upper kernel overlayfs wrote, read by stratafs as the top layer.
  B=$WORK/b$seed
  mkdir -p "$B"
  "$STRATAFS" -o "lowerdir=$WORK/uk$seed:$L1:$L2" "$B" || fail "stratafs did not mount kernel overlayfs' upper"
  run_diff "seed $seed, stratafs reading kernel overlayfs' upper" --compare "$K" "$B" || true
  umount "$B"
  # ... and taking it as its own upper (a copy: kernel overlayfs has that one), with the kernel's
  # origins and its relative redirects of directories renamed in place.
  C=$WORK/c$seed
  cp -a "$WORK/uk$seed" "$WORK/ukc$seed"
  mkdir -p "$C" "$WORK/wkc$seed"
  "$STRATAFS" -o "lowerdir=$L1:$L2,upperdir=$WORK/ukc$seed,workdir=$WORK/wkc$seed" "$C" ||
    fail "stratafs did not mount over kernel overlayfs' upper"
  run_diff "seed $seed, stratafs over kernel overlayfs' upper" --lower-inos "$L1:$L2" --compare "$K" "$C" || true
  umount "$C"
  umount "$K"
done
step "the same layers as an image in the store"
O1=$WORK/o1
cp -a "$L1" "$O1"
rm "$O1/a/c"
: >"$O1/a/.wh.c"
setfattr -x trusted.overlay.opaque "$O1/b"
: >"$O1/b/.wh..wh..opq"
# The store keeps a lower file's names one inode (they are copied up together), where kernel
# overlayfs without index=on parts them at the first copy-up: in the image and in the kernel's
# reference layers for it, the pair whose names both show is two files.
O2=$WORK/o2
cp -a "$L2" "$O2"
rm "$O2/deep/y.txt"
cp "$O2/a/sub/y.txt" "$O2/deep/y.txt"
find "$O1" "$O2" -exec touch -h -d @900000000 {} +  # as their kernel overlayfs counterparts
mkimage --format docker-archive -o "$WORK/img.tar" --tag random:1 --layer "$O2" --layer "$O1" >/dev/null
expect_rc 0 load -q -i "$WORK/img.tar"

for seed in $SEEDS; do
  step "seed $seed: $STEPS random operations on kernel overlayfs and on a strata container"
  K=$WORK/ck$seed S=$WORK/cs$seed
  mkdir -p "$K" "$S" "$WORK/cuk$seed" "$WORK/cwk$seed"
  mount -t overlay overlay -o "lowerdir=$L1:$O2,upperdir=$WORK/cuk$seed,workdir=$WORK/cwk$seed,$KOPTS" "$K"
  expect_rc 0 create --name "random$seed" random:1
  expect_rc 0 mount --container "random$seed" "$S"
  # Link groups, not counts: x.txt's other name is hidden by the opaque directory, which the
  # store's view does not count and kernel overlayfs does.
  run_diff "container, seed $seed" --link-groups "$seed" "$STEPS" "$K" "$S" || true
  expect_rc 0 umount "$S"
  expect_rc 0 mount --container "random$seed" "$S"
  { run_diff "container, seed $seed, after a remount" --link-groups --compare "$K" "$S" &&
    run_diff "container, seed $seed, after a remount" --link-groups "$((seed + 1000))" "$STEPS" "$K" "$S"; } || true
  expect_rc 0 umount "$S"
  # (No kernel overlayfs over the container's upper: its metadata-only copies name their data by
  # store object, which only strata can find.) Committed, the container is an image with the
  # same tree, and exported, a tar of it (times to the second in both, as Docker's layers).
  expect_rc 0 commit "random$seed" "committed:$seed"
  expect_rc 0 mount "committed:$seed" "$S"
  run_diff "container, seed $seed, committed" --link-groups --whole-seconds --compare "$K" "$S" || true
  expect_rc 0 umount "$S"
  X=$WORK/x$seed
  mkdir -p "$X"
  expect_rc 0 export "random$seed" -o "$WORK/x$seed.tar"
  tar -xpf "$WORK/x$seed.tar" -C "$X" --numeric-owner --xattrs --xattrs-include='*'
  mount --bind "$X" "$X"  # union_diff.py compares mount points
  run_diff "container, seed $seed, exported" --link-groups --whole-seconds --compare "$K" "$X" || true
  umount "$X"
  umount "$K"
done
[ ${#FAILED[@]} -eq 0 ] || fail "differences from kernel overlayfs: ${FAILED[*]}"
pass
