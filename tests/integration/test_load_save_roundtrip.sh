#!/usr/bin/env bash
# load -> images -> save (docker-archive, oci-archive, stdout pipe) -> load into a fresh root:
# the image ID and the diff_ids survive every round trip.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "build the demo image"
DEMO_ID=$(demo_image "$WORK/demo.tar")
assert_match "$DEMO_ID" '^sha256:[0-9a-f]{64}$' "demo image ID"
# The diff_ids the archive's config declares, independently of strata.
WANT_LAYERS=$("$PYTHON" - "$WORK/demo.tar" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    manifest = json.load(t.extractfile("manifest.json"))
    config = json.load(t.extractfile(manifest[0]["Config"]))
print(json.dumps(config["rootfs"]["diff_ids"], separators=(",", ":")))
EOF
)
assert_match "$WANT_LAYERS" '^\["sha256:[0-9a-f]{64}","sha256:[0-9a-f]{64}"\]$' "demo diff_ids"

step "load the demo image"
ROOT_A=$STRATA_ROOT
expect_rc 0 load -i "$WORK/demo.tar"
assert_eq "Loaded image: strata-demo:latest" "$OUT" "load output"

step "images lists it"
expect_rc 0 images
assert_eq 2 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "images line count"
header=$(printf '%s\n' "$OUT" | sed -n 1p)
assert_match "$header" '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$' "images header"
row=$(printf '%s\n' "$OUT" | sed -n 2p)
read -r repo tag id _ <<<"$row"
assert_eq "strata-demo" "$repo" "REPOSITORY column"
assert_eq "latest" "$tag" "TAG column"
assert_match "$id" '^[0-9a-f]{12}$' "IMAGE ID column"
assert_eq "${DEMO_ID:7:12}" "$id" "IMAGE ID column"
# The columns line up under their headers.
assert_eq "$(awk -v h="$header" 'BEGIN{print index(h, "TAG")}')" \
  "$(awk -v r="$row" 'BEGIN{print index(r, "latest")}')" "TAG column position"
expect_rc 0 images -q --no-trunc
assert_eq "$DEMO_ID" "$OUT" "images -q --no-trunc"
expect_rc 0 images -q
assert_eq "${DEMO_ID:7:12}" "$OUT" "images -q"
expect_rc 0 inspect -f '{{json .RootFS.Layers}}' strata-demo
assert_eq "$WANT_LAYERS" "$OUT" "loaded diff_ids"

# roundtrip FORMAT: save from ROOT_A in FORMAT, load into a fresh root, compare.
roundtrip() {
  local format=$1 file="$WORK/saved-$1.tar"
  step "save --format $format and load into a fresh root"
  STRATA_ROOT=$ROOT_A expect_rc 0 save --format "$format" -o "$file" strata-demo:latest
  assert_eq "" "$OUT" "save -o stdout"
  [ -s "$file" ] || fail "save -o $file wrote nothing"
  [ -z "$(find "$WORK" -maxdepth 1 -name "saved-$format.tar.strata-tmp-*")" ] || fail "save left its temp file"
  new_root
  expect_rc 0 load -i "$file"
  assert_eq "Loaded image: strata-demo:latest" "$OUT" "load of $format output"
  expect_rc 0 images -q --no-trunc
  assert_eq "$DEMO_ID" "$OUT" "image ID after $format round trip"
  expect_rc 0 inspect -f '{{json .RootFS.Layers}}' strata-demo:latest
  assert_eq "$WANT_LAYERS" "$OUT" "diff_ids after $format round trip"
  expect_rc 0 inspect -f '{{.Id}} {{.Config.WorkingDir}} {{json .Config.Cmd}}' strata-demo:latest
  assert_eq "$DEMO_ID /app [\"sh\"]" "$OUT" "config after $format round trip"
  # Saving again from the second root gives the same bytes: the archive is a function of the image.
  expect_rc 0 save --format "$format" -o "$file.again" strata-demo:latest
  cmp -s "$file" "$file.again" || fail "$format archive differs when saved from the second root"
}
roundtrip docker-archive
roundtrip oci-archive

step "the docker-archive holds the original layer tars byte for byte"
"$PYTHON" - "$WORK/demo.tar" "$WORK/saved-docker-archive.tar" <<'EOF'
import hashlib, json, sys, tarfile
def layers(path):
    with tarfile.open(path) as t:
        m = json.load(t.extractfile("manifest.json"))
        return [hashlib.sha256(t.extractfile(l).read()).hexdigest() for l in m[0]["Layers"]]
a, b = layers(sys.argv[1]), layers(sys.argv[2])
if a != b:
    sys.exit("layer tars differ: %s vs %s" % (a, b))
EOF

step "save | load through a pipe"
new_root
ROOT_PIPE=$STRATA_ROOT
rc=0
STRATA_ROOT=$ROOT_A "$STRATA_BIN" save strata-demo 2>"$WORK/save.err" | "$STRATA_BIN" load >"$WORK/pipe.out" 2>"$WORK/pipe.err" ||
  rc=$?
assert_eq 0 "$rc" "save | load exit status (pipefail)"
assert_eq "Loaded image: strata-demo:latest" "$(cat "$WORK/pipe.out")" "piped load output"
STRATA_ROOT=$ROOT_PIPE expect_rc 0 images -q --no-trunc
assert_eq "$DEMO_ID" "$OUT" "image ID after the pipe"
expect_rc 0 inspect -f '{{json .RootFS.Layers}}' strata-demo
assert_eq "$WANT_LAYERS" "$OUT" "diff_ids after the pipe"
# Loading from stdin redirected from a file works too (-i omitted).
new_root
expect_rc 0 load -q <"$WORK/saved-oci-archive.tar"
assert_eq "Loaded image: strata-demo:latest" "$OUT" "load from stdin"
assert_file_count "$STRATA_ROOT/tmp" 0 "tmp/ after loading from stdin"

step "save of an unknown image fails"
STRATA_ROOT=$ROOT_A
expect_rc 1 save -o "$WORK/nope.tar" nosuch:latest
assert_contains "$ERR" "Error: " "save stderr"
assert_contains "$ERR" "No such image" "save stderr"
assert_contains "$ERR" "nosuch:latest" "save stderr"
[ ! -e "$WORK/nope.tar" ] || fail "a failed save left $WORK/nope.tar"
[ -z "$(find "$WORK" -maxdepth 1 -name 'nope.tar.strata-tmp-*')" ] || fail "a failed save left its temp file"
# One unknown name among good ones fails the whole save.
expect_rc 1 save -o "$WORK/nope.tar" strata-demo nosuch
assert_contains "$ERR" "No such image" "save stderr"
[ ! -e "$WORK/nope.tar" ] || fail "a failed save left $WORK/nope.tar"
expect_rc 2 save --format tarball -o "$WORK/nope.tar" strata-demo
assert_contains "$ERR" 'unknown --format "tarball"' "save stderr"
expect_rc 2 save
[ -z "$OUT" ] || fail "usage error printed on stdout: $OUT"

step "save to a terminal is refused"
if command -v script >/dev/null 2>&1 && script -qec true /dev/null >/dev/null 2>&1; then
  rc=0
  tty_out=$(STRATA_ROOT=$ROOT_A script -qec "'$STRATA_BIN' save strata-demo" /dev/null </dev/null) || rc=$?
  assert_eq 1 "$rc" "save to a tty exit status"
  assert_contains "$tty_out" "cowardly refusing to save to a terminal" "save to a tty"
  # Redirected, the same command works; -o works under a tty.
  rc=0
  tty_out=$(STRATA_ROOT=$ROOT_A script -qec "'$STRATA_BIN' save -o '$WORK/tty.tar' strata-demo" /dev/null </dev/null) ||
    rc=$?
  assert_eq 0 "$rc" "save -o under a tty exit status"
  cmp -s "$WORK/tty.tar" "$WORK/saved-docker-archive.tar" || fail "save -o under a tty wrote different bytes"
else
  echo "SKIP: no usable script(1) to fake a terminal"
fi

pass
