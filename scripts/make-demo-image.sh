#!/usr/bin/env bash
# Builds the strata demo image without network access, from Debian's
# busybox-static (/bin/busybox), as a `docker save`-style archive tagged
# strata-demo:latest.
#
#   scripts/make-demo-image.sh [OUT]     (default: <repo>/build/demo-image.tar)
#
# Layer 1: bin/busybox plus a symlink bin/<applet> -> busybox for every applet
#          `busybox --list` reports; etc/passwd (root, app uid 1000),
#          etc/group, etc/hostname; root/, tmp/.
# Layer 2: app/hello.txt, app/README.
# Config:  Env PATH=/bin, Cmd ["sh"], WorkingDir /app.
#
# Environment: BUSYBOX (default /bin/busybox), SOURCE_DATE_EPOCH (file mtimes,
# default 1700000000), PYTHON (default python3).  The output is reproducible
# for a given busybox binary.  Prints the image ID.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
mkimage="$repo/tests/testutil/mkimage.py"

out=${1:-"$repo/build/demo-image.tar"}
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-1700000000}
python=${PYTHON:-python3}

if [ ! -x "$busybox" ]; then
  echo "make-demo-image: $busybox not found; install Debian's busybox-static" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "make-demo-image: warning: $busybox is dynamically linked; the image has no libc" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022

# --- layer 1: base
base="$work/base"
mkdir -p "$base/bin" "$base/etc" "$base/root" "$base/tmp"
chmod 0700 "$base/root"
chmod 1777 "$base/tmp"
cp "$busybox" "$base/bin/busybox"
chmod 0755 "$base/bin/busybox"
n=0
while IFS= read -r applet; do
  case "$applet" in
    ''|busybox|*/*) continue ;;
  esac
  ln -s busybox "$base/bin/$applet"
  n=$((n + 1))
done < <("$busybox" --list | LC_ALL=C sort -u)
if [ "$n" -eq 0 ]; then
  echo "make-demo-image: '$busybox --list' listed no applets" >&2
  exit 1
fi

cat >"$base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/app:/bin/sh
EOF
cat >"$base/etc/group" <<'EOF'
root:x:0:
app:x:1000:
EOF
echo strata-demo >"$base/etc/hostname"

# --- layer 2: app
app="$work/app"
mkdir -p "$app/app"
echo "Hello from the strata demo image!" >"$app/app/hello.txt"
cat >"$app/app/README" <<'EOF'
strata demo image
=================

Built by scripts/make-demo-image.sh from Debian's busybox-static, without
network access.  Layer 1 holds busybox and /etc; layer 2 holds /app.

Try:  cat /app/hello.txt
EOF

# Fixed timestamps for reproducible layers.
find "$work/base" "$work/app" -exec touch -h -d "@$epoch" {} +

mkdir -p "$(dirname "$out")"
"$python" "$mkimage" \
  --format docker-archive \
  -o "$out" \
  --tag strata-demo:latest \
  --root-owned \
  --no-xattrs \
  --created "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
  --layer "$base" \
  --layer "$app" \
  --env PATH=/bin \
  --cmd '["sh"]' \
  --workdir /app
echo "make-demo-image: wrote $out ($n busybox applets)" >&2
