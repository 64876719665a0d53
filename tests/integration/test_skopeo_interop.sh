#!/usr/bin/env bash
# Interoperability with skopeo and umoci: strata reads what skopeo writes, skopeo reads what
# strata writes, and umoci unpacks strata's OCI output to the expected root filesystem.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd skopeo umoci
SKOPEO=(skopeo --insecure-policy)

step "build the source image (two layers, a whiteout) with mkimage"
umask 022
l1="$WORK/layer1" l2="$WORK/layer2"
mkdir -p "$l1/etc" "$l1/usr/bin" "$l1/data/sub" "$l2/etc" "$l2/data"
echo "hello from layer 1" >"$l1/etc/motd"
printf '#!/bin/sh\necho tool\n' >"$l1/usr/bin/tool"
chmod 0755 "$l1/usr/bin/tool"
ln -s tool "$l1/usr/bin/tool-link"
head -c 300000 /dev/urandom >"$l1/data/sub/blob.bin"
echo "to be removed" >"$l1/data/removed.txt"
echo "kept" >"$l1/data/kept.txt"
echo "hello from layer 2" >"$l2/etc/motd"            # replaces layer 1's
echo "new in layer 2" >"$l2/data/new.txt"
: >"$l2/data/.wh.removed.txt"                          # deletes layer 1's removed.txt
find "$l1" "$l2" -exec touch -h -d @1700000000 {} +
# What the merged root filesystem must look like.
merged="$WORK/merged"
cp -a "$l1" "$merged"
cp -a "$l2/." "$merged/"
rm -f "$merged/data/.wh.removed.txt" "$merged/data/removed.txt"

IMAGE_ID=$(mkimage --format oci-dir -o "$WORK/src-oci" --tag interop:v1 --root-owned --no-xattrs \
  --cmd '["/usr/bin/tool"]' --summary "$WORK/summary.json" --layer "$l1" --layer "$l2")
assert_match "$IMAGE_ID" '^sha256:[0-9a-f]{64}$' "mkimage image ID"
DIFF_IDS=$(json_eval 'json.dumps([l["diff_id"] for l in j["layers"]], separators=(",", ":"))' <"$WORK/summary.json")
assert_match "$DIFF_IDS" '^\["sha256:[0-9a-f]{64}","sha256:[0-9a-f]{64}"\]$' "diff_ids"

# The OCI dir names the manifest by its tag part ("v1").
for dest in docker-archive oci-archive; do
  step "skopeo copy oci: -> $dest:, strata loads it"
  "${SKOPEO[@]}" copy -q "oci:$WORK/src-oci:v1" "$dest:$WORK/skopeo-$dest.tar:interop:v1" >/dev/null 2>"$WORK/skopeo.err" ||
    fail "skopeo copy to $dest failed: $(cat "$WORK/skopeo.err")"
  new_root
  expect_rc 0 load -i "$WORK/skopeo-$dest.tar"
  assert_eq "Loaded image: interop:v1" "$OUT" "load of skopeo's $dest"
  expect_rc 0 images -q --no-trunc
  assert_eq "$IMAGE_ID" "$OUT" "image ID of skopeo's $dest"
  expect_rc 0 inspect -f '{{json .RootFS.Layers}} {{json .Config.Cmd}} {{json .RepoTags}}' interop:v1
  assert_eq "$DIFF_IDS [\"/usr/bin/tool\"] [\"interop:v1\"]" "$OUT" "inspect of skopeo's $dest"
done
ROOT=$STRATA_ROOT

step "skopeo inspects strata's docker-archive and oci-archive"
expect_rc 0 save -o "$WORK/strata-docker.tar" interop:v1
expect_rc 0 save --format oci-archive -o "$WORK/strata-oci.tar" interop:v1
for spec in "docker-archive:$WORK/strata-docker.tar" "oci-archive:$WORK/strata-oci.tar"; do
  "${SKOPEO[@]}" inspect "$spec" >"$WORK/inspect.json" 2>"$WORK/skopeo.err" ||
    fail "skopeo inspect $spec failed: $(cat "$WORK/skopeo.err")"
  assert_eq "$DIFF_IDS" "$(json_eval 'json.dumps(j["Layers"], separators=(",", ":"))' <"$WORK/inspect.json")" \
    "skopeo inspect $spec Layers"
  assert_eq "amd64 linux" "$(json_eval 'j["Architecture"] + " " + j["Os"]' <"$WORK/inspect.json")" \
    "skopeo inspect $spec platform"
  "${SKOPEO[@]}" inspect --config "$spec" >"$WORK/config.json" 2>"$WORK/skopeo.err" ||
    fail "skopeo inspect --config $spec failed: $(cat "$WORK/skopeo.err")"
  assert_eq "$DIFF_IDS" \
    "$(json_eval 'json.dumps(j["rootfs"]["diff_ids"], separators=(",", ":"))' <"$WORK/config.json")" \
    "config diff_ids seen by skopeo in $spec"
done
# The docker-archive names the tag it was saved by.
assert_contains "$("${SKOPEO[@]}" inspect "docker-archive:$WORK/strata-docker.tar" 2>/dev/null)" '"RepoTags"' \
  "skopeo inspect docker-archive"

step "skopeo copy strata's oci-archive -> oci: dir, umoci unpack"
"${SKOPEO[@]}" copy -q "oci-archive:$WORK/strata-oci.tar" "oci:$WORK/copy-oci:unpackme" >/dev/null 2>"$WORK/skopeo.err" ||
  fail "skopeo copy from strata's oci-archive failed: $(cat "$WORK/skopeo.err")"
# skopeo verified every blob digest on the way; the config is the same bytes, so the same ID.
CONFIG_DIGEST=$("${SKOPEO[@]}" inspect --raw "oci:$WORK/copy-oci:unpackme" | json_eval 'j["config"]["digest"]')
assert_eq "$IMAGE_ID" "$CONFIG_DIGEST" "config digest after skopeo copy"
umoci unpack --image "$WORK/copy-oci:unpackme" "$WORK/bundle" >"$WORK/umoci.log" 2>&1 ||
  fail "umoci unpack failed: $(cat "$WORK/umoci.log")"
[ -d "$WORK/bundle/rootfs" ] || fail "umoci made no rootfs"
diff -r --no-dereference "$merged" "$WORK/bundle/rootfs" >"$WORK/diff.txt" 2>&1 ||
  fail "unpacked rootfs differs from the merged layers: $(cat "$WORK/diff.txt")"
[ ! -e "$WORK/bundle/rootfs/data/removed.txt" ] || fail "the whiteout did not remove data/removed.txt"
assert_eq "hello from layer 2" "$(cat "$WORK/bundle/rootfs/etc/motd")" "etc/motd after unpack"
assert_eq "tool" "$(readlink "$WORK/bundle/rootfs/usr/bin/tool-link")" "symlink after unpack"
assert_eq "755" "$(stat -c %a "$WORK/bundle/rootfs/usr/bin/tool")" "mode of usr/bin/tool"

step "strata loads the oci: dir skopeo wrote (load -i DIR)"
new_root
expect_rc 0 load -i "$WORK/copy-oci"
# ref.name "unpackme" names no repository: the image is loaded untagged.
assert_eq "Loaded image ID: $IMAGE_ID" "$OUT" "load of skopeo's oci dir"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
assert_eq "<none>:<none> ${IMAGE_ID:7:12}" "$OUT" "untagged image row"

pass
