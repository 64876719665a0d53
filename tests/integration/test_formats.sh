#!/usr/bin/env bash
# Every archive layout and layer encoding strata reads: gzip and zstd OCI layers, gzip layers in a
# docker-archive, Docker 25's docker-oci-archive, an OCI layout directory, and whole archives
# compressed with gzip or zstd. Each must load to the same image ID and diff_ids as mkimage
# computed, and save back the uncompressed layer tars byte for byte.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd zstd gzip

step "layer sources"
umask 022
l1="$WORK/l1" l2="$WORK/l2"
mkdir -p "$l1/etc" "$l1/opt/app" "$l2/opt/app"
echo "base" >"$l1/etc/os-release"
head -c 200000 /dev/urandom >"$l1/opt/app/random.bin"
seq 1 20000 >"$l1/opt/app/numbers.txt"   # compressible
ln -s numbers.txt "$l1/opt/app/numbers.link"
echo "v2" >"$l2/opt/app/version"
find "$l1" "$l2" -exec touch -h -d @1700000000 {} +

# check_load ARCHIVE_OR_DIR ID SUMMARY [TAG]: loads into a fresh root and checks the result.
check_load() {
  local input=$1 want_id=$2 summary=$3 tag=${4:-fmt:test}
  local want_layers
  want_layers=$(json_eval 'json.dumps([l["diff_id"] for l in j["layers"]], separators=(",", ":"))' <"$summary")
  new_root
  expect_rc 0 load -i "$input"
  assert_eq "Loaded image: $tag" "$OUT" "load of $(basename "$input")"
  expect_rc 0 images -q --no-trunc
  assert_eq "$want_id" "$OUT" "image ID of $(basename "$input")"
  expect_rc 0 inspect -f '{{json .RootFS.Layers}}' "$tag"
  assert_eq "$want_layers" "$OUT" "diff_ids of $(basename "$input")"
  # Saved back: uncompressed layer tars whose sha256 is the diff_id.
  expect_rc 0 save -o "$WORK/resaved.tar" "$tag"
  local got
  got=$("$PYTHON" - "$WORK/resaved.tar" <<'EOF'
import hashlib, json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = json.load(t.extractfile("manifest.json"))
    print(json.dumps(["sha256:" + hashlib.sha256(t.extractfile(l).read()).hexdigest() for l in m[0]["Layers"]],
                     separators=(",", ":")))
EOF
)
  assert_eq "$want_layers" "$got" "sha256 of the saved layer tars of $(basename "$input")"
  assert_file_count "$STRATA_ROOT/tmp" 0 "tmp/ after loading $(basename "$input")"
}

# The uncompressed diff_ids are the same whatever the encoding, and so is the config: one image ID.
step "reference image: docker-archive, uncompressed layers"
REF_ID=$(mkimage --format docker-archive -o "$WORK/plain.tar" --tag fmt:test --summary "$WORK/plain.json" \
  --layer "$l1" --layer "$l2")
check_load "$WORK/plain.tar" "$REF_ID" "$WORK/plain.json"
assert_eq "none" "$(json_eval 'j["compression"]' <"$WORK/plain.json")" "reference compression"

step "docker-archive with gzip layer.tar (--docker-compressed-layers)"
id=$(mkimage --format docker-archive --docker-compressed-layers -o "$WORK/dgz.tar" --tag fmt:test \
  --summary "$WORK/dgz.json" --layer "$l1" --layer "$l2")
assert_eq "$REF_ID" "$id" "image ID of the gzip docker-archive"
# The layer members really are gzip.
"$PYTHON" - "$WORK/dgz.tar" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for l in json.load(t.extractfile("manifest.json"))[0]["Layers"]:
        if t.extractfile(l).read(2) != b"\x1f\x8b":
            sys.exit("%s is not gzip" % l)
EOF
check_load "$WORK/dgz.tar" "$REF_ID" "$WORK/dgz.json"

for comp in gzip zstd none; do
  step "oci-archive, $comp layers"
  id=$(mkimage --format oci-archive --compression "$comp" -o "$WORK/oci-$comp.tar" --tag fmt:test \
    --summary "$WORK/oci-$comp.json" --layer "$l1" --layer "$l2")
  assert_eq "$REF_ID" "$id" "image ID of the $comp oci-archive"
  case $comp in
    gzip) want_media="application/vnd.oci.image.layer.v1.tar+gzip" ;;
    zstd) want_media="application/vnd.oci.image.layer.v1.tar+zstd" ;;
    none) want_media="application/vnd.oci.image.layer.v1.tar" ;;
  esac
  assert_eq "$want_media $want_media" \
    "$(json_eval '" ".join(l["mediaType"] for l in j["layers"])' <"$WORK/oci-$comp.json")" "layer media types"
  check_load "$WORK/oci-$comp.tar" "$REF_ID" "$WORK/oci-$comp.json"
done

step "docker-oci-archive (docker save of Docker 25+)"
id=$(mkimage --format docker-oci-archive -o "$WORK/docker25.tar" --tag fmt:test --summary "$WORK/docker25.json" \
  --layer "$l1" --layer "$l2")
assert_eq "$REF_ID" "$id" "image ID of the docker-oci-archive"
# Both indexes are present; strata takes manifest.json's view.
"$PYTHON" - "$WORK/docker25.tar" <<'EOF'
import sys, tarfile
names = set(tarfile.open(sys.argv[1]).getnames())
for want in ("manifest.json", "index.json", "oci-layout"):
    if want not in names:
        sys.exit("docker-oci-archive lacks " + want)
EOF
check_load "$WORK/docker25.tar" "$REF_ID" "$WORK/docker25.json"
id=$(mkimage --format docker-oci-archive --compression zstd -o "$WORK/docker25-zstd.tar" --tag fmt:test \
  --summary "$WORK/docker25-zstd.json" --layer "$l1" --layer "$l2")
check_load "$WORK/docker25-zstd.tar" "$REF_ID" "$WORK/docker25-zstd.json"

step "OCI layout directory: load -i DIR"
id=$(mkimage --format oci-dir -o "$WORK/ocidir" --tag fmt:test --summary "$WORK/ocidir.json" \
  --layer "$l1" --layer "$l2")
assert_eq "$REF_ID" "$id" "image ID of the OCI dir"
check_load "$WORK/ocidir" "$REF_ID" "$WORK/ocidir.json"
# The directory is only read.
[ -f "$WORK/ocidir/index.json" ] || fail "load -i DIR changed the directory"

step "whole archive compressed: gzip -c x.tar > x.tar.gz; zstd"
gzip -c "$WORK/plain.tar" >"$WORK/plain.tar.gz"
check_load "$WORK/plain.tar.gz" "$REF_ID" "$WORK/plain.json"
gzip -c "$WORK/oci-gzip.tar" >"$WORK/oci-gzip.tar.gz"
check_load "$WORK/oci-gzip.tar.gz" "$REF_ID" "$WORK/oci-gzip.json"
zstd -q -c "$WORK/docker25.tar" >"$WORK/docker25.tar.zst"
check_load "$WORK/docker25.tar.zst" "$REF_ID" "$WORK/docker25.json"
# A compressed archive through stdin.
new_root
expect_rc 0 load <"$WORK/plain.tar.gz"
assert_contains "$OUT" "Loaded image: fmt:test" "load of a gzipped archive from stdin"
expect_rc 0 images -q --no-trunc
assert_eq "$REF_ID" "$OUT" "image ID of a gzipped archive from stdin"

step "several tags of one image in one archive; the same layers loaded twice are read once"
id=$(mkimage --format oci-archive -o "$WORK/multi.tar" --tag fmt:one --tag other/name:two --summary "$WORK/multi.json" \
  --layer "$l1" --layer "$l2")
assert_eq "$REF_ID" "$id" "image ID of the multi-tag archive"
new_root
expect_rc 0 load -i "$WORK/multi.tar"
assert_eq "$(printf 'Loaded image: fmt:one\nLoaded image: other/name:two')" "$OUT" "multi-tag load output"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}}'
assert_eq "$(printf 'fmt:one\nother/name:two')" "$(printf '%s\n' "$OUT" | sort)" "multi-tag images"
expect_rc 0 load -i "$WORK/oci-zstd.tar"
assert_eq "Loaded image: fmt:test" "$OUT" "second load of the same layers"
expect_rc 0 images -q --no-trunc
assert_eq "$REF_ID" "$OUT" "one image after loading it in two encodings"

step "not an image archive"
printf 'just some text\n' >"$WORK/junk.txt"
expect_rc 1 load -i "$WORK/junk.txt"
assert_contains "$ERR" "$WORK/junk.txt" "load of junk: stderr"
mkdir "$WORK/emptydir"
expect_rc 1 load -i "$WORK/emptydir"
assert_contains "$ERR" "neither a docker-archive" "load of an empty dir: stderr"
expect_rc 1 load -i "$WORK/does-not-exist.tar"
assert_contains "$ERR" "does-not-exist.tar" "load of a missing file: stderr"

pass
