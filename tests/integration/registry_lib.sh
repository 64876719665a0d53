# Helpers for the registry tests (test_registry_*.sh); source after lib.sh.
#
#   enter_private_netns          from here on, the registries, skopeo and strata this test starts
#                                run in a private network namespace (NETNS_EXEC) whose only
#                                non-loopback address is NETNS_IP (192.0.2.1, on a veth pair):
#                                a registry "not on localhost" that listens on no host interface.
#                                The namespace goes when the test exits (its holder is a tracked PID)
#   free_port                    prints a free TCP port on 127.0.0.1
#   make_ca DIR                  a CA (DIR/ca.crt) and a server certificate for 127.0.0.1 and
#                                localhost signed by it (DIR/server.crt, DIR/server.key)
#   start_registry NAME [--tls CERTDIR] [--htpasswd FILE] [--token REALM SERVICE ISSUER CERT]
#                  [--addr IPV4]
#                                starts Debian's docker-registry on 127.0.0.1 (or IPV4):<free port>
#                                with its storage and log under $WORK/NAME; sets REG (host:port),
#                                REG_LOG, REG_DATA. Stopped (by PID) when the test exits.
#   start_proxy NAME UPSTREAM [fault_proxy.py options]
#                                sets PROXY (host:port) and PROXY_STATS (JSON lines per request)
#   stop_pid PID                 stops a process this test started
#   strata_image NAME TAG LAYERDIR...  builds an OCI-dir image with mkimage and loads it as NAME:TAG;
#                                prints the image ID
#   skopeo_cp SRC DST            skopeo copy without TLS verification or signature policy
need_cmd docker-registry htpasswd openssl curl skopeo
SKOPEO=(skopeo --insecure-policy)
# The tests talk to 127.0.0.1 only: never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
# No stray credentials from the machine: a private docker config and no Podman auth file.
export DOCKER_CONFIG="$WORK/docker-config"
export REGISTRY_AUTH_FILE="$WORK/podman-auth.json"
# Retries wait 50 ms and up: failure tests stay fast.
export STRATA_REGISTRY_RETRY_DELAY_MS=${STRATA_REGISTRY_RETRY_DELAY_MS:-50}

free_port() {
  "${NETNS_EXEC[@]}" "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

make_ca() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=strata test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || fail "openssl: cannot make the CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" \
    -out "$dir/server.csr" >/dev/null 2>&1 || fail "openssl: cannot make the server key"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" >/dev/null 2>&1 || fail "openssl: cannot sign the server cert"
}

start_registry() {
  local name=$1
  shift
  local tls="" htpasswd="" token_realm="" token_service="" token_issuer="" token_cert="" addr=127.0.0.1
  while [ $# -gt 0 ]; do
    case $1 in
      --tls) tls=$2; shift 2 ;;
      --htpasswd) htpasswd=$2; shift 2 ;;
      --token) token_realm=$2 token_service=$3 token_issuer=$4 token_cert=$5; shift 5 ;;
      --addr) addr=$2; shift 2 ;;
      *) fail "start_registry: unknown option $1" ;;
    esac
  done
  local dir="$WORK/$name" port scheme=http
  mkdir -p "$dir/data"
  port=$(free_port)
  {
    echo "version: 0.1"
    echo "log:"
    echo "  level: info"
    echo "  formatter: text"
    echo "storage:"
    echo "  filesystem:"
    echo "    rootdirectory: $dir/data"
    echo "  delete:"
    echo "    enabled: true"
    echo "http:"
    echo "  addr: $addr:$port"
    echo "  secret: strata-test-secret"
    if [ -n "$tls" ]; then
      scheme=https
      echo "  tls:"
      echo "    certificate: $tls/server.crt"
      echo "    key: $tls/server.key"
    fi
    if [ -n "$htpasswd" ]; then
      echo "auth:"
      echo "  htpasswd:"
      echo "    realm: strata-test"
      echo "    path: $htpasswd"
    elif [ -n "$token_realm" ]; then
      echo "auth:"
      echo "  token:"
      echo "    realm: $token_realm"
      echo "    service: $token_service"
      echo "    issuer: $token_issuer"
      echo "    rootcertbundle: $token_cert"
    fi
  } >"$dir/config.yml"
  # docker-registry reads REGISTRY_* variables as configuration overrides (REGISTRY_AUTH_FILE
  # would be taken for auth.file): start it without ours.
  "${NETNS_EXEC[@]}" env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  local pid=$!
  track_pid "$pid"
  REG_PIDS+=("$pid")
  local i
  for i in $(seq 1 100); do
    if "${NETNS_EXEC[@]}" curl -ks -o /dev/null "$scheme://$addr:$port/v2/"; then
      REG="$addr:$port"
      REG_LOG="$dir/log"
      REG_DATA="$dir/data"
      REG_PID=$pid
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "docker-registry exited: $(tail -5 "$dir/log")"
    sleep 0.1
  done
  fail "docker-registry did not answer on port $port: $(tail -5 "$dir/log")"
}
REG_PIDS=()

# The servers the tests start listen on 127.0.0.1 only. A test that needs a registry on a
# non-loopback address (insecure-registries) gets one here: a network namespace of its own, held
# by a `sleep` started with `unshare --net` (nsenter keeps the PID of what it runs, so the
# registry is still stopped by PID), with lo up and a veth pair carrying 192.0.2.1/24
# (TEST-NET-1, RFC 5737: routed nowhere). A veth pair rather than a dummy link: some kernels
# are built without the dummy driver (the VM these tests were first run on is one).
enter_private_netns() {
  need_cmd unshare nsenter ip
  unshare --net sleep infinity &
  local pid=$! host_ns ns="" i
  track_pid "$pid"
  host_ns=$(readlink /proc/self/ns/net)
  # $! is known before unshare(2) ran: wait until the holder is in a namespace of its own.
  for i in $(seq 1 100); do
    ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || fail "unshare --net exited (no network namespaces?)"
    [ "$ns" != "$host_ns" ] && break
    sleep 0.02
  done
  [ "$ns" != "$host_ns" ] || fail "unshare --net did not enter a new network namespace"
  NETNS_EXEC=(nsenter "--net=/proc/$pid/ns/net" --)
  NETNS_IP=192.0.2.1
  "${NETNS_EXEC[@]}" ip link set lo up &&
    "${NETNS_EXEC[@]}" ip link add strata0 type veth peer name strata1 &&
    "${NETNS_EXEC[@]}" ip addr add "$NETNS_IP/24" dev strata0 &&
    "${NETNS_EXEC[@]}" ip link set strata0 up &&
    "${NETNS_EXEC[@]}" ip link set strata1 up ||
    fail "cannot set up the private network namespace"
  SKOPEO=("${NETNS_EXEC[@]}" "${SKOPEO[@]}")
}

start_proxy() {
  local name=$1 upstream=$2
  shift 2
  local dir="$WORK/$name"
  mkdir -p "$dir"
  rm -f "$dir/port" "$dir/stats"
  "${NETNS_EXEC[@]}" "$PYTHON" "$STRATA_SRC/tests/testutil/fault_proxy.py" --upstream "$upstream" \
    --port-file "$dir/port" --stats "$dir/stats" "$@" >"$dir/log" 2>&1 &
  local pid=$!
  track_pid "$pid"
  local i
  for i in $(seq 1 100); do
    if [ -s "$dir/port" ]; then
      PROXY="127.0.0.1:$(cat "$dir/port")"
      PROXY_STATS="$dir/stats"
      PROXY_PID=$pid
      return 0
    fi
    sleep 0.05
  done
  fail "fault proxy did not start: $(cat "$dir/log")"
}

# Sum of response body bytes of blob GETs the proxy served (optionally only paths containing $1).
proxy_blob_bytes() {
  local match=${1:-}
  if [ ! -f "$PROXY_STATS" ]; then
    echo 0
    return
  fi
  "$PYTHON" -c 'import json, sys
total = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["method"] == "GET" and "/blobs/sha256:" in e["path"] and sys.argv[2] in e["path"]:
        total += e["bytes"]
print(total)' "$PROXY_STATS" "$match"
}

# Number of requests the proxy saw that match METHOD and a path substring.
proxy_count() {
  local method=$1 match=$2
  if [ ! -f "$PROXY_STATS" ]; then
    echo 0
    return
  fi
  "$PYTHON" -c 'import json, sys
print(sum(1 for line in open(sys.argv[1]) for e in [json.loads(line)]
          if e["method"] == sys.argv[2] and sys.argv[3] in e["path"]))' "$PROXY_STATS" "$method" "$match"
}

skopeo_cp() {
  "${SKOPEO[@]}" copy -q --src-tls-verify=false --dest-tls-verify=false "$@" >/dev/null 2>"$WORK/skopeo.err" ||
    fail "skopeo copy $* failed: $(cat "$WORK/skopeo.err")"
}

# strata_image NAME:TAG LAYERDIR...: builds an OCI-dir image and loads it; prints the image ID.
strata_image() {
  local tag=$1
  shift
  local out="$WORK/img-$RANDOM$RANDOM" args=() l
  for l in "$@"; do args+=(--layer "$l"); done
  mkimage --format oci-dir -o "$out" --tag "$tag" --root-owned --no-xattrs "${args[@]}" >"$out.id"
  expect_rc 0 load -q -i "$out"
  cat "$out.id"
}

# A directory of N random files of SIZE bytes under $WORK/NAME (a layer source).
random_layer() {
  local name=$1 files=$2 size=$3 i
  mkdir -p "$WORK/$name/data"
  for i in $(seq 1 "$files"); do head -c "$size" /dev/urandom >"$WORK/$name/data/$name-$i.bin"; done
  echo "$name" >"$WORK/$name/name.txt"
  find "$WORK/$name" -exec touch -h -d @1700000000 {} +
  echo "$WORK/$name"
}
