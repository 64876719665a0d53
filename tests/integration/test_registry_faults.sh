#!/usr/bin/env bash
# Pull through a fault-injecting proxy (tests/testutil/fault_proxy.py) in front of a real
# registry: a connection cut mid-blob is resumed with a Range request (no byte downloaded
# twice), a blob or manifest with wrong bytes or a layer with a wrong declared size is rejected
# and nothing is stored, 5xx answers are retried, a layer the store already has is not
# downloaded again, and a push in small chunks (POST, PATCH..., PUT) arrives whole.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

# layer_blobs REF: the layer blob digests of REF's manifest, one per line.
layer_blobs() {
  expect_rc 0 manifest inspect --raw "$1"
  printf '%s' "$OUT" | json_eval '"\n".join(l["digest"] for l in j["layers"])'
}
layer_size() {
  expect_rc 0 manifest inspect --raw "$1"
  printf '%s' "$OUT" | json_eval "str([l['size'] for l in j['layers'] if l['digest'] == '$2'][0])"
}
store_is_empty() {
  local what=$1
  expect_rc 0 images -q
  assert_eq "" "$OUT" "images after $what"
  assert_file_count "$STRATA_ROOT/objects" 0 "objects after $what"
  assert_file_count "$STRATA_ROOT/layers" 0 "tar-splits after $what"
  assert_file_count "$STRATA_ROOT/blobs" 0 "blobs after $what"
  assert_file_count "$STRATA_ROOT/tmp" 0 "temporary files after $what"
}

step "a registry holding a base image and an image that adds one layer to it"
start_registry reg
R=$REG
big=$(random_layer big 8 500000)     # ~4 MB of incompressible data
small=$(random_layer small 2 40000)
extra=$(random_layer extra 1 30000)
ID1=$(strata_image "$R/app:v1" "$big" "$small")
ID2=$(strata_image "$R/app:v2" "$big" "$small" "$extra")
expect_rc 0 push -q "$R/app:v1"
expect_rc 0 push -q "$R/app:v2"
mapfile -t BLOBS < <(layer_blobs "$R/app:v2")
BIG=${BLOBS[0]} SMALL=${BLOBS[1]} EXTRA=${BLOBS[2]}
BIG_SIZE=$(layer_size "$R/app:v2" "$BIG")
[ "$BIG_SIZE" -gt 3000000 ] || fail "the big layer blob is only $BIG_SIZE bytes"

step "a connection cut mid-blob: the pull resumes where it stopped"
start_proxy cut "$R" --cut-after 1500000 --match "$BIG"
P=$PROXY
new_root
expect_rc 0 pull "$P/app:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$ID1" "$OUT" "image pulled through a cut connection"
ranges=$("$PYTHON" -c 'import json, sys
print(" ".join(e["range"] for l in open(sys.argv[1]) for e in [json.loads(l)] if sys.argv[2] in e["path"] and e["method"] == "GET"))' \
  "$PROXY_STATS" "$BIG")
assert_eq " bytes=1500000-" "$ranges" "GETs of the big blob (the first without Range, then resumed)"
assert_eq "$BIG_SIZE" "$(proxy_blob_bytes "$BIG")" "bytes of the big blob sent (none twice)"
expect_rc 0 fsck
stop_pid "$PROXY_PID"

step "a blob with wrong bytes: rejected, nothing stored"
new_root
# A one-layer image, so no other layer of the pull can finish meanwhile.
solo=$(random_layer solo 4 200000)
STRATA_ROOT_BUILD=$WORK/build-solo
STRATA_ROOT=$STRATA_ROOT_BUILD strata_image "$R/solo:v1" "$solo" >/dev/null
STRATA_ROOT=$STRATA_ROOT_BUILD expect_rc 0 push -q "$R/solo:v1"
SOLO=$(layer_blobs "$R/solo:v1")
start_proxy corrupt "$R" --corrupt --match "$SOLO"
P=$PROXY
expect_rc 1 pull "$P/solo:v1"
assert_contains "$ERR" "digest mismatch" "pull of a corrupted blob"
store_is_empty "a rejected blob"
expect_rc 1 pull --keep-blobs "$P/solo:v1"
assert_contains "$ERR" "digest mismatch" "pull --keep-blobs of a corrupted blob"
store_is_empty "a rejected blob with --keep-blobs"
stop_pid "$PROXY_PID"

step "a manifest with wrong bytes: rejected by tag (Docker-Content-Digest) and by digest, nothing stored"
expect_rc 0 manifest inspect --raw "$R/solo:v1"
SOLO_MANIFEST=sha256:$(printf '%s' "$OUT" | sha256sum | cut -d' ' -f1)
start_proxy badmanifest "$R" --corrupt-manifests
P=$PROXY
new_root
expect_rc 1 pull "$P/solo:v1"
assert_contains "$ERR" "digest mismatch" "pull by tag of a corrupted manifest"
store_is_empty "a rejected manifest"
expect_rc 1 pull "$P/solo@$SOLO_MANIFEST"
assert_contains "$ERR" "digest mismatch" "pull by digest of a corrupted manifest"
store_is_empty "a rejected manifest pulled by digest"
expect_rc 1 manifest inspect "$P/solo@$SOLO_MANIFEST"
assert_contains "$ERR" "digest mismatch" "manifest inspect of a corrupted manifest"
[ "$(proxy_count GET /manifests/)" -ge 3 ] || fail "the proxy served no manifests"
stop_pid "$PROXY_PID"

step "a manifest that declares the wrong layer size (smaller, then larger): rejected, nothing stored"
expect_rc 0 manifest inspect --raw "$R/solo:v1"
for delta in -1 1; do
  printf '%s' "$OUT" | "$PYTHON" -c 'import json, sys
m = json.load(sys.stdin)
m["layers"][0]["size"] += int(sys.argv[1])
sys.stdout.write(json.dumps(m))' "$delta" >"$WORK/badsize.json"
  mtype=$(json_eval 'j["mediaType"]' <"$WORK/badsize.json")
  curl -fsS -X PUT -H "Content-Type: $mtype" --data-binary "@$WORK/badsize.json" \
    "http://$R/v2/solo/manifests/badsize" >/dev/null || fail "could not PUT the manifest with a wrong size"
  new_root
  run_strata pull "$R/solo:badsize"
  assert_eq 1 "$RC" "pull of a layer whose declared size is off by $delta"
  assert_contains "$ERR" "bytes" "the error of a size off by $delta names the byte counts"
  store_is_empty "a layer whose declared size is off by $delta"
  expect_rc 0 manifest inspect --raw "$R/solo:v1"
done

step "5xx answers, then success: retried"
start_proxy flaky "$R" --fail-first 2 --fail-status 503 --match "$SOLO"
P=$PROXY
new_root
expect_rc 0 pull "$P/solo:v1"
statuses=$("$PYTHON" -c 'import json, sys
print(" ".join(str(e["status"]) for l in open(sys.argv[1]) for e in [json.loads(l)] if sys.argv[2] in e["path"] and e["method"] == "GET"))' \
  "$PROXY_STATS" "$SOLO")
assert_eq "503 503 200" "$statuses" "answers to the layer GETs"
stop_pid "$PROXY_PID"

step "4xx is not retried"
start_proxy denied "$R" --fail-first 5 --fail-status 403 --match "$SOLO"
P=$PROXY
new_root
expect_rc 1 pull "$P/solo:v1"
assert_eq 1 "$(proxy_count GET "$SOLO")" "GETs of a forbidden blob"
store_is_empty "a forbidden blob"
stop_pid "$PROXY_PID"

step "a layer already in the store is not downloaded again"
start_proxy count "$R"
P=$PROXY
new_root
expect_rc 0 pull -q "$P/app:v1"
before_big=$(proxy_blob_bytes "$BIG")
before_small=$(proxy_blob_bytes "$SMALL")
expect_rc 0 pull "$P/app:v2"
assert_contains "$ERR" "${BIG:7:12}: Already exists" "pull of v2"
assert_contains "$ERR" "${SMALL:7:12}: Already exists" "pull of v2"
assert_eq "$before_big" "$(proxy_blob_bytes "$BIG")" "bytes of the shared big layer on the second pull"
assert_eq "$before_small" "$(proxy_blob_bytes "$SMALL")" "bytes of the shared small layer on the second pull"
[ "$(proxy_blob_bytes "$EXTRA")" -gt 0 ] || fail "the new layer was not downloaded"
expect_rc 0 images -q --no-trunc
assert_contains "$OUT" "$ID2" "v2 pulled"

step "chunked upload: a layer bigger than the chunk size goes up in PATCHes, then reads back"
stop_pid "$PROXY_PID"
start_proxy chunks "$R"
P=$PROXY
chunky=$(random_layer chunky 1 300000)  # incompressible: ~300 kB of gzip, 5 chunks of 64 KiB
CID=$(strata_image "$P/chunky:v1" "$chunky")
STRATA_REGISTRY_CHUNK_SIZE=65536 expect_rc 0 push "$P/chunky:v1"
assert_contains "$ERR" ": Pushed" "chunked push progress"
patches=$(proxy_count PATCH /chunky/blobs/uploads/)
[ "$patches" -ge 4 ] || fail "expected at least 4 PATCH requests for a ~300 kB layer in 64 KiB chunks, saw $patches"
new_root
expect_rc 0 pull -q "$R/chunky:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$CID" "$OUT" "image pushed in chunks, pulled back"
expect_rc 0 fsck

pass
