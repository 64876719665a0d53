#!/usr/bin/env bash
# strata against a real registry (Debian's docker-registry) over plain HTTP: push/pull round
# trip, interop with skopeo in both directions (equal digests), a Docker v2 schema 2 image,
# --max-concurrent-downloads/-uploads, pull by digest, multi-platform
# index selection, cross-repository mount, re-push that uploads nothing, --keep-blobs keeping
# manifest digests, search over a paginated catalog, manifest inspect.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

manifest_digest() { "${SKOPEO[@]}" inspect --tls-verify=false --format '{{.Digest}}' "docker://$1"; }
digest_of_push() { sed -n 's/^.*: digest: \(sha256:[0-9a-f]\{64\}\) size: [0-9]*$/\1/p' <<<"$1"; }

step "start a plain HTTP registry"
start_registry reg
R=$REG

step "push a two-layer image; skopeo reads it back with the same digest"
base=$(random_layer base 4 300000)
app=$(random_layer app 2 100000)
ID=$(strata_image "$R/app:v1" "$base" "$app")
expect_rc 0 push "$R/app:v1"
assert_match "$OUT" '^v1: digest: sha256:[0-9a-f]{64} size: [0-9]+$' "push output"
PUSHED=$(digest_of_push "$OUT")
assert_contains "$ERR" "The push refers to repository [$R/app]" "push progress"
assert_eq "$PUSHED" "$(manifest_digest "$R/app:v1")" "digest skopeo sees"
"${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R/app:v1" >"$WORK/app-manifest.json"
assert_eq "$ID" "$(json_eval 'j["config"]["digest"]' <"$WORK/app-manifest.json")" "config digest in the manifest"
assert_eq "application/vnd.oci.image.manifest.v1+json" "$(json_eval 'j["mediaType"]' <"$WORK/app-manifest.json")" "manifest type"
# skopeo verifies every blob against the manifest while copying.
skopeo_cp "docker://$R/app:v1" "oci:$WORK/app-oci:v1"
ROOT1=$STRATA_ROOT

step "pull into an empty store: same image, layers and RepoDigest"
new_root
expect_rc 0 pull "$R/app:v1"
assert_eq "$R/app:v1" "$OUT" "pull stdout"
assert_contains "$ERR" "Status: Downloaded newer image for $R/app:v1" "pull status"
assert_contains "$ERR" "Digest: $PUSHED" "pull digest line"
expect_rc 0 images -q --no-trunc
assert_eq "$ID" "$OUT" "pulled image ID"
expect_rc 0 inspect -f '{{json .RepoDigests}}' "$R/app:v1"
assert_eq "[\"$R/app@$PUSHED\"]" "$OUT" "RepoDigests"
expect_rc 0 images --digests --format '{{.Digest}}' "$R/app"
assert_eq "$PUSHED" "$OUT" "images --digests"
# The layers regenerate byte for byte: saving gives the diff_ids the config names.
expect_rc 0 save -o "$WORK/pulled.tar" "$R/app:v1"
expect_rc 0 fsck
ROOT2=$STRATA_ROOT

step "pull again: up to date, nothing downloaded"
expect_rc 0 pull "$R/app:v1"
assert_contains "$ERR" "Status: Image is up to date for $R/app:v1" "second pull"
assert_not_contains "$ERR" "Pull complete" "second pull"

step "push from the pulling store: nothing uploaded, the pulled manifest is kept"
expect_rc 0 push "$R/app:v1"
assert_eq "$PUSHED" "$(digest_of_push "$OUT")" "re-push digest"
assert_not_contains "$ERR" "Pushed" "re-push progress"
assert_contains "$ERR" "Layer already exists" "re-push progress"

step "push again from the building store: same digest, nothing uploaded"
STRATA_ROOT=$ROOT1
expect_rc 0 push "$R/app:v1"
assert_eq "$PUSHED" "$(digest_of_push "$OUT")" "second push digest"
assert_not_contains "$ERR" ": Pushed" "second push progress"

step "cross-repository mount to another repository of the same registry"
expect_rc 0 tag "$R/app:v1" "$R/team/other:v1"
expect_rc 0 push "$R/team/other:v1"
assert_contains "$ERR" "Mounted from app" "mount progress"
assert_not_contains "$ERR" ": Pushed" "mount progress"
assert_eq "$PUSHED" "$(digest_of_push "$OUT")" "digest after mount"
assert_eq "$PUSHED" "$(manifest_digest "$R/team/other:v1")" "digest skopeo sees after mount"

step "skopeo pushes an image; strata pulls it with equal digests"
sk1=$(random_layer sk1 3 200000)
sk2=$(random_layer sk2 1 50000)
SKID=$(mkimage --format oci-dir -o "$WORK/sk-src" --tag sk:v1 --root-owned --no-xattrs --layer "$sk1" --layer "$sk2")
skopeo_cp "oci:$WORK/sk-src:v1" "docker://$R/sk:v1"
SKD=$(manifest_digest "$R/sk:v1")
new_root
expect_rc 0 pull -q "$R/sk:v1"
assert_eq "$R/sk:v1" "$OUT" "pull -q prints only the reference"
assert_eq "" "$ERR" "pull -q stderr"
expect_rc 0 images -q --no-trunc
assert_eq "$SKID" "$OUT" "image ID of skopeo's image"
expect_rc 0 inspect -f '{{json .RepoDigests}}' "$R/sk:v1"
assert_eq "[\"$R/sk@$SKD\"]" "$OUT" "RepoDigests of skopeo's image"
run_strata manifest inspect --raw "$R/sk:v1"
assert_eq 0 "$RC" "manifest inspect --raw"
assert_eq "${SKD#sha256:}" "$(printf '%s' "$OUT" | sha256sum | cut -d' ' -f1)" "raw manifest digest"
expect_rc 0 manifest inspect "$R/sk:v1"
assert_contains "$OUT" '   "schemaVersion": 2' "manifest inspect is indented"

step "Docker v2 schema 2: skopeo pushes one, strata pulls it and pushes it on unchanged"
skopeo_cp --format v2s2 "oci:$WORK/sk-src:v1" "docker://$R/dock:v1"
"${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R/dock:v1" >"$WORK/dock.json"
assert_eq "application/vnd.docker.distribution.manifest.v2+json" "$(json_eval 'j["mediaType"]' <"$WORK/dock.json")" \
  "skopeo pushed a Docker schema 2 manifest"
DOCKD="sha256:$(sha256_of "$WORK/dock.json")"
DOCK_ID=$(json_eval 'j["config"]["digest"]' <"$WORK/dock.json")
new_root
expect_rc 0 pull -q "$R/dock:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$DOCK_ID" "$OUT" "image ID of a Docker schema 2 image"
expect_rc 0 inspect -f '{{json .RepoDigests}}' "$R/dock:v1"
assert_eq "[\"$R/dock@$DOCKD\"]" "$OUT" "RepoDigests of a Docker schema 2 image"
expect_rc 0 tag "$R/dock:v1" "$R/dock2:v1"
expect_rc 0 push "$R/dock2:v1"
assert_eq "$DOCKD" "$(digest_of_push "$OUT")" "Docker schema 2 manifest pushed on unchanged (mounted layers)"
assert_eq "application/vnd.docker.distribution.manifest.v2+json" \
  "$("${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R/dock2:v1" | json_eval 'j["mediaType"]')" \
  "media type of the re-pushed manifest"

step "--max-concurrent-downloads/-uploads: 1 works layer by layer, 0 is refused"
new_root
expect_rc 2 pull --max-concurrent-downloads 0 "$R/app:v1"
assert_contains "$ERR" "--max-concurrent-downloads must be at least 1" "pull with no download slots"
expect_rc 0 pull -q --max-concurrent-downloads 1 "$R/app:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$ID" "$OUT" "image pulled one layer at a time"
expect_rc 2 push --max-concurrent-uploads 0 "$R/app:v1"
assert_contains "$ERR" "--max-concurrent-uploads must be at least 1" "push with no upload slots"
expect_rc 0 push --max-concurrent-uploads 1 "$R/app:v1"
assert_eq "$PUSHED" "$(digest_of_push "$OUT")" "push one layer at a time"

step "pull by digest"
new_root
expect_rc 0 pull "$R/sk@$SKD"
assert_eq "$R/sk@$SKD" "$OUT" "pull by digest stdout"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
assert_eq "<none>:<none> ${SKID:7:12}" "$OUT" "image pulled by digest is untagged"
expect_rc 0 inspect -f '{{.Id}}' "$R/sk@$SKD"
assert_eq "$SKID" "$OUT" "resolve by digest"

step "skopeo reads what strata pushed (a recompressed, pulled image)"
expect_rc 0 tag "$SKID" "$R/copied:v1"
expect_rc 0 push --compression-format zstd "$R/copied:v1"
COPIED=$(digest_of_push "$OUT")
assert_eq "$COPIED" "$(manifest_digest "$R/copied:v1")" "digest of strata's zstd push"
"${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$R/copied:v1" >"$WORK/copied.json"
assert_eq '["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar+zstd"]' \
  "$(json_eval '[l["mediaType"] for l in j["layers"]]' <"$WORK/copied.json")" "zstd layer types"
skopeo_cp "docker://$R/copied:v1" "oci:$WORK/copied-oci:v1"
assert_eq "$SKID" "$("${SKOPEO[@]}" inspect --raw "oci:$WORK/copied-oci:v1" | json_eval 'j["config"]["digest"]')" \
  "config digest after skopeo copy"

step "multi-platform index: the requested (or host) platform is selected"
amd=$(random_layer amd 1 20000)
arm=$(random_layer arm 1 20000)
AMD_ID=$(mkimage --format oci-dir -o "$WORK/amd-oci" --tag m:amd64 --arch amd64 --root-owned --no-xattrs --layer "$amd")
ARM_ID=$(mkimage --format oci-dir -o "$WORK/arm-oci" --tag m:arm64 --arch arm64 --variant v8 --root-owned --no-xattrs --layer "$arm")
skopeo_cp "oci:$WORK/amd-oci:amd64" "docker://$R/multi:amd64"
skopeo_cp "oci:$WORK/arm-oci:arm64" "docker://$R/multi:arm64"
"$PYTHON" - "$R" "$WORK/index.json" <<'EOF'
import hashlib, json, subprocess, sys
reg, out = sys.argv[1], sys.argv[2]
entries = []
for tag, platform in (("amd64", {"architecture": "amd64", "os": "linux"}),
                      ("arm64", {"architecture": "arm64", "os": "linux", "variant": "v8"})):
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reg}/multi:{tag}"],
                         check=True, capture_output=True).stdout
    entries.append({"mediaType": json.loads(raw)["mediaType"], "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
                    "size": len(raw), "platform": platform})
# An attestation-like entry must never be chosen.
entries.append(dict(entries[0], platform={"architecture": "unknown", "os": "unknown"}))
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
open(out, "wb").write(json.dumps(index).encode())
EOF
curl -fsS -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" --data-binary "@$WORK/index.json" \
  "http://$R/v2/multi/manifests/latest" >/dev/null || fail "could not PUT the index"
INDEX_DIGEST="sha256:$(sha256_of "$WORK/index.json")"
new_root
expect_rc 0 pull --platform linux/arm64 "$R/multi:latest"
expect_rc 0 images -q --no-trunc
assert_eq "$ARM_ID" "$OUT" "image pulled for linux/arm64"
expect_rc 0 inspect -f '{{json .RepoDigests}}' "$R/multi:latest"
assert_eq "[\"$R/multi@$INDEX_DIGEST\"]" "$OUT" "RepoDigest names the index"
new_root
expect_rc 0 pull --platform linux/amd64 "$R/multi:latest"
expect_rc 0 images -q --no-trunc
assert_eq "$AMD_ID" "$OUT" "image pulled for linux/amd64"
if [ "$(uname -m)" = x86_64 ]; then
  new_root
  expect_rc 0 pull -q "$R/multi:latest"
  expect_rc 0 images -q --no-trunc
  assert_eq "$AMD_ID" "$OUT" "image pulled for the host platform"
fi
expect_rc 1 pull --platform linux/s390x "$R/multi:latest"
assert_contains "$ERR" "no matching manifest for linux/s390x" "unavailable platform"
assert_contains "$ERR" "linux/arm64" "unavailable platform lists the offered ones"
expect_rc 2 pull --platform nonsense "$R/multi:latest"
assert_contains "$ERR" "expected OS/ARCH" "bad --platform"
expect_rc 0 manifest inspect "$R/multi:latest"
assert_contains "$OUT" '"manifests"' "manifest inspect of an index"
expect_rc 0 manifest inspect --platform linux/arm64 "$R/multi:latest"
assert_contains "$OUT" "$ARM_ID" "manifest inspect --platform"

step "--keep-blobs: the exact blobs and manifest digest go to another registry"
start_registry reg2
R2=$REG
new_root
expect_rc 0 pull --keep-blobs "$R/sk:v1"
assert_file_count "$STRATA_ROOT/blobs/sha256" 4 "config, manifest and the two kept layer blobs"
expect_rc 0 fsck
assert_not_contains "$OUT$ERR" "removed" "fsck of a store with kept blobs"
expect_rc 0 tag "$R/sk:v1" "$R2/sk:v1"
expect_rc 0 push "$R2/sk:v1"
assert_eq "$SKD" "$(digest_of_push "$OUT")" "digest kept across registries with --keep-blobs"
assert_eq "$SKD" "$(manifest_digest "$R2/sk:v1")" "digest skopeo sees on the second registry"
expect_rc 0 rmi "$R/sk:v1" "$R2/sk:v1"
assert_file_count "$STRATA_ROOT/blobs/sha256" 0 "blobs after rmi"

step "without --keep-blobs the layers are recompressed: a new digest, stable on re-push"
new_root
expect_rc 0 pull -q "$R/sk:v1"
expect_rc 0 tag "$R/sk:v1" "$R2/sk2:v1"
expect_rc 0 push "$R2/sk2:v1"
RECOMP=$(digest_of_push "$OUT")
[ "$RECOMP" != "$SKD" ] || fail "recompressed push kept the digest (skopeo's gzip equals zlib's?)"
assert_contains "$ERR" "manifest digest changes" "recompression note"
expect_rc 0 push "$R2/sk2:v1"
assert_eq "$RECOMP" "$(digest_of_push "$OUT")" "re-push of a recompressed image"
assert_not_contains "$ERR" ": Pushed" "re-push of a recompressed image"
skopeo_cp "docker://$R2/sk2:v1" "oci:$WORK/sk2-oci:v1"

step "search: the catalog, followed across Link-paginated pages"
STRATA_REGISTRY_CATALOG_PAGE=2 expect_rc 0 search --registry "$R" sk
assert_eq "NAME" "$(head -1 <<<"$OUT" | awk '{print $1}')" "search header"
assert_contains "$(head -1 <<<"$OUT")" "DESCRIPTION" "search header"
assert_contains "$(head -1 <<<"$OUT")" "STARS" "search header"
assert_contains "$(head -1 <<<"$OUT")" "OFFICIAL" "search header"
assert_contains "$OUT" "$R/sk " "search result"
STRATA_REGISTRY_CATALOG_PAGE=1 expect_rc 0 search --format '{{.Name}}' --limit 2 "$R/mul"
assert_eq "$R/multi" "$OUT" "search REGISTRY/TERM, one page per repository"
expect_rc 0 search --format '{{.Name}}' --registry "$R" zzz-no-such
assert_eq "" "$OUT" "search without matches"

pass
