#!/usr/bin/env bash
# Untrusted archives: every hostile or broken layer of the tar corpus is refused with a precise
# error and leaves nothing behind; every good one loads and saves back byte for byte; the import
# limits and the diff_id check hold.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "generate the tar corpus"
CORPUS="$WORK/corpus"
"$PYTHON" "$MKTARCORPUS_PY" "$CORPUS" 2>"$WORK/corpus.log" || fail "mktarcorpus failed: $(cat "$WORK/corpus.log")"
EXPECT="$CORPUS/expect.json"
mapfile -t REJECTS < <(json_eval '"\n".join(sorted(k for k, v in j.items() if v["expect"] == "reject"))' <"$EXPECT")
mapfile -t OKS < <(json_eval '"\n".join(sorted(k for k, v in j.items() if v["expect"] == "ok"))' <"$EXPECT")
[ "${#REJECTS[@]}" -ge 10 ] || fail "the corpus has only ${#REJECTS[@]} reject cases"
[ "${#OKS[@]}" -ge 10 ] || fail "the corpus has only ${#OKS[@]} ok cases"

# assert_store_clean WHAT: no image, no file object, no blob, no layer, nothing in tmp/, fsck clean.
assert_store_clean() {
  local what=$1 out err rc
  out=$OUT err=$ERR rc=$RC
  expect_rc 0 images -q
  assert_eq "" "$OUT" "images after $what"
  assert_file_count "$STRATA_ROOT/objects" 0 "files under objects/ after $what"
  assert_file_count "$STRATA_ROOT/blobs" 0 "files under blobs/ after $what"
  assert_eq "" "$(find "$STRATA_ROOT/layers" -mindepth 1)" "layers/ after $what"
  assert_eq "" "$(find "$STRATA_ROOT/tmp" -mindepth 1)" "tmp/ after $what"
  expect_rc 0 fsck -n
  assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$OUT" "fsck -n after $what"
  OUT=$out ERR=$err RC=$rc
}

# check_reject ARCHIVE CASE: load fails with exit 1, naming the archive and the entry.
check_reject() {
  local archive=$1 name=$2 want
  expect_rc 1 load -q -i "$archive"
  assert_eq "" "$OUT" "stdout of the failed load of $name"
  assert_contains "$ERR" "Error: " "stderr of $name"
  assert_contains "$ERR" "$archive" "stderr of $name (the archive)"
  assert_contains "$ERR" "layer 1/1" "stderr of $name (the layer)"
  want=$(json_eval 'j[sys.argv[2]]["error_contains"] or ""' "$name" <"$EXPECT")
  if [ -n "$want" ]; then
    assert_contains "$ERR" "$want" "stderr of $name (the entry)"
  fi
  # With -q, no progress: the one error line is the whole story.
  assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "stderr lines of $name"
  assert_store_clean "rejecting $name"
}

step "reject-* layers in a docker-archive (uncompressed) and an oci-archive (gzip)"
for name in "${REJECTS[@]}"; do
  base=${name%.tar}
  mkimage --format docker-archive -o "$WORK/$base.docker.tar" --tag "bad/$base:1" --layer "$CORPUS/$name" >/dev/null
  check_reject "$WORK/$base.docker.tar" "$name"
  mkimage --format oci-archive --compression gzip -o "$WORK/$base.oci.tar" --tag "bad/$base:1" \
    --layer "$CORPUS/$name" >/dev/null
  check_reject "$WORK/$base.oci.tar" "$name"
done

step "ok-* layers load and save back byte-identical"
for name in "${OKS[@]}"; do
  base=${name%%.*}
  # --compression keep: the gzip and zstd corpus files are loaded as they are.
  id=$(mkimage --format oci-archive --compression keep -o "$WORK/$base.tar" --tag "good/$base:1" --layer "$CORPUS/$name")
  expect_rc 0 load -q -i "$WORK/$base.tar"
  assert_eq "Loaded image: good/$base:1" "$OUT" "load of $name"
  expect_rc 0 inspect -f '{{.Id}} {{index .RootFS.Layers 0}}' "good/$base:1"
  printf '%s %s %s\n' "$name" "$id" "$OUT" >>"$WORK/ok-results.txt"
  expect_rc 0 save -o "$WORK/$base.saved.tar" "good/$base:1"
done
# Per case: the image ID is mkimage's, the diff_id the corpus's, and the saved layer.tar hashes to it.
"$PYTHON" - "$EXPECT" "$WORK" "$WORK/ok-results.txt" <<'EOF2' || fail "ok corpus round trip"
import hashlib, json, sys, tarfile
expect = json.load(open(sys.argv[1]))
bad, checked = [], 0
for line in open(sys.argv[3]):
    checked += 1
    name, mk_id, got_id, got_diff = line.split()
    want = expect[name]["diff_id"]
    if got_id != mk_id or got_diff != want:
        bad.append("%s: loaded as %s %s, want %s %s" % (name, got_id, got_diff, mk_id, want))
    with tarfile.open("%s/%s.saved.tar" % (sys.argv[2], name.split(".")[0])) as t:
        layer = json.load(t.extractfile("manifest.json"))[0]["Layers"][0]
        saved = "sha256:" + hashlib.sha256(t.extractfile(layer).read()).hexdigest()
    if saved != want:
        bad.append("%s: saved layer.tar is %s, want %s" % (name, saved, want))
if bad or checked < 10:
    sys.exit("\n".join(bad) or "only %d cases checked" % checked)
EOF2
assert_eq "${#OKS[@]}" "$(wc -l <"$WORK/ok-results.txt" | tr -d ' ')" "ok cases checked"
expect_rc 0 images -q
assert_eq "${#OKS[@]}" "$(printf '%s\n' "$OUT" | grep -c .)" "images after loading the ok corpus"
# Every entry's references are sound: ok-hardlink-to-symlink's hardlink names no file object (it
# once counted a reference to an all-zero digest, which fsck then reported as a missing object).
expect_rc 0 fsck -n --verify-content
assert_match "$OUT" "^${#OKS[@]} images, [0-9]+ layers, [0-9]+ objects, ${#OKS[@]} blobs: consistent\$" \
  "fsck after loading the ok corpus"
assert_not_contains "$OUT" "0000000000000000" "fsck after loading the ok corpus"
# A good image saved by strata loads into a fresh root with the same ID.
new_root
expect_rc 0 load -i "$WORK/ok-sparse.saved.tar"
expect_rc 0 images -q --no-trunc
assert_eq "$(json_eval 'j["ok-sparse.tar"]["diff_id"]' <"$EXPECT")" \
  "$(strata_ok inspect -f '{{index .RootFS.Layers 0}}' good/ok-sparse:1)" "sparse layer after a second round trip"

# A hardlink to a symlink alone: one file object ("target"), and rmi frees everything.
new_root
expect_rc 0 load -q -i "$WORK/ok-hardlink-to-symlink.tar"
expect_rc 0 system df --format json
assert_eq "1 1" "$(json_eval '"%d %d" % (j["Layers"], j["Objects"])' <<<"$OUT")" "layers and objects of ok-hardlink-to-symlink"
expect_rc 0 fsck -n
assert_eq "1 images, 1 layers, 1 objects, 1 blobs: consistent" "$OUT" "fsck of ok-hardlink-to-symlink"
expect_rc 0 rmi good/ok-hardlink-to-symlink:1
assert_store_clean "rmi of ok-hardlink-to-symlink"

step "limits: --max-entries, --max-file-size, --max-layer-size"
new_root
mkdir -p "$WORK/three/d"
head -c 5000 /dev/urandom >"$WORK/three/d/big"
echo small >"$WORK/three/small"
# Entries: d/, d/big, small.
mkimage --format docker-archive -o "$WORK/three.tar" --tag three:1 --layer "$WORK/three" >/dev/null
expect_rc 1 load --max-entries 2 -i "$WORK/three.tar"
assert_contains "$ERR" "--max-entries" "max-entries error"
assert_contains "$ERR" "more than 2 entries" "max-entries error"
assert_contains "$ERR" "$WORK/three.tar" "max-entries error"
assert_store_clean "--max-entries 2"
expect_rc 1 load --max-file-size 4096 -i "$WORK/three.tar"
assert_contains "$ERR" "--max-file-size" "max-file-size error"
assert_contains "$ERR" "d/big" "max-file-size error"
assert_store_clean "--max-file-size 4096"
expect_rc 1 load --max-layer-size 4096 -i "$WORK/three.tar"
assert_contains "$ERR" "--max-layer-size" "max-layer-size error"
assert_store_clean "--max-layer-size 4096"
# At the limits exactly, it loads.
expect_rc 0 load --max-entries 3 --max-file-size 5000 -i "$WORK/three.tar"
assert_eq "Loaded image: three:1" "$OUT" "load at the limits"
expect_rc 0 rmi three:1
assert_store_clean "rmi three:1"

step "docker-archive whose config diff_id does not match its layer"
mkdir -p "$WORK/other"
echo "not what the config says" >"$WORK/other/file"
mkimage --format docker-archive -o "$WORK/other.tar" --tag other:1 --layer "$WORK/other" >/dev/null
# Keep three.tar's config and manifest, put other.tar's layer bytes under its layer name.
"$PYTHON" - "$WORK/three.tar" "$WORK/other.tar" "$WORK/mismatch.tar" <<'EOF'
import io, json, sys, tarfile
src, other, dst = sys.argv[1:]
with tarfile.open(other) as t:
    other_layer = t.extractfile(json.load(t.extractfile("manifest.json"))[0]["Layers"][0]).read()
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
    layer_name = json.load(t.extractfile("manifest.json"))[0]["Layers"][0]
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else None
        if m.name == layer_name:
            data = other_layer
            m.size = len(data)
        out.addfile(m, io.BytesIO(data) if data is not None else None)
EOF
expect_rc 1 load -i "$WORK/mismatch.tar"
assert_contains "$ERR" "diff_id mismatch" "diff_id mismatch error"
assert_contains "$ERR" "$WORK/mismatch.tar" "diff_id mismatch error"
assert_store_clean "the diff_id mismatch"

step "oci-archive whose layer blob does not match its digest"
mkimage --format oci-archive -o "$WORK/oci-good.tar" --tag three:1 --layer "$WORK/three" >/dev/null
"$PYTHON" - "$WORK/oci-good.tar" "$WORK/oci-bad.tar" <<'EOF'
import io, json, sys, tarfile
src, dst = sys.argv[1:]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
    index = json.load(t.extractfile("index.json"))
    manifest = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    layer = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else None
        if m.name == layer:
            import gzip
            raw = bytearray(gzip.decompress(data))
            raw[-1100] ^= 0xFF  # a byte of the last file's content, inside the tar
            data = gzip.compress(bytes(raw), mtime=0)
            m.size = len(data)
        out.addfile(m, io.BytesIO(data) if data is not None else None)
EOF
expect_rc 1 load -i "$WORK/oci-bad.tar"
assert_contains "$ERR" "mismatch" "blob digest mismatch error"
assert_store_clean "the blob digest mismatch"

pass
