#!/usr/bin/env bash
# Crash safety and fsck: a load killed with SIGKILL at any moment leaves a store that fsck
# brings back to consistent, holding either nothing or the complete image; a load that fills the
# disk fails clearly and leaves nothing; fsck reports and repairs leftovers, and reports damage
# it cannot repair.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIG_MB=${STRATA_CRASH_MB:-200}

step "build a ${BIG_MB} MB single-layer image"
mkdir -p "$WORK/big/data"
for i in $(seq 1 $((BIG_MB / 10))); do
  head -c $((10 * 1024 * 1024)) /dev/urandom >"$WORK/big/data/f$i.bin"
done
# Many small files too, so a kill can land between entries as well as inside a big file.
mkdir -p "$WORK/big/small"
for i in $(seq 1 300); do echo "small $i" >"$WORK/big/small/s$i.txt"; done
BIG_ID=$(mkimage --format docker-archive -o "$WORK/big.tar" --tag big:1 --summary "$WORK/big.json" --layer "$WORK/big")
BIG_DIFF=$(json_eval 'j["layers"][0]["diff_id"]' <"$WORK/big.json")
rm -rf "$WORK/big"

# check_after_crash WHAT: fsck repairs, then the store is consistent and holds nothing or all.
check_after_crash() {
  local what=$1
  expect_rc 0 fsck
  assert_match "$(printf '%s\n' "$OUT" | tail -n 1)" '^[0-9]+ images, [0-9]+ layers, [0-9]+ objects, [0-9]+ blobs: (consistent|repaired)$' \
    "fsck after $what"
  assert_not_contains "$OUT" "damaged:" "fsck after $what"
  expect_rc 0 fsck -n
  assert_match "$OUT" '^[0-9]+ images, [0-9]+ layers, [0-9]+ objects, [0-9]+ blobs: consistent$' "fsck -n after fsck after $what"
  assert_eq "" "$(find "$STRATA_ROOT/tmp" -mindepth 1)" "tmp/ after fsck after $what"
  expect_rc 0 images -q --no-trunc
  if [ -z "$OUT" ]; then
    # Nothing committed as an image: nothing of it may remain.
    assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$(strata_ok fsck -n)" "empty store after $what"
    assert_file_count "$STRATA_ROOT/objects" 0 "objects after $what"
    assert_file_count "$STRATA_ROOT/layers" 0 "layers after $what"
    assert_file_count "$STRATA_ROOT/blobs" 0 "blobs after $what"
    CRASH_RESULT=empty
  else
    assert_eq "$BIG_ID" "$OUT" "the only image after $what"
    expect_rc 0 inspect -f '{{json .RepoTags}} {{index .RootFS.Layers 0}}' "$BIG_ID"
    assert_eq "[\"big:1\"] $BIG_DIFF" "$OUT" "the image after $what"
    expect_rc 0 fsck -n --verify-content
    assert_match "$OUT" ': consistent$' "fsck --verify-content after $what"
    CRASH_RESULT=complete
  fi
}

# Kill moments: while the new store is being created (0.01 s), early and mid import, and at 90%
# of the time a whole load took ("late": measured by the loads after the earlier crashes).
delays="0.01 0.05 0.2 0.5 late"
LOAD_MS=0
results=""
for delay in $delays; do
  if [ "$delay" = late ]; then
    delay=$(awk -v ms="$LOAD_MS" 'BEGIN { printf "%.3f", ms * 0.9 / 1000 }')
  fi
  step "kill -9 a load after ${delay}s"
  new_root
  "$STRATA_BIN" load -q -i "$WORK/big.tar" >"$WORK/bg.out" 2>"$WORK/bg.err" &
  pid=$!
  track_pid "$pid"
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  case $rc in
    137) how=killed ;;
    0) how=finished ;;
    *) fail "the load to be killed exited $rc: $(cat "$WORK/bg.err")" ;;
  esac
  check_after_crash "a load $how after ${delay}s"
  [ "$how" = finished ] && [ "$CRASH_RESULT" != complete ] && fail "a finished load left no image"
  results="$results ${delay}s:$how/$CRASH_RESULT"
  step "load again after the ${delay}s crash"
  t0=${EPOCHREALTIME/[.,]/}
  expect_rc 0 load -q -i "$WORK/big.tar"
  ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
  [ "$ms" -gt "$LOAD_MS" ] && LOAD_MS=$ms
  assert_eq "Loaded image: big:1" "$OUT" "load after the crash"
  expect_rc 0 images -q --no-trunc
  assert_eq "$BIG_ID" "$OUT" "images after loading again"
  expect_rc 0 fsck -n
  assert_match "$OUT" "^1 images, 1 layers, $((BIG_MB / 10 + 300)) objects, 1 blobs: consistent$" "fsck -n after loading again"
  rm -rf "$STRATA_ROOT"
done
echo "    kill results:$results"

step "a load that fills the disk: a clear error, and nothing of it left"
# A file system of half the image's size (ext4 on a loop device), the store on it.
need_cmd mkfs.ext4
FULL_MB=$((BIG_MB / 2 + 8))
truncate -s "${FULL_MB}M" "$WORK/full.img"
mkfs.ext4 -q -F "$WORK/full.img"
mkdir "$WORK/full"
track_mount "$WORK/full"
mount -o loop "$WORK/full.img" "$WORK/full" || fail "cannot mount a loop file system (needs root and /dev/loop-control)"
STRATA_ROOT=$WORK/full/root
expect_rc 1 load -q -i "$WORK/big.tar"
assert_contains "$ERR" "No space left on device" "load onto a full disk"
assert_contains "$ERR" "big.tar" "load onto a full disk names the archive"
assert_match "$ERR" '(object for|entry) "[^"]+"|tar-split|syncfs' "load onto a full disk names what it was writing"
expect_rc 0 fsck -n
assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$OUT" "fsck -n after the full disk"
assert_file_count "$STRATA_ROOT/objects" 0 "objects after the full disk"
assert_eq "" "$(find "$STRATA_ROOT/tmp" -mindepth 1)" "tmp/ after the full disk"
# The space came back: a smaller image loads into the same store.
mkdir -p "$WORK/fits"
echo "fits on the disk" >"$WORK/fits/file.txt"
mkimage --format docker-archive -o "$WORK/fits.tar" --tag fits:1 --layer "$WORK/fits" >/dev/null
expect_rc 0 load -q -i "$WORK/fits.tar"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 1 objects, 1 blobs: consistent" "$OUT" "fsck -n after loading what fits"
umount "$WORK/full"

step "stray files: fsck -n reports, fsck repairs"
new_root
mkdir -p "$WORK/small"
echo "a small file" >"$WORK/small/file.txt"
echo "another file" >"$WORK/small/other.txt"
SMALL_ID=$(mkimage --format docker-archive -o "$WORK/small.tar" --tag small:1 --layer "$WORK/small")
expect_rc 0 load -q -i "$WORK/small.tar"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: consistent" "$OUT" "fsck -n of a fresh store"
echo "half-written" >"$STRATA_ROOT/tmp/import-12345.partial"
stray=$(printf 'stray object' | sha256sum | cut -d' ' -f1)
printf 'stray object' >"$STRATA_ROOT/objects/${stray:0:2}/${stray:2}"
echo junk >"$STRATA_ROOT/objects/ab/not-a-digest"
expect_rc 0 fsck -n
assert_eq "$(printf '%s\n' \
  "repairable: unreferenced file objects/ab/not-a-digest: would be removed" \
  "repairable: unreferenced file objects/${stray:0:2}/${stray:2}: would be removed" \
  "repairable: leftover temporary file tmp/import-12345.partial: would be removed" | sort)" \
  "$(printf '%s\n' "$OUT" | grep '^repairable: ' | sort)" "fsck -n repairable lines"
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: repairable" "$(printf '%s\n' "$OUT" | tail -n 1)" "fsck -n summary"
# -n changed nothing.
[ -f "$STRATA_ROOT/tmp/import-12345.partial" ] || fail "fsck -n removed the tmp file"
[ -f "$STRATA_ROOT/objects/${stray:0:2}/${stray:2}" ] || fail "fsck -n removed the stray object"
expect_rc 0 fsck
assert_eq 3 "$(printf '%s\n' "$OUT" | grep -c '^repaired: ')" "fsck repaired lines"
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: repaired" "$(printf '%s\n' "$OUT" | tail -n 1)" "fsck summary"
[ ! -e "$STRATA_ROOT/tmp/import-12345.partial" ] || fail "fsck left the tmp file"
[ ! -e "$STRATA_ROOT/objects/${stray:0:2}/${stray:2}" ] || fail "fsck left the stray object"
[ ! -e "$STRATA_ROOT/objects/ab/not-a-digest" ] || fail "fsck left objects/ab/not-a-digest"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: consistent" "$OUT" "fsck -n after repair"
expect_rc 0 save -o "$WORK/small-saved.tar" small:1

step "a missing referenced object is damage fsck names"
obj=$(sha256_of "$WORK/small/file.txt")
obj_path="$STRATA_ROOT/objects/${obj:0:2}/${obj:2}"
[ -f "$obj_path" ] || fail "object of file.txt not at $obj_path"
rm -f "$obj_path"
expect_rc 1 fsck -n
assert_contains "$OUT" "damaged: object sha256:$obj is missing" "fsck -n of a missing object"
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: DAMAGED" "$(printf '%s\n' "$OUT" | tail -n 1)" "fsck -n summary"
expect_rc 1 fsck
assert_contains "$OUT" "damaged: object sha256:$obj is missing" "fsck of a missing object"
assert_contains "$ERR" "Error: the store has damage fsck cannot repair" "fsck stderr"
# Saving the image fails rather than writing a bad archive.
expect_rc 1 save -o "$WORK/broken.tar" small:1
assert_contains "$ERR" "$obj" "save with a missing object"
[ ! -e "$WORK/broken.tar" ] || fail "a failed save left an archive"
# The documented way out: remove the image, load it again.
expect_rc 0 rmi -f small:1
expect_rc 0 fsck
expect_rc 0 fsck -n
assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$OUT" "fsck after removing the damaged image"
expect_rc 0 load -q -i "$WORK/small.tar"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: consistent" "$OUT" "fsck after loading again"

step "fsck --verify-content catches a modified object"
obj_path="$STRATA_ROOT/objects/${obj:0:2}/${obj:2}"
chmod u+w "$obj_path"
# Same size, different bytes: only re-hashing notices.
printf 'A small file' | dd of="$obj_path" conv=notrunc status=none
chmod u-w "$obj_path"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: consistent" "$OUT" "fsck -n without --verify-content"
expect_rc 1 fsck -n --verify-content
assert_contains "$OUT" "damaged: object sha256:$obj is damaged (used by layer sha256:" "fsck --verify-content"
assert_eq "1 images, 1 layers, 2 objects, 1 blobs: DAMAGED" "$(printf '%s\n' "$OUT" | tail -n 1)" "fsck --verify-content summary"
expect_rc 1 save -o "$WORK/broken.tar" small:1
assert_contains "$ERR" "damaged" "save of a modified object"
# A truncated object is caught without --verify-content.
chmod u+w "$obj_path"
: >"$obj_path"
expect_rc 1 fsck -n
assert_contains "$OUT" "damaged: object sha256:$obj is damaged" "fsck -n of a truncated object"

step "the image ID survives (sanity)"
expect_rc 0 images -q --no-trunc
assert_eq "$SMALL_ID" "$OUT" "image ID"

pass
