#!/usr/bin/env bash
# strata run / start / exec / stop / bundle on the busybox demo image and on an image made of
# Debian's own dynamically linked binaries: exit codes (0, 42, 126, 127, 125, signals), image
# config (env, working dir, user, entrypoint/cmd), isolation (PID 1, hostname, /proc, /dev,
# ro /sys, --network none), bind mounts (ro enforced), stdin as a pipe and a pty, signals
# forwarded, the writable layer (diff, kept across start; the mount points strata made kept out
# of diff and commit), --rm leaving nothing behind and its layer volatile, no
# leftover processes or mounts, and the OCI bundle run by runc.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root: namespaces, mounts and pivot_root"
need_cmd script runc ldd

# Whatever is still mounted under WORK goes at exit (containers' own mounts live in the store).
at_exit unmount_under_work
mounts_under_store() { awk -v w="$STRATA_ROOT" 'index($2, w) == 1' /proc/mounts | wc -l | tr -d ' '; }

step "images"
demo_image "$WORK/demo.tar" >/dev/null
expect_rc 0 load -i "$WORK/demo.tar"

# A Debian image: bash, coreutils and their libraries copied from this machine.
DEB=$WORK/debian
mkdir -p "$DEB"/{etc,tmp,root,home/app}
chmod 1777 "$DEB/tmp"
for bin in /bin/bash /usr/bin/id /usr/bin/cat /usr/bin/ls /usr/bin/env /usr/bin/touch /usr/bin/sort /usr/bin/grep; do
  real=$(readlink -f "$bin")
  mkdir -p "$DEB$(dirname "$bin")"
  cp "$real" "$DEB$bin"
  for lib in $(ldd "$real" | grep -o '/[^ ]*'); do
    mkdir -p "$DEB$(dirname "$lib")"
    cp -n "$(readlink -f "$lib")" "$DEB$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/bash\n' > "$DEB/etc/passwd"
printf 'root:x:0:\nusers:x:100:app\napp:x:1000:\n' > "$DEB/etc/group"
chown 1000:1000 "$DEB/home/app"
mkimage --format docker-archive -o "$WORK/debian.tar" --tag test/debian:1 --layer "$DEB" \
  --env PATH=/usr/bin:/bin --env GREETING=hello --workdir /home/app --cmd '["bash"]' >/dev/null
expect_rc 0 load -i "$WORK/debian.tar"

step "echo and exit codes"
expect_rc 0 run --rm strata-demo echo hello
assert_eq "hello" "$OUT" "echo"
# Docker's -X=VALUE for a short flag (-i=false) is strata's too; the container's own command line
# (after IMAGE) is passed as given, even where it looks like one of run's flags.
expect_rc 0 run --rm -i=false -e GREETING=hi strata-demo echo -t=1 -i=false
assert_eq "-t=1 -i=false" "$OUT" "-X=VALUE before IMAGE and in the command"
expect_rc 0 run --rm -e=GREETING=hi strata-demo sh -c 'echo "$GREETING"'
assert_eq "hi" "$OUT" "-e=K=V"
expect_rc 42 run --rm strata-demo sh -c 'exit 42'
expect_rc 127 run --rm strata-demo no-such-command
assert_contains "$ERR" 'exec: "no-such-command": executable file not found in $PATH'
expect_rc 127 run --rm strata-demo /no/such/path
expect_rc 126 run --rm strata-demo /etc/passwd
assert_contains "$ERR" "Permission denied"
expect_rc 125 run --rm no-such-image:1 true
expect_rc 125 run --rm --network bridge strata-demo true
assert_contains "$ERR" "bridge"
expect_rc 125 run --rm -v relative:/data strata-demo true
assert_contains "$ERR" "relative:/data"
expect_rc 125 run --rm --bogus strata-demo true
assert_contains "$ERR" "unknown flag: --bogus"
expect_rc 125 run --rm --nmae x strata-demo true
assert_contains "$ERR" "unknown flag: --nmae"
expect_rc 2 create --bogus strata-demo
expect_rc 125 run --rm -u nobody-at-all strata-demo true
assert_contains "$ERR" "unable to find user nobody-at-all"
assert_eq "" "$(strata_ok ps -aq)" "failed runs with --rm leave no container"
assert_eq 0 "$(mounts_under_store)" "mounts after --rm runs"

step "image config: env, working dir, entrypoint, cmd"
expect_rc 0 run --rm test/debian:1 bash -c 'echo "$GREETING $PWD $HOME"; env | sort | grep -E "^(HOSTNAME|PATH)="'
assert_eq "hello /home/app /root
HOSTNAME=$(echo "$OUT" | sed -n 's/^HOSTNAME=//p')
PATH=/usr/bin:/bin" "$OUT" "env of the Debian image"
printf 'FROM_FILE=1\n# comment\nGREETING=from-file\n' > "$WORK/env.list"
expect_rc 0 run --rm --env-file "$WORK/env.list" -e GREETING=from-flag -e EXTRA=x -w /srv/new/dir test/debian:1 bash \
  -c 'echo "$FROM_FILE $GREETING $EXTRA $PWD"'
assert_eq "1 from-flag x /srv/new/dir" "$OUT" "-e over --env-file, -w created"
expect_rc 0 run --rm --entrypoint /bin/echo strata-demo a b
assert_eq "a b" "$OUT" "--entrypoint"
expect_rc 0 run --rm strata-demo pwd
assert_eq "/app" "$OUT" "the image's WorkingDir"

step "users"
expect_rc 0 run --rm -u app test/debian:1 bash -c 'id; echo $HOME'
assert_eq "uid=1000(app) gid=1000(app) groups=1000(app),100(users)
/home/app" "$OUT" "-u app"
expect_rc 0 run --rm -u 1000:100 strata-demo id
assert_match "$OUT" '^uid=1000\(app\) gid=100' "-u uid:gid"
expect_rc 1 run --rm -u app test/debian:1 bash -c 'touch /etc/passwd'
assert_contains "$ERR" "Permission denied" "uid 1000 writing a root-owned file"
expect_rc 0 run --rm -u app strata-demo sh -c 'grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'
assert_eq "CapEff:	0000000000000000
NoNewPrivs:	1" "$OUT" "a non-root user has no capabilities and no_new_privs"
expect_rc 0 run --rm strata-demo sh -c 'grep -E "^CapBnd" /proc/self/status'
assert_eq "CapBnd:	00000000a80425fb" "$OUT" "root keeps only Docker's default capabilities"

# A user that the container's own layer added to /etc/passwd and /etc/group: once the layer holds
# anything, the files are read through the mount, not from the image in the store.
expect_rc 0 create --name newuser -u newu strata-demo sh -c 'id; echo $HOME'
mkdir -p "$WORK/nu"
expect_rc 0 mount --container newuser "$WORK/nu"
echo 'newu:x:4242:4243:new:/home/newu:/bin/sh' >> "$WORK/nu/etc/passwd"
echo 'newg:x:4243:' >> "$WORK/nu/etc/group"
expect_rc 0 umount "$WORK/nu"
expect_rc 0 start -a newuser
assert_eq "uid=4242(newu) gid=4243(newg)
/home/newu" "$OUT" "a user the container's layer added"
expect_rc 0 rm newuser

step "isolation"
expect_rc 0 run --rm --hostname box strata-demo sh -c 'echo $$; hostname; cat /etc/hostname; [ "$(ps -o pid | wc -l)" -le 5 ] && echo own-tree'
assert_eq "1
box
box
own-tree" "$OUT" "PID 1, hostname, a process tree of its own"
expect_rc 0 run --name named strata-demo hostname
assert_match "$OUT" '^[0-9a-f]{12}$' "default hostname: the short container ID"
expect_rc 0 rm named
expect_rc 0 run --rm strata-demo sh -c 'ls /dev | tr "\n" " "; touch /sys/x 2>&1; grep -c " /sys sysfs ro" /proc/mounts'
assert_eq "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero touch: /sys/x: Read-only file system
1" "$OUT" "/dev and a read-only /sys"
expect_rc 0 run --rm --network none strata-demo sh -c 'ls /sys/class/net'
assert_eq "lo" "$OUT" "--network none has only lo"
expect_rc 0 run --rm --network none strata-demo sh -c 'ip -o link show lo | grep -c UP'
assert_eq "1" "$OUT" "lo is up"
expect_rc 1 run --rm --read-only strata-demo touch /app/x
assert_contains "$ERR" "Read-only file system"

step "bind mounts"
mkdir -p "$WORK/vol"
echo from-host > "$WORK/vol/in"
expect_rc 0 run --rm -v "$WORK/vol:/data" strata-demo sh -c 'cat /data/in; echo from-container > /data/out'
assert_eq "from-host" "$OUT"
assert_eq "from-container" "$(cat "$WORK/vol/out")" "a rw volume writes to the host"
expect_rc 1 run --rm -v "$WORK/vol:/data:ro" strata-demo sh -c 'cat /data/in; echo x > /data/out2'
assert_contains "$ERR" "Read-only file system"
[ ! -e "$WORK/vol/out2" ] || fail ":ro volume was written"
expect_rc 0 run --rm -v "$WORK/made-by-run:/made" strata-demo true
[ -d "$WORK/made-by-run" ] || fail "a missing volume source is created, as docker run -v does"

step "stdin and tty"
OUT=$(echo piped | "$STRATA_BIN" run --rm -i strata-demo sh -c 'cat; echo done')
assert_eq "piped
done" "$OUT" "-i with a pipe"
OUT=$(echo piped | "$STRATA_BIN" run --rm strata-demo cat)
assert_eq "" "$OUT" "without -i stdin is /dev/null"
OUT=$(script -qec "stty cols 91 rows 33; $STRATA_BIN run --rm -t strata-demo sh -c 'tty; stty size; echo \$TERM'" /dev/null | tr -d '\r')
assert_eq "/dev/pts/0
33 91
xterm" "$OUT" "-t: a pty of the container's own devpts with the window size"
OUT=$(printf 'echo typed-$((6*7))\nexit 9\n' | script -qec "$STRATA_BIN run --rm -it strata-demo sh" /dev/null | tr -d '\r' || true)
assert_contains "$OUT" "typed-42" "-it relays the terminal"

step "signals and stop"
"$STRATA_BIN" run --name sig strata-demo sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.05; done' \
  >"$WORK/sig.out" 2>&1 &
RUN_PID=$!
track_pid $RUN_PID
for _ in $(seq 100); do grep -q ready "$WORK/sig.out" 2>/dev/null && break; sleep 0.05; done
kill -TERM $RUN_PID
rc=0
wait $RUN_PID || rc=$?
assert_eq 3 "$rc" "SIGTERM forwarded to the container; its exit code is strata's"
assert_contains "$(cat "$WORK/sig.out")" "got-term"
expect_rc 0 rm sig
"$STRATA_BIN" run --name pid1-no-trap strata-demo sleep 1234.5 >/dev/null 2>&1 &
RUN_PID=$!
track_pid $RUN_PID
for _ in $(seq 200); do [ "$("$STRATA_BIN" ps --format '{{.State}}')" = running ] && break; sleep 0.05; done
expect_rc 0 ps --format '{{.Names}} {{.State}}'
assert_eq "pid1-no-trap running" "$OUT" "ps shows the running container"
expect_rc 0 stop -t 1 pid1-no-trap
rc=0
wait $RUN_PID || rc=$?
assert_eq 137 "$rc" "PID 1 ignores SIGTERM; stop kills it after -t"
expect_rc 0 ps -a --format '{{.Names}} {{.State}} {{.Status}}'
assert_match "$OUT" '^pid1-no-trap exited Exited \(137\) ' "ps after stop"
expect_rc 0 rm pid1-no-trap

step "detached, exec, rm of a running container"
CID=$(strata_ok run -d --name bg -e FROM_RUN=1 strata-demo sh -c 'echo started; sleep 1234.5')
assert_match "$CID" '^[0-9a-f]{64}$' "run -d prints the ID"
expect_rc 0 exec bg sh -c 'echo $$ $FROM_RUN $PWD; ps -o args | grep -c "^sleep 1234.5$"'
assert_match "$OUT" '^[0-9]+ 1 /app
1$' "exec sees the container's env, dir and processes"
expect_rc 0 exec -u app -w /tmp -e X=y bg sh -c 'id -u; pwd; echo $X'
assert_eq "1000
/tmp
y" "$OUT" "exec -u -w -e"
expect_rc 143 exec bg sh -c 'kill -TERM $$'
expect_rc 7 exec bg sh -c 'exit 7'
expect_rc 127 exec bg nope
expect_rc 0 exec bg sh -c 'echo written-by-exec > /app/exec.txt'
expect_rc 0 exec -d bg sh -c 'sleep 0.3; echo late > /app/late.txt'
assert_eq "" "$OUT" "exec -d prints nothing"
for _ in $(seq 100); do "$STRATA_BIN" exec bg cat /app/late.txt >/dev/null 2>&1 && break; sleep 0.05; done
expect_rc 0 exec bg cat /app/late.txt
assert_eq "late" "$OUT" "a detached exec runs on after strata exec returned"
expect_rc 1 rm bg
assert_contains "$ERR" "container is running"
assert_eq "started" "$(cat "$STRATA_ROOT/containers/$CID/container.log")" "a detached container's output"
# The container's process on the host, to check that rm -f ends it (by PID: a count of sleeps
# machine-wide would see other runs' processes).
BG_PID=$(json_eval 'j["Pid"]' < "$STRATA_ROOT/containers/$CID/state.json")
assert_match "$BG_PID" '^[1-9][0-9]*$' "the running container's PID in its state"
kill -0 "$BG_PID" || fail "the container's process $BG_PID is not running"
expect_rc 0 rm -f bg
assert_eq "" "$(strata_ok ps -aq)" "rm -f removed the running container"
assert_eq 0 "$(mounts_under_store)" "mounts after rm -f"
# (Its init gone, the kernel ends the rest of its PID namespace; a zombie is an ended process.)
[ ! -e "/proc/$BG_PID" ] || grep -q '^State:[[:space:]]*Z' "/proc/$BG_PID/status" 2>/dev/null ||
  fail "rm -f left the container's process $BG_PID"
expect_rc 125 exec bg true
assert_contains "$ERR" "No such container: bg"

step "the writable layer: diff, start, children"
expect_rc 0 create --name keep strata-demo sh -c 'echo run >> /app/log; cat /app/log; sleep 1234.5 & sleep 1234.5 & exit 0'
expect_rc 0 start -a keep
assert_eq "run" "$OUT" "first start"
expect_rc 0 diff keep
assert_contains "$OUT" "A /app/log"
expect_rc 0 start -a keep
assert_eq "run
run" "$OUT" "the layer is kept across start"
assert_eq 0 "$(ps -eo args | grep -c '^sleep 1234.5$' || true)" "children of an exited container are gone"
assert_eq 0 "$(ps -eo stat,args | grep -c '^Z.*sleep' || true)" "no zombies of the container's children"
assert_eq 0 "$(mounts_under_store)" "no mounts once the container exited"
expect_rc 0 start keep
assert_eq "keep" "$OUT" "start without -a prints the name"
for _ in $(seq 100); do [ "$("$STRATA_BIN" ps -q)" = "" ] && break; sleep 0.05; done
expect_rc 0 ps -a --format '{{.Names}} {{.Status}}'
assert_match "$OUT" '^keep Exited \(0\)' "detached start ran to its end"
expect_rc 0 rm keep

step "the init layer: mount points strata made are not changes"
# strata-demo has /etc/hostname, and no /proc, /dev, /sys, /etc/hosts or /etc/resolv.conf.
expect_rc 0 run --name init strata-demo true
expect_rc 0 diff init
assert_eq "" "$OUT" "diff of a container that ran true (as docker diff: empty)"
expect_rc 0 start -a init
expect_rc 0 diff init
assert_eq "" "$OUT" "diff after a second start"
CID=$(strata_ok run -d --name init2 -v "$WORK/vol:/mnt/vol" strata-demo sleep 1234.5)
expect_rc 0 exec init2 sh -c 'echo changed > /etc/hostname; echo 10.0.0.9 extra >> /etc/hosts; touch /newfile'
assert_eq "changed" "$(cat "$STRATA_ROOT/containers/$CID/hostname")" \
  "a write to /etc/hostname goes to the container's own file, as in Docker"
expect_rc 0 diff init2
assert_eq "A /mnt A /mnt/vol A /newfile" "$(echo $OUT)" \
  "diff shows the container's change and its volume's mount point (as docker diff), not strata's mount points nor writes to bind-mounted files"
expect_rc 0 stop -t 0 init2
expect_rc 0 commit init2 test/init:1
LAYERS=$(strata_ok inspect test/init:1 | json_eval 'len(j[0]["RootFS"]["Layers"])')
mkdir -p "$WORK/initlayer"
track_mount "$WORK/initlayer"
expect_rc 0 mount --layer "$LAYERS" test/init:1 "$WORK/initlayer"
assert_eq "mnt newfile" "$(ls -A "$WORK/initlayer" | tr '\n' ' ' | sed 's/ $//')" \
  "the committed layer holds the change and the volume's mount point alone"
expect_rc 0 umount "$WORK/initlayer"
expect_rc 0 run --rm test/init:1 sh -c 'ls /newfile; cat /etc/hostname'
assert_match "$OUT" '^/newfile
[0-9a-f]{12}$' "the committed image runs, with a hostname of its own"
# As docker export does, export shows the container's whole filesystem, mount points included.
"$STRATA_BIN" export init2 | tar -t > "$WORK/init2.list"
grep -qx 'etc/hosts' "$WORK/init2.list" || fail "export lacks the etc/hosts mount point"
# A made mount point that the user changed (here through a mount of the container) shows.
mkdir -p "$WORK/initmnt"
track_mount "$WORK/initmnt"
expect_rc 0 mount --container init "$WORK/initmnt"
touch "$WORK/initmnt/proc/mine"
echo nameserver 10.0.0.1 > "$WORK/initmnt/etc/resolv.conf"
expect_rc 0 umount "$WORK/initmnt"
expect_rc 0 diff init
assert_eq "C /etc
A /etc/resolv.conf
A /proc
A /proc/mine" "$OUT" "made mount points the user changed"
expect_rc 0 rm init init2
expect_rc 0 rmi test/init:1

step "a supervisor killed with SIGKILL"
expect_rc 0 create --name killed strata-demo sh -c 'test -f /app/once && exit 0; touch /app/once; sleep 1234.5'
"$STRATA_BIN" start -a killed >/dev/null 2>&1 &
RUN_PID=$!
track_pid $RUN_PID
for _ in $(seq 200); do [ "$("$STRATA_BIN" ps --format '{{.State}}')" = running ] && break; sleep 0.05; done
kill -KILL $RUN_PID
wait $RUN_PID 2>/dev/null || true
for _ in $(seq 200); do [ "$(ps -eo args | grep -c '^sleep 1234.5$' || true)" = 0 ] && break; sleep 0.05; done
assert_eq 0 "$(ps -eo args | grep -c '^sleep 1234.5$' || true)" "the container dies with its supervisor"
expect_rc 0 ps -a --format '{{.Names}} {{.State}}'
assert_eq "killed mounted" "$OUT" "the union outlived the supervisor"
expect_rc 0 start -a killed
assert_eq 0 "$(mounts_under_store)" "the next start takes the mount the killed run left, and unmounts it"
expect_rc 0 rm killed

step "--rm leaves nothing"
expect_rc 0 run --rm strata-demo sh -c 'echo x > /app/file; sleep 1234.5 & exit 0'
assert_eq "" "$(strata_ok ps -aq)" "containers after --rm"
assert_eq "" "$(ls "$STRATA_ROOT/containers")" "container directories after --rm"
assert_eq 0 "$(mounts_under_store)" "mounts after --rm"
assert_eq 0 "$(ps -eo args | grep -c '^sleep 1234.5$' || true)" "processes after --rm"

step "--rm: a volatile layer, refused once a crash may have cut it"
# As Podman mounts --rm containers volatile, strata syncs nothing in their layer (it is removed
# right after); a marker, made durable before the first write, keeps any later mount from
# trusting the layer should the container outlive its run.
"$STRATA_BIN" run --rm --name vol strata-demo sh -c 'echo data > /app/f; sleep 1234.5' >/dev/null 2>&1 &
RUN_PID=$!
track_pid $RUN_PID
for _ in $(seq 200); do [ "$("$STRATA_BIN" ps --format '{{.State}}')" = running ] && break; sleep 0.05; done
CID=$(strata_ok ps -q --no-trunc)
[ -f "$STRATA_ROOT/containers/$CID/volatile" ] || fail "a --rm container's directory has no volatile marker"
expect_rc 0 exec vol sh -c 'dd if=/dev/zero of=/app/g bs=4k count=4 conv=fsync 2>/dev/null && sync && cat /app/f && wc -c < /app/g'
assert_eq "data
16384" "$OUT" "writes and syncs in a volatile layer"
kill -KILL $RUN_PID
wait $RUN_PID 2>/dev/null || true
for _ in $(seq 200); do [ "$(ps -eo args | grep -c '^sleep 1234.5$' || true)" = 0 ] && break; sleep 0.05; done
expect_rc 0 ps -a --format '{{.Names}} {{.State}}'
assert_eq "vol mounted" "$OUT" "the --rm container outlived its killed supervisor"
expect_rc 125 start -a vol
assert_contains "$ERR" "container vol was mounted volatile" "start takes no volatile mount left behind"
expect_rc 0 umount "$STRATA_ROOT/containers/$CID/merged"
expect_rc 125 start -a vol
assert_contains "$ERR" "container vol was mounted volatile" "start mounts no volatile layer"
expect_rc 1 commit vol test/vol:1
assert_contains "$ERR" "strata rm vol" "commit reads no volatile layer"
expect_rc 0 run --name durable strata-demo true
DURABLE=$(strata_ok ps -a --no-trunc --format '{{.ID}} {{.Names}}' | awk '$2 == "durable" {print $1}')
[ -n "$DURABLE" ] && [ ! -e "$STRATA_ROOT/containers/$DURABLE/volatile" ] ||
  fail "a container run without --rm was marked volatile"
expect_rc 0 rm vol durable
STRATAFS=${STRATAFS_BIN:-$(dirname "$STRATA_BIN")/../fs/stratafs}
for args in "--volatile strata-demo $WORK/nowhere" "--volatile --read-only --container x $WORK/nowhere"; do
  rc=0; "$STRATAFS" $args >/dev/null 2>&1 || rc=$?
  assert_eq 2 "$rc" "stratafs $args (--volatile is for a writable container)"
done
assert_eq "" "$(strata_ok ps -aq)" "containers after rm"
assert_eq 0 "$(mounts_under_store)" "mounts after rm"

step "OCI bundle run by runc"
expect_rc 0 create --name oci -u app -e FROM_BUNDLE=yes --hostname ocibox strata-demo sh -c 'echo $FROM_BUNDLE; id -u; hostname; echo by-runc > /tmp/runc.txt'
expect_rc 0 bundle oci "$WORK/bundle"
[ -f "$WORK/bundle/config.json" ] || fail "bundle has no config.json"
assert_eq "$WORK/bundle/rootfs" "$(json_eval 'j["root"]["path"]' < "$WORK/bundle/config.json")" "root.path"
OUT=$(runc run --bundle "$WORK/bundle" "strata-test-$$" 2>&1) || fail "runc run failed: $OUT"
runc delete -f "strata-test-$$" >/dev/null 2>&1 || true
assert_eq "yes
1000
ocibox" "$OUT" "runc runs the bundle as strata would"
expect_rc 0 umount "$WORK/bundle/rootfs"
expect_rc 0 diff oci
assert_contains "$OUT" "A /tmp/runc.txt" "what runc wrote is in the container's layer"
expect_rc 0 rm oci

pass
