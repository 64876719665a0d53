#!/usr/bin/env bash
# strata load --keep-blobs: gzip and zstd layer blobs are kept byte for byte under blobs/sha256/
# (read-only, recorded with their layer, counted by fsck, removed with the layer); uncompressed
# layers and layers already in the store are not kept; without the flag nothing is kept.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "layer sources and archives"
umask 022
l1="$WORK/l1" l2="$WORK/l2"
mkdir -p "$l1/etc" "$l2/opt"
echo "base" >"$l1/etc/os-release"
seq 1 30000 >"$l1/etc/numbers"
head -c 100000 /dev/urandom >"$l2/opt/random.bin"
find "$l1" "$l2" -exec touch -h -d @1700000000 {} +
GZ_ID=$(mkimage --format oci-archive --compression gzip -o "$WORK/gz.tar" --tag kb:gz --summary "$WORK/gz.json" \
  --layer "$l1" --layer "$l2")
mkimage --format oci-archive --compression zstd -o "$WORK/zst.tar" --tag kb:zst --summary "$WORK/zst.json" \
  --layer "$l1" --layer "$l2" >/dev/null
mkimage --format docker-archive --docker-compressed-layers -o "$WORK/dgz.tar" --tag kb:dgz --summary "$WORK/dgz.json" \
  --layer "$l1" --layer "$l2" >/dev/null
mkimage --format docker-archive -o "$WORK/plain.tar" --tag kb:plain --summary "$WORK/plain.json" \
  --layer "$l1" --layer "$l2" >/dev/null

# blob_files: the blobs/sha256 file names (hex), sorted, one per line.
blob_files() { find "$STRATA_ROOT/blobs/sha256" -type f -printf '%f\n' | sort; }
# layer_blobs SUMMARY: hex digests of the layer blobs the archive holds, sorted.
layer_blobs() { json_eval '"\n".join(sorted(l["digest"].split(":")[1] for l in j["layers"]))' <"$1"; }
config_of() { json_eval 'j["image_id"].split(":")[1]' <"$1"; }

# check_kept SUMMARY ARCHIVE: every layer blob of ARCHIVE is in the store, byte for byte, 0444.
check_kept() {
  local summary=$1 archive=$2 hex
  for hex in $(layer_blobs "$summary"); do
    local f="$STRATA_ROOT/blobs/sha256/$hex"
    [ -f "$f" ] || fail "layer blob $hex of $(basename "$archive") was not kept"
    assert_eq "$hex" "$(sha256_of "$f")" "content of kept blob $hex"
    assert_eq "444" "$(stat -c %a "$f")" "mode of kept blob $hex"
  done
}

step "without --keep-blobs nothing but the config is kept"
new_root
expect_rc 0 load -q -i "$WORK/gz.tar"
assert_eq "$(config_of "$WORK/gz.json")" "$(blob_files)" "blobs/ after a plain load"

step "--keep-blobs keeps gzip layers of an OCI archive"
new_root
expect_rc 0 load -q --keep-blobs -i "$WORK/gz.tar"
assert_eq "Loaded image: kb:gz" "$OUT" "load --keep-blobs output"
check_kept "$WORK/gz.json" "$WORK/gz.tar"
assert_eq "$( (config_of "$WORK/gz.json"; layer_blobs "$WORK/gz.json") | sort)" "$(blob_files)" "blobs/ with kept layers"
expect_rc 0 fsck -n
assert_match "$OUT" ': consistent$' "fsck -n with kept blobs"
expect_rc 0 images -q --no-trunc
assert_eq "$GZ_ID" "$OUT" "image ID with kept blobs"
expect_rc 0 save -o "$WORK/resaved.tar" kb:gz

step "loading the same layers again keeps nothing new (not read again)"
expect_rc 0 load -q --keep-blobs -i "$WORK/zst.tar"
assert_eq "$( (config_of "$WORK/gz.json"; config_of "$WORK/zst.json"; layer_blobs "$WORK/gz.json") | sort -u)" \
  "$(blob_files)" "blobs/ after loading known layers with --keep-blobs"

step "the kept blobs go with their layers"
expect_rc 0 rmi kb:gz kb:zst
assert_eq "" "$(blob_files)" "blobs/ after rmi"
expect_rc 0 fsck -n
assert_match "$OUT" '^0 images, 0 layers, 0 objects, 0 blobs: consistent$' "fsck -n after rmi"

step "--keep-blobs keeps zstd layers, and gzip layers of a docker-archive"
new_root
expect_rc 0 load -q --keep-blobs -i "$WORK/zst.tar"
check_kept "$WORK/zst.json" "$WORK/zst.tar"
new_root
expect_rc 0 load -q --keep-blobs -i "$WORK/dgz.tar"
check_kept "$WORK/dgz.json" "$WORK/dgz.tar"
expect_rc 0 fsck -n
assert_match "$OUT" ': consistent$' "fsck -n after a docker-archive with kept blobs"

step "uncompressed layers are never kept (the store regenerates them exactly)"
new_root
expect_rc 0 load -q --keep-blobs -i "$WORK/plain.tar"
assert_eq "$(config_of "$WORK/plain.json")" "$(blob_files)" "blobs/ after --keep-blobs on uncompressed layers"
assert_file_count "$STRATA_ROOT/tmp" 0 "tmp/ after the loads"

pass
