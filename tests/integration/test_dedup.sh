#!/usr/bin/env bash
# Deduplication: two images that share all but one file content, in different layers, store each
# content once; removing one image keeps what the other needs; removing both frees everything.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "two single-layer images sharing 200 of 201 file contents"
umask 022
a="$WORK/a" b="$WORK/b"
mkdir -p "$a/data/small"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$a/data/big.bin"
# 200 distinct small files of 4000 bytes (each its own object; none empty, none equal).
"$PYTHON" - "$a/data/small" <<'EOF'
import hashlib, os, sys
for i in range(200):
    seed = hashlib.sha256(b"small-%d" % i).digest()
    with open(os.path.join(sys.argv[1], "f%03d.txt" % i), "wb") as f:
        f.write(((seed.hex().encode() + b"\n") * 62)[:4000])
EOF
cp -a "$a" "$b"
# The second image: one file changed, and the rest moved to another path (a different layer tar).
mv "$b/data" "$b/srv"
echo "changed in image b" >"$b/srv/small/f007.txt"
find "$a" "$b" -exec touch -h -d @1700000000 {} +
ID_A=$(mkimage --format docker-archive -o "$WORK/a.tar" --tag dedup/a:1 --summary "$WORK/a.json" --layer "$a")
ID_B=$(mkimage --format docker-archive -o "$WORK/b.tar" --tag dedup/b:1 --summary "$WORK/b.json" --layer "$b")
DIFF_A=$(json_eval 'j["layers"][0]["diff_id"]' <"$WORK/a.json")
DIFF_B=$(json_eval 'j["layers"][0]["diff_id"]' <"$WORK/b.json")
[ "$DIFF_A" != "$DIFF_B" ] || fail "the two images share their layer; the test needs distinct layers"

step "load both"
expect_rc 0 load -i "$WORK/a.tar"
assert_eq "Loaded image: dedup/a:1" "$OUT" "load a"
SIZE_A=$(strata_ok system df --format json | json_eval 'str(j["LogicalSize"])')
expect_rc 0 load -i "$WORK/b.tar"
assert_eq "Loaded image: dedup/b:1" "$OUT" "load b"
expect_rc 0 images -q --no-trunc
assert_eq "$(printf '%s\n' "$ID_A" "$ID_B" | sort)" "$(printf '%s\n' "$OUT" | sort)" "image IDs"

step "each content is stored once"
# 201 contents of a, plus b's changed f007.txt.
assert_file_count "$STRATA_ROOT/objects" 202 "files under objects/"
# Every object file is named by the sha256 of its content.
bad=$(cd "$STRATA_ROOT/objects" && find . -type f -exec sha256sum {} + |
  awk '{ name = $2; gsub(/[.\/]/, "", name); if (name != $1) print $2 }')
assert_eq "" "$bad" "objects whose name is not their sha256"
big_sum=$(sha256_of "$a/data/big.bin")
[ -f "$STRATA_ROOT/objects/${big_sum:0:2}/${big_sum:2}" ] || fail "the 5 MB file is not stored as its own object"

step "system df: disk use is about one image, not two"
expect_rc 0 system df --format json
DF=$OUT
images=$(json_eval 'j["Images"]' <<<"$DF")
objects=$(json_eval 'j["Objects"]' <<<"$DF")
layers=$(json_eval 'j["Layers"]' <<<"$DF")
logical=$(json_eval 'j["LogicalSize"]' <<<"$DF")
disk=$(json_eval 'j["DiskSize"]' <<<"$DF")
saved=$(json_eval 'j["DedupSaved"]' <<<"$DF")
assert_eq "2 202 2" "$images $objects $layers" "df Images/Objects/Layers"
# Each image's size is the content of its files.
want_size=$((5 * 1024 * 1024 + 200 * 4000))
assert_eq "$want_size" "$SIZE_A" "size of image a"
assert_eq "$((2 * want_size - 4000 + 19))" "$logical" "LogicalSize of both"
[ "$disk" -lt $((SIZE_A * 11 / 10)) ] || fail "DiskSize $disk is not below 1.1 x one image ($SIZE_A)"
[ "$disk" -gt "$SIZE_A" ] || fail "DiskSize $disk is implausibly small (one image is $SIZE_A)"
assert_eq "$((logical - disk))" "$saved" "DedupSaved"
# The table form says the same.
expect_rc 0 system df
assert_match "$(printf '%s\n' "$OUT" | sed -n 1p)" '^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$' "df header"
assert_contains "$OUT" "Saved by deduplication:" "system df"

step "saved archives before removal"
expect_rc 0 save -o "$WORK/b-before.tar" dedup/b:1
expect_rc 0 save -o "$WORK/a-before.tar" dedup/a:1

step "rmi of one image keeps the shared objects"
expect_rc 0 rmi dedup/a:1
assert_eq "$(printf 'Untagged: dedup/a:1\nDeleted: %s' "$ID_A")" "$OUT" "rmi a"
expect_rc 0 images -q --no-trunc
assert_eq "$ID_B" "$OUT" "images after rmi a"
# Every content of a but its f007.txt is b's too: exactly one object goes.
assert_file_count "$STRATA_ROOT/objects" 201 "objects after rmi a"
a7=$(sha256_of "$a/data/small/f007.txt")
[ ! -e "$STRATA_ROOT/objects/${a7:0:2}/${a7:2}" ] || fail "a's only private object survived rmi"
[ ! -e "$STRATA_ROOT/layers/${DIFF_A#sha256:}" ] || fail "a's tar-split survived rmi"
expect_rc 0 save -o "$WORK/b-after.tar" dedup/b:1
cmp -s "$WORK/b-before.tar" "$WORK/b-after.tar" || fail "b saves differently after a was removed"
layer_sum=$("$PYTHON" -c 'import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1])
print("sha256:" + hashlib.sha256(t.extractfile(json.load(t.extractfile("manifest.json"))[0]["Layers"][0]).read()).hexdigest())' \
  "$WORK/b-after.tar")
assert_eq "$DIFF_B" "$layer_sum" "b's saved layer"
ROOT=$STRATA_ROOT
new_root
expect_rc 0 load -i "$WORK/b-after.tar"
expect_rc 0 save -o "$WORK/b-reloaded.tar" dedup/b:1
cmp -s "$WORK/b-before.tar" "$WORK/b-reloaded.tar" || fail "b re-loaded elsewhere saves differently"
STRATA_ROOT=$ROOT
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 201 objects, 1 blobs: consistent" "$OUT" "fsck after rmi a"

step "loading a again re-uses b's objects"
expect_rc 0 load -i "$WORK/a-before.tar"
assert_file_count "$STRATA_ROOT/objects" 202 "objects after re-loading a"
expect_rc 0 save -o "$WORK/a-again.tar" dedup/a:1
cmp -s "$WORK/a-before.tar" "$WORK/a-again.tar" || fail "a saves differently after re-loading"

step "rmi of both leaves the store empty"
expect_rc 0 rmi "$ID_A" dedup/b:1
assert_eq "$(printf 'Untagged: dedup/a:1\nDeleted: %s\nUntagged: dedup/b:1\nDeleted: %s' "$ID_A" "$ID_B")" "$OUT" "rmi both"
expect_rc 0 images -q
assert_eq "" "$OUT" "images after rmi both"
assert_file_count "$STRATA_ROOT/objects" 0 "files under objects/ after rmi both"
assert_file_count "$STRATA_ROOT/layers" 0 "files under layers/ after rmi both"
assert_file_count "$STRATA_ROOT/blobs" 0 "files under blobs/ after rmi both"
assert_eq "" "$(find "$STRATA_ROOT/layers" -mindepth 1)" "layers/ after rmi both"
expect_rc 0 system df --format json
assert_eq "0 0 0 0" "$(json_eval '"%d %d %d %d" % (j["Images"], j["Layers"], j["Objects"], j["LogicalSize"])' <<<"$OUT")" \
  "df after rmi both"
expect_rc 0 fsck -n
assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$OUT" "fsck after rmi both"

pass
