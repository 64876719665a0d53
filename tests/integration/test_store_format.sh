#!/usr/bin/env bash
# The store root: its format file, refusing newer and foreign roots, and how the root is chosen
# (--root, STRATA_ROOT, the default).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "a new root gets the format file and layout"
expect_rc 0 images -q
assert_eq "" "$OUT" "images of a new root"
[ -f "$STRATA_ROOT/strata-store.json" ] || fail "no strata-store.json in a new root"
assert_eq '{"format":"strata-store","version":1}' "$(cat "$STRATA_ROOT/strata-store.json")" "strata-store.json"
for d in meta blobs/sha256 objects/00 objects/ff layers tmp; do
  [ -d "$STRATA_ROOT/$d" ] || fail "a new root lacks $d/"
done
assert_eq 256 "$(find "$STRATA_ROOT/objects" -mindepth 1 -maxdepth 1 -type d | wc -l | tr -d ' ')" "object shards"
assert_eq 700 "$(stat -c %a "$STRATA_ROOT")" "mode of the root"
# Parents are created too.
expect_rc 0 --root "$WORK/deep/er/root" images -q
[ -f "$WORK/deep/er/root/strata-store.json" ] || fail "--root with missing parents"

step "a root written by a newer strata is refused"
mkdir -p "$WORK/newer"
echo '{"format":"strata-store","version":99}' >"$WORK/newer/strata-store.json"
for cmd in "images" "load -i /dev/null" "fsck -n" "system df"; do
  # shellcheck disable=SC2086
  expect_rc 1 --root "$WORK/newer" $cmd
  assert_contains "$ERR" "newer" "strata $cmd on a version 99 root"
  assert_contains "$ERR" "store format 99" "strata $cmd on a version 99 root"
  assert_contains "$ERR" "$WORK/newer" "strata $cmd on a version 99 root"
done
# Nothing was written into it.
assert_eq "strata-store.json" "$(ls -A "$WORK/newer")" "contents of the refused newer root"
assert_eq '{"format":"strata-store","version":99}' "$(cat "$WORK/newer/strata-store.json")" "the newer format file"
# Through STRATA_ROOT as well.
STRATA_ROOT="$WORK/newer" expect_rc 1 images
assert_contains "$ERR" "newer" "STRATA_ROOT pointing at a version 99 root"

step "foreign roots are refused"
mkdir -p "$WORK/foreign"
echo '{"format":"something-else","version":1}' >"$WORK/foreign/strata-store.json"
echo "precious" >"$WORK/foreign/data.txt"
expect_rc 1 --root "$WORK/foreign" images
assert_contains "$ERR" "is not a strata store" "foreign format file"
assert_contains "$ERR" "$WORK/foreign" "foreign format file"
assert_eq "data.txt strata-store.json" "$(ls -A "$WORK/foreign" | sort | tr '\n' ' ' | sed 's/ $//')" "foreign root untouched"
mkdir -p "$WORK/notjson"
echo 'this is not json' >"$WORK/notjson/strata-store.json"
expect_rc 1 --root "$WORK/notjson" images
assert_contains "$ERR" "is not a strata store" "format file that is not JSON"
mkdir -p "$WORK/array"
echo '["strata-store", 1]' >"$WORK/array/strata-store.json"
expect_rc 1 --root "$WORK/array" images
assert_contains "$ERR" "is not a strata store" "format file that is a JSON array"
# Metadata without a format file is someone else's (or damaged): not scribbled on.
mkdir -p "$WORK/nofmt/meta"
expect_rc 1 --root "$WORK/nofmt" images
assert_contains "$ERR" "has metadata but no strata-store.json" "meta/ without a format file"
assert_eq "meta" "$(ls -A "$WORK/nofmt")" "root without a format file untouched"
# A file where the root should be.
echo x >"$WORK/afile"
expect_rc 1 --root "$WORK/afile" images
assert_contains "$ERR" "$WORK/afile" "root that is a file"
# An older-or-equal version is accepted.
mkdir -p "$WORK/v1"
echo '{"format":"strata-store","version":1}' >"$WORK/v1/strata-store.json"
expect_rc 0 --root "$WORK/v1" images -q
[ -d "$WORK/v1/meta" ] || fail "a root with only a version 1 format file was not initialised"

step "STRATA_ROOT chooses the default root; --root overrides it"
mkdir -p "$WORK/img"
echo hello >"$WORK/img/hello.txt"
ID=$(mkimage --format docker-archive -o "$WORK/img.tar" --tag env:1 --layer "$WORK/img")
STRATA_ROOT="$WORK/by-env" expect_rc 0 load -q -i "$WORK/img.tar"
[ -f "$WORK/by-env/strata-store.json" ] || fail "STRATA_ROOT was not used as the root"
STRATA_ROOT="$WORK/by-env" expect_rc 0 images -q --no-trunc
assert_eq "$ID" "$OUT" "images via STRATA_ROOT"
expect_rc 0 --root "$WORK/by-env" images -q --no-trunc
assert_eq "$ID" "$OUT" "images via --root"
# --root wins over STRATA_ROOT.
STRATA_ROOT="$WORK/other-root" expect_rc 0 --root "$WORK/by-env" images -q --no-trunc
assert_eq "$ID" "$OUT" "--root over STRATA_ROOT"
[ ! -e "$WORK/other-root" ] || fail "STRATA_ROOT was created although --root was given"
STRATA_ROOT="$WORK/other-root" expect_rc 0 images -q
assert_eq "" "$OUT" "another STRATA_ROOT is another store"

step "without STRATA_ROOT: XDG_DATA_HOME (non-root users)"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  # As root the default is /var/lib/strata, which a test must not touch: check the non-root rule
  # as nobody instead.
  mkdir -p "$WORK/home/xdg"
  chmod 0755 "$WORK"
  chown -R 65534:65534 "$WORK/home"
  cp "$WORK/img.tar" "$WORK/home/img.tar" && chown 65534:65534 "$WORK/home/img.tar"
  rc=0
  env -u STRATA_ROOT HOME="$WORK/home" XDG_DATA_HOME="$WORK/home/xdg" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$STRATA_BIN" load -q -i "$WORK/home/img.tar" \
    >"$WORK/xdg.out" 2>"$WORK/xdg.err" || rc=$?
  assert_eq 0 "$rc" "load as nobody: $(cat "$WORK/xdg.err")"
  [ -f "$WORK/home/xdg/strata/strata-store.json" ] || fail "the default root is not \$XDG_DATA_HOME/strata"
  rc=0
  out=$(env -u STRATA_ROOT -u XDG_DATA_HOME HOME="$WORK/home" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$STRATA_BIN" images -q 2>&1) || rc=$?
  assert_eq "0 ''" "$rc '$out'" "images as nobody without XDG_DATA_HOME (a new store)"
  [ -f "$WORK/home/.local/share/strata/strata-store.json" ] || fail "the default root is not ~/.local/share/strata"
  chmod 0700 "$WORK"
else
  echo "SKIP: needs root and setpriv to run as another user"
fi

pass
