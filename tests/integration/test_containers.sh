#!/usr/bin/env bash
# Containers: create, ps, rm, rmi refusing images containers use, prune keeping them, fsck of
# leftovers, and `strata diff` of a writable layer prepared by hand in the driver's overlayfs
# format (whiteouts, an opaque directory, a renamed directory, a metadata-only copy). Then, with
# a container mount (stratafs --container), the union view, mounted containers in ps/rm/rmi,
# `strata commit` (round trip through save/load and a mount of the committed image) and
# `strata export`, each compared with the tree the changes should give.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd setfattr getfattr mknod tar
[ "$(id -u)" = 0 ] || fail "needs root: whiteouts are device nodes and overlay markers trusted.* xattrs"

# Every mount under WORK goes at exit, also on failure (the temporary mounts strata makes under
# the store's tmp/ included).
at_exit unmount_under_work
treedump() { "$PYTHON" "$STRATA_SRC/tests/testutil/treedump.py" "$1" --no-mtime; }

# --- the image ---
step "image"
L1=$WORK/l1
mkdir -p "$L1"/{etc,usr/share/doc/b,usr/bin,usr/lib,opaque/y,keep}
echo "root:x:0:0::/root:/bin/sh" > "$L1/etc/passwd"
echo "root:x:0:" > "$L1/etc/group"
echo "127.0.0.1 localhost" > "$L1/etc/hosts"
echo "doc a" > "$L1/usr/share/doc/a"
echo "doc c" > "$L1/usr/share/doc/b/c"
printf '#!/bin/sh\necho tool\n' > "$L1/usr/bin/tool"
chmod 755 "$L1/usr/bin/tool"
ln "$L1/usr/bin/tool" "$L1/usr/bin/tool-link"
ln -s tool "$L1/usr/bin/alias"
head -c $((9 << 20)) /dev/urandom > "$L1/usr/lib/big"
echo "old x" > "$L1/opaque/x"
echo "old z" > "$L1/opaque/y/z"
echo kept > "$L1/keep/file"
setfattr -n user.color -v blue "$L1/keep/file"
IMAGE_ID=$(mkimage --format docker-archive -o "$WORK/app.tar" --tag test/app:1 --layer "$L1" --cmd '["sh"]')
expect_rc 0 load -i "$WORK/app.tar"
SHORT_IMAGE=${IMAGE_ID#sha256:}
SHORT_IMAGE=${SHORT_IMAGE:0:12}

# --- create ---
step "create"
WEB=$(strata_ok create --name web test/app:1)
assert_match "$WEB" '^[0-9a-f]{64}$' "create prints the full ID"
WEB2=$(strata_ok create --name web2 test/app:1 sh -c "echo hi; exit 3")
ANON=$(strata_ok create "$SHORT_IMAGE")
for id in "$WEB" "$WEB2" "$ANON"; do
  [ -d "$STRATA_ROOT/containers/$id/upper" ] || fail "containers/$id/upper missing"
  [ -d "$STRATA_ROOT/containers/$id/work" ] || fail "containers/$id/work missing"
  [ -f "$STRATA_ROOT/containers/$id/lock" ] || fail "containers/$id/lock missing"
done
assert_eq "" "$(ls -A "$STRATA_ROOT/tmp")" "tmp/ after create"
expect_rc 1 create --name web test/app:1
assert_eq "Error: Conflict. The container name \"/web\" is already in use by container \"$WEB\". You have to remove (or rename) that container to be able to reuse that name." "$ERR" "duplicate name"
expect_rc 1 create --name 'bad name' test/app:1
assert_eq "Error: Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" "$ERR" "invalid name"
expect_rc 1 create test/nosuch
assert_eq "Error: No such image: test/nosuch" "$ERR" "unknown image"
expect_rc 2 create
assert_eq "3" "$(ls "$STRATA_ROOT/containers" | wc -l | tr -d ' ')" "container directories"

# --- ps ---
step "ps"
expect_rc 0 ps
assert_eq "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES" "$OUT" "ps lists only mounted containers"
expect_rc 0 ps -a
assert_eq 4 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "ps -a lines"
assert_match "$(printf '%s\n' "$OUT" | head -1)" '^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$' "ps header"
web_line=$(printf '%s\n' "$OUT" | grep ' web$')
assert_match "$web_line" "^${WEB:0:12} +test/app:1 +\"sh\" +(Less than a second|[0-9]+ seconds?) ago +Created +web$" "ps row of web"
web2_line=$(printf '%s\n' "$OUT" | grep ' web2$')
assert_contains "$web2_line" '"sh -c echo hi; exit…"' "COMMAND truncated to 20 as Docker"
anon_name=$(strata_ok ps -a --format '{{.Names}} {{.ID}}' | awk -v id="${ANON:0:12}" '$2 == id { print $1 }')
assert_match "$anon_name" '^[a-z]+_[a-z]+$' "generated name"
assert_contains "$(printf '%s\n' "$OUT" | grep " $anon_name\$")" " $SHORT_IMAGE " "IMAGE as it was named"
assert_eq "$(printf '%s\n' "${WEB:0:12}" "${WEB2:0:12}" "${ANON:0:12}" | sort)" "$(strata_ok ps -aq | sort)" "ps -aq"
assert_eq "$(printf '%s\n' "$WEB" "$WEB2" "$ANON" | sort)" "$(strata_ok ps -aq --no-trunc | sort)" "ps -aq --no-trunc"
expect_rc 0 ps -a --no-trunc --format '{{.Names}}|{{.Command}}'
assert_contains "$OUT" 'web2|"sh -c echo hi; exit 3"' "--no-trunc command"
json=$(strata_ok ps -a --format json | grep '"Names":"web"')
assert_eq "Created created 0B" "$(json_eval 'j["Status"] + " " + j["State"] + " " + j["Size"]' <<<"$json")" "ps json"
CREATED_TABLE=$(strata_ok container ls -a --format 'table {{.CreatedAt}}')
assert_eq "CREATED AT" "$(printf '%s\n' "$CREATED_TABLE" | sed -n '1s/ *$//p')" "CreatedAt header"

# --- images that containers use ---
step "rmi and prune keep images containers use"
expect_rc 1 rmi test/app:1
assert_match "$ERR" "^Error: conflict: unable to remove repository reference \"test/app:1\" \(must force\) - container [0-9a-f]{12} is using its referenced image $SHORT_IMAGE$" "rmi of a used tag"
expect_rc 1 rmi "$SHORT_IMAGE"
assert_match "$ERR" "^Error: conflict: unable to delete $SHORT_IMAGE \(must be forced\) - image is being used by stopped container [0-9a-f]{12}$" "rmi of a used ID"
expect_rc 0 image prune -a -f
assert_not_contains "$OUT" "$IMAGE_ID" "prune -a"
expect_rc 0 rmi -f test/app:1
assert_eq "Untagged: test/app:1" "$OUT" "rmi -f only untags"
assert_contains "$(strata_ok images)" "$SHORT_IMAGE" "the image stays, dangling"
expect_rc 0 image prune -f
assert_contains "$(strata_ok images)" "$SHORT_IMAGE" "prune keeps a dangling image a container uses"
assert_match "$(strata_ok ps -a --format '{{.Names}} {{.Image}}' | grep '^web ')" "^web $SHORT_IMAGE\$" "IMAGE shows the ID once the name is gone"
expect_rc 0 tag "$SHORT_IMAGE" test/app:1

# --- diff of a hand-made writable layer ---
step "diff"
U=$STRATA_ROOT/containers/$WEB/upper
mkdir -p "$U"/{etc,opaque,newdir,usr/share/moved}
mknod "$U/etc/group" c 0 0                                      # rm /etc/group
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$U/etc/passwd"     # rewritten
echo "new file" > "$U/etc/new"
setfattr -n user.mood -v fresh "$U/etc/new"
# chmod 600 /etc/hosts: a metadata-only copy, its data still the image's object
hosts_size=$(stat -c %s "$L1/etc/hosts")
truncate -s "$hosts_size" "$U/etc/hosts"
chmod 600 "$U/etc/hosts"
setfattr -n trusted.overlay.metacopy "$U/etc/hosts"
setfattr -n trusted.strata.object -v "sha256:$(sha256_of "$L1/etc/hosts")" "$U/etc/hosts"
setfattr -n trusted.overlay.opaque -v y "$U/opaque"               # rm -rf /opaque/*; echo > /opaque/x
echo "new x" > "$U/opaque/x"
echo f > "$U/newdir/f"
ln -s ../etc/new "$U/newdir/link"
mkfifo "$U/newdir/fifo"
mknod "$U/usr/share/doc" c 0 0                                   # mv /usr/share/doc /usr/share/moved
setfattr -n trusted.overlay.redirect -v /usr/share/doc "$U/usr/share/moved"
echo added > "$U/usr/share/moved/added"
# a 4 KiB write at 8192 into /usr/lib/big: a metadata-only copy whose one data block overrides
# the object there
mkdir -p "$U/usr/lib"
truncate -s "$(stat -c %s "$L1/usr/lib/big")" "$U/usr/lib/big"
head -c 4096 /dev/urandom > "$WORK/block"
dd if="$WORK/block" of="$U/usr/lib/big" bs=4096 seek=2 conv=notrunc status=none
setfattr -n trusted.overlay.metacopy "$U/usr/lib/big"
setfattr -n trusted.strata.object -v "sha256:$(sha256_of "$L1/usr/lib/big");overrides" "$U/usr/lib/big"
expect_rc 0 diff web
assert_eq "C /etc
D /etc/group
C /etc/hosts
A /etc/new
C /etc/passwd
A /newdir
A /newdir/f
A /newdir/fifo
A /newdir/link
C /opaque
C /opaque/x
D /opaque/y
C /usr
C /usr/lib
C /usr/lib/big
C /usr/share
D /usr/share/doc
A /usr/share/moved
A /usr/share/moved/a
A /usr/share/moved/added
A /usr/share/moved/b
A /usr/share/moved/b/c" "$OUT" "strata diff web"
expect_rc 0 container diff "${WEB:0:12}"
assert_eq 22 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "container diff by ID prefix"
assert_eq "" "$(strata_ok diff web2)" "diff of an untouched container"
expect_rc 1 diff nosuch
assert_eq "Error: No such container: nosuch" "$ERR" "diff of an unknown container"

# The tree the changes give: the image's, changed the same way (compared without mtimes).
EXPECTED=$WORK/expected
cp -a "$L1" "$EXPECTED"
rm "$EXPECTED/etc/group"
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$EXPECTED/etc/passwd"
echo "new file" > "$EXPECTED/etc/new"
setfattr -n user.mood -v fresh "$EXPECTED/etc/new"
chmod 600 "$EXPECTED/etc/hosts"
rm -r "$EXPECTED/opaque/y"
echo "new x" > "$EXPECTED/opaque/x"
mkdir "$EXPECTED/newdir"
echo f > "$EXPECTED/newdir/f"
ln -s ../etc/new "$EXPECTED/newdir/link"
mkfifo "$EXPECTED/newdir/fifo"
mv "$EXPECTED/usr/share/doc" "$EXPECTED/usr/share/moved"
echo added > "$EXPECTED/usr/share/moved/added"
dd if="$WORK/block" of="$EXPECTED/usr/lib/big" bs=4096 seek=2 conv=notrunc status=none
treedump "$EXPECTED" > "$WORK/expected.txt"

# --- rm, fsck ---
step "rm and fsck"
expect_rc 1 rm "$anon_name" nosuch
assert_eq "$anon_name" "$OUT" "rm prints the name given"
assert_eq "Error: No such container: nosuch" "$ERR" "rm of an unknown container"
[ ! -e "$STRATA_ROOT/containers/$ANON" ] || fail "rm left containers/$ANON"
assert_not_contains "$(strata_ok ps -a)" "$anon_name" "ps -a after rm"
mkdir -p "$STRATA_ROOT/containers/$(printf 'e%.0s' {1..64})/upper/deep" "$STRATA_ROOT/tmp/container-x/upper"
expect_rc 0 fsck
assert_contains "$OUT" "without a record: removed" "fsck removes a container directory without a record"
assert_contains "$OUT" "tmp/container-x" "fsck removes a half-built container"
[ ! -e "$STRATA_ROOT/containers/$(printf 'e%.0s' {1..64})" ] || fail "fsck left the orphan directory"
expect_rc 0 fsck
assert_contains "$OUT" ": consistent" "fsck after repair"
[ -e "$U/etc/group" ] || fail "fsck touched a container's layer"
# What a crash can take from a container made without syncs (run --rm): its work directory and
# lock file, which fsck makes again.
rmdir "$STRATA_ROOT/containers/$WEB2/work"
rm "$STRATA_ROOT/containers/$WEB2/lock"
expect_rc 0 fsck -n
assert_contains "$OUT" "work directory containers/$WEB2/work missing: would be recreated" "fsck -n: a missing work directory"
assert_contains "$OUT" "lock file containers/$WEB2/lock missing: would be recreated" "fsck -n: a missing lock file"
expect_rc 0 fsck
[ -d "$STRATA_ROOT/containers/$WEB2/work" ] && [ -f "$STRATA_ROOT/containers/$WEB2/lock" ] ||
  fail "fsck did not recreate web2's work directory and lock file"
expect_rc 0 fsck
assert_contains "$OUT" ": consistent" "fsck after recreating them"

# --- mount --container: command-line checks (no driver needed) ---
step "mount --container usage"
expect_rc 2 mount --container web
expect_rc 2 mount --container web "$WORK/a" "$WORK/b"
expect_rc 2 mount --container web --layer 1 "$WORK/a"

# --- from here on: a container mount (stratafs --container) ---
step "container mount (needs stratafs --container)"
mkdir -p "$WORK/cmnt"
expect_rc 0 mount --container web "$WORK/cmnt"
treedump "$WORK/cmnt" > "$WORK/view.txt"
diff -u "$WORK/expected.txt" "$WORK/view.txt" || fail "the container view differs from the expected tree"
assert_eq "127.0.0.1 localhost" "$(cat "$WORK/cmnt/etc/hosts")" "a metacopy file reads the image's data"
expect_rc 0 ps
assert_contains "$OUT" "Mounted at $WORK/cmnt" "ps shows the mounted container"
assert_contains "$OUT" " web" "ps lists the mounted container without -a"
expect_rc 1 rm web
assert_eq "Error: cannot remove container \"/web\": container is mounted at $WORK/cmnt: unmount it before removing or force remove" "$ERR" "rm of a mounted container"
expect_rc 1 rmi -f "$SHORT_IMAGE"
assert_match "$ERR" "^Error: conflict: unable to delete $SHORT_IMAGE \(cannot be forced\) - image is being used by running container ${WEB:0:12}$" "rmi -f of an image a mounted container uses"

# commit from the live mount
step "commit"
COMMITTED=$(strata_ok commit -m "my change" -a "Tester <t@example.com>" web test/committed:1)
assert_match "$COMMITTED" '^sha256:[0-9a-f]{64}$' "commit prints the image ID"
expect_rc 0 umount "$WORK/cmnt"
expect_rc 0 history --no-trunc --format '{{.CreatedBy}}|{{.Comment}}' test/committed:1
assert_eq "strata commit|my change" "$(printf '%s\n' "$OUT" | head -1)" "history entry of the commit"
expect_rc 0 inspect test/committed:1
assert_eq "Tester <t@example.com>" "$(json_eval 'j[0]["Author"]' <<<"$OUT")" "Author"
assert_eq 2 "$(json_eval 'len(j[0]["RootFS"]["Layers"])' <<<"$OUT")" "the layer is appended"
assert_eq '["sh"]' "$(json_eval 'j[0]["Config"]["Cmd"]' <<<"$OUT")" "Cmd kept"
# commit from a temporary read-only mount, with the container's command
WEB2_COMMIT=$(strata_ok commit web2 test/web2)
assert_eq '["sh", "-c", "echo hi; exit 3"]' "$(strata_ok inspect test/web2:latest | json_eval 'j[0]["Config"]["Cmd"]')" "the container's command"
assert_eq "" "$(ls -A "$STRATA_ROOT/tmp")" "the temporary mount is gone"
# round trip: save, load into another store, mount, compare
expect_rc 0 save -o "$WORK/committed.tar" test/committed:1
FIRST_ROOT=$STRATA_ROOT
new_root
expect_rc 0 load -i "$WORK/committed.tar"
assert_contains "$OUT" "Loaded image: test/committed:1" "load of the committed image"
assert_eq "$COMMITTED" "$(strata_ok inspect --format '{{.Id}}' test/committed:1)" "image ID after save/load"
mkdir -p "$WORK/committed"
expect_rc 0 mount test/committed:1 "$WORK/committed"
treedump "$WORK/committed" > "$WORK/committed.txt"
expect_rc 0 umount "$WORK/committed"
diff -u "$WORK/expected.txt" "$WORK/committed.txt" || fail "the committed image differs from the container's view"
STRATA_ROOT=$FIRST_ROOT

# export
step "export"
expect_rc 0 export -o "$WORK/web.tar" web
mkdir "$WORK/exported"
tar --xattrs --xattrs-include='*' -xpf "$WORK/web.tar" -C "$WORK/exported"
treedump "$WORK/exported" > "$WORK/exported.txt"
diff -u "$WORK/expected.txt" "$WORK/exported.txt" || fail "the exported tree differs from the container's view"
"$STRATA_BIN" export web2 > "$WORK/web2.tar" || fail "export to stdout"
# grep reads to the end (no -q): under pipefail, tar must not die of SIGPIPE.
tar -tf "$WORK/web2.tar" | grep -x 'etc/passwd' >/dev/null || fail "export to stdout lacks etc/passwd"
assert_eq "" "$(ls -A "$STRATA_ROOT/tmp")" "export's temporary mount is gone"

# rm -f of a mounted container unmounts it
step "rm -f"
expect_rc 0 mount --container web2 "$WORK/cmnt"
expect_rc 0 rm -f web2
assert_eq "web2" "$OUT" "rm -f output"
grep -q " $WORK/cmnt " /proc/mounts && fail "rm -f left the container mounted"
[ ! -e "$STRATA_ROOT/containers/$WEB2" ] || fail "rm -f left containers/$WEB2"
expect_rc 0 fsck
assert_contains "$OUT" ": consistent" "fsck at the end"

pass
