#!/usr/bin/env bash
# From a fresh Debian 12 machine: install what strata needs, build it, and run the main job on a
# bundled demo image (made from Debian's busybox-static, no network): load it into a store, then
# list, trace and inspect it, mount it and read it with ordinary tools, write into a container
# of it, show the container's changes and commit them as a new image, run commands in containers
# of it (in the foreground, and in the background with exec and stop), and show what
# deduplication saves.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

strata=build/tools/strata
export STRATA_ROOT=${STRATA_ROOT:-$repo/build/quickstart-store}
scripts/make-demo-image.sh build/demo-image.tar

run() { printf '\n$ %s\n' "$*"; "$@"; }
run "$strata" load -i build/demo-image.tar
run "$strata" images
run "$strata" history strata-demo
run "$strata" inspect --format '{{.Id}} {{.Os}}/{{.Architecture}} layers={{len .RootFS.Layers}} cmd={{json .Config.Cmd}}' strata-demo
run "$strata" tag strata-demo strata-demo:v1
run "$strata" save -o build/demo-saved.tar strata-demo:v1
mnt=$(mktemp -d /tmp/strata-demo-mnt.XXXXXX)
trap 'if grep -q " $mnt fuse" /proc/mounts; then "$strata" umount "$mnt" || umount -l "$mnt"; fi; rmdir "$mnt"' EXIT
run "$strata" mount strata-demo "$mnt"
run ls -l "$mnt" "$mnt/app"
run find "$mnt/etc" -type f
run cat "$mnt/app/hello.txt"
run "$strata" umount "$mnt"
# A container: the image plus a writable layer; the image itself never changes.
"$strata" rm -f quickstart-demo >/dev/null 2>&1 || true
run "$strata" create --name quickstart-demo strata-demo
run "$strata" mount --container quickstart-demo "$mnt"
run sh -c "echo 'written in a container' > '$mnt/app/note.txt'; rm '$mnt/app/hello.txt'; chmod 0700 '$mnt/etc'"
run ls -l "$mnt/app"
run "$strata" umount "$mnt"
run "$strata" diff quickstart-demo
run "$strata" commit -m "add a note" quickstart-demo strata-demo:noted
run "$strata" history strata-demo:noted
run "$strata" mount strata-demo:noted "$mnt"
run cat "$mnt/app/note.txt"
run "$strata" umount "$mnt"
run "$strata" ps -a
run "$strata" rm quickstart-demo
# Run commands in containers: new namespaces over the union mount, the image's config applied.
if [ "$(id -u)" -eq 0 ]; then
  "$strata" rm -f quickstart-bg >/dev/null 2>&1 || true
  run "$strata" run --rm strata-demo sh -c 'id; hostname; echo "I am PID $$"; cat /app/hello.txt'
  run "$strata" run -d --name quickstart-bg strata-demo sleep 600
  run "$strata" exec quickstart-bg ps -o pid,user,args
  run "$strata" ps
  run "$strata" stop -t 1 quickstart-bg
  run "$strata" rm quickstart-bg
else
  printf '\n(skipping strata run, exec and stop: they need root)\n'
fi
# stratafs in fuse-overlayfs' place: plain directories in overlayfs' format, no store. `mount -t
# fuse.stratafs` finds stratafs in /usr/local/bin, where `cmake --install` puts it.
if [ "$(id -u)" -eq 0 ]; then
  cmake --install build >/dev/null
  layers=$(mktemp -d /tmp/strata-demo-layers.XXXXXX)
  trap 'if grep -q " $mnt fuse" /proc/mounts; then umount "$mnt" || umount -l "$mnt"; fi; rmdir "$mnt"; rm -rf "$layers"' EXIT
  mkdir -p "$layers"/{lower,middle,upper,work}
  echo 'from the lower layer' > "$layers/lower/kept.txt"
  echo 'deleted in the middle layer' > "$layers/lower/gone.txt"
  mknod "$layers/middle/gone.txt" c 0 0  # a whiteout, in overlayfs' format
  echo 'from the middle layer' > "$layers/middle/added.txt"
  run mount -t fuse.stratafs -o "lowerdir=$layers/middle:$layers/lower,upperdir=$layers/upper,workdir=$layers/work" stratafs "$mnt"
  run ls -l "$mnt"
  run sh -c "echo 'written through the mount' > '$mnt/new.txt'; rm '$mnt/kept.txt'"
  run umount "$mnt"
  run ls -l "$layers/upper"
fi
run "$strata" system df
run "$strata" fsck
printf '\nThe store is at %s (set STRATA_ROOT to choose another).\n' "$STRATA_ROOT"
