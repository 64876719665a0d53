#!/usr/bin/env bash
# The store's settings file, ROOT/config.json (strata-config(5)): errors that name the file and
# the key; "keep-blobs" honoured by load and pull, and overridden by --keep-blobs=BOOL;
# "insecure-registries" letting pull/push reach a plain HTTP registry that is not on loopback,
# by host:port or by CIDR, with --tls-verify=true still winning.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

umask 022
config() { mkdir -p "$STRATA_ROOT" && printf '%s\n' "$1" >"$STRATA_ROOT/config.json"; }
blob_files() { find "$STRATA_ROOT/blobs/sha256" -type f -printf '%f\n' 2>/dev/null | sort; }
layer_blobs() { json_eval '"\n".join(sorted(l["digest"].split(":")[1] for l in j["layers"]))' <"$1"; }
config_of() { json_eval 'j["image_id"].split(":")[1]' <"$1"; }

step "a gzip image archive"
l1="$WORK/l1" l2="$WORK/l2"
mkdir -p "$l1/etc" "$l2/opt"
seq 1 20000 >"$l1/etc/numbers"
head -c 50000 /dev/urandom >"$l2/opt/random.bin"
find "$l1" "$l2" -exec touch -h -d @1700000000 {} +
mkimage --format oci-archive --compression gzip -o "$WORK/gz.tar" --tag cfg:gz --summary "$WORK/gz.json" \
  --layer "$l1" --layer "$l2" >/dev/null
KEPT=$( (config_of "$WORK/gz.json"; layer_blobs "$WORK/gz.json") | sort)
CONFIG_ONLY=$(config_of "$WORK/gz.json")

step "a bad config.json fails the commands that read it, naming the file and the key"
bad_config() {  # bad_config JSON EXPECTED-TEXT
  config "$1"
  expect_rc 1 load -q -i "$WORK/gz.tar"
  assert_contains "$ERR" "Error: $STRATA_ROOT/config.json: " "error for $1"
  assert_contains "$ERR" "$2" "error for $1"
  assert_not_contains "$ERR" "Loaded" "error for $1"
}
bad_config '{"keep-blobs": true,' 'not valid JSON: parse error at line 2'
bad_config '{"keep-blobs": "yes"}' '"keep-blobs" must be true or false, not "yes"'
bad_config '{"keep_blobs": true}' 'unknown key "keep_blobs"'
bad_config '{"insecure-registries": "10.0.0.1:5000"}' '"insecure-registries" must be a list'
bad_config '{"insecure-registries": ["ok.lan:5000", "bad host:5000"]}' \
  '"insecure-registries": "bad host:5000" is not a host name, IP address or IP range'
bad_config '{"insecure-registries": ["10.0.0.0/33"]}' '"insecure-registries": "10.0.0.0/33" is neither host[:port]'
expect_rc 1 pull 127.0.0.1:1/nothing:here
assert_contains "$ERR" "$STRATA_ROOT/config.json: \"insecure-registries\"" "pull with a bad config"
expect_rc 1 login -u x --password-stdin 127.0.0.1:1 </dev/null
assert_contains "$ERR" "$STRATA_ROOT/config.json: \"insecure-registries\"" "login with a bad config"
# Commands that use no setting do not read it.
expect_rc 0 images -q
assert_file_count "$STRATA_ROOT/objects" 0 "objects after the refused loads"

step "keep-blobs: true keeps the layer blobs without a flag; --keep-blobs=false overrides it"
new_root
config '{"keep-blobs": true}'
expect_rc 0 load -q -i "$WORK/gz.tar"
assert_eq "$KEPT" "$(blob_files)" "blobs/ with keep-blobs set"
expect_rc 0 fsck -n
assert_match "$OUT" ': consistent$' "fsck -n with kept blobs"
new_root
config '{"keep-blobs": true}'
expect_rc 0 load -q --keep-blobs=false -i "$WORK/gz.tar"
assert_eq "$CONFIG_ONLY" "$(blob_files)" "blobs/ with --keep-blobs=false over the setting"

step "keep-blobs: false (or no file) keeps nothing; --keep-blobs still keeps"
new_root
config '{"keep-blobs": false, "insecure-registries": []}'
expect_rc 0 load -q -i "$WORK/gz.tar"
assert_eq "$CONFIG_ONLY" "$(blob_files)" "blobs/ with keep-blobs false"
new_root
config ''
expect_rc 0 load -q --keep-blobs -i "$WORK/gz.tar"
assert_eq "$KEPT" "$(blob_files)" "blobs/ with --keep-blobs and an empty config.json"
expect_rc 2 load -q --keep-blobs=maybe -i "$WORK/gz.tar"

step "pull honours keep-blobs"
start_registry reg
skopeo_cp "oci-archive:$WORK/gz.tar" "docker://$REG/cfg:gz"
"${SKOPEO[@]}" inspect --tls-verify=false --raw "docker://$REG/cfg:gz" >"$WORK/pushed-manifest.json"
PULL_KEPT=$( (config_of "$WORK/gz.json"; layer_blobs "$WORK/pushed-manifest.json"; \
  sha256_of "$WORK/pushed-manifest.json") | sort)
new_root
config '{"keep-blobs": true}'
expect_rc 0 pull -q "$REG/cfg:gz"
assert_eq "$PULL_KEPT" "$(blob_files)" "blobs/ after a pull with keep-blobs set"
new_root
config '{"keep-blobs": true}'
expect_rc 0 pull -q --keep-blobs=false "$REG/cfg:gz"
assert_eq "$( (config_of "$WORK/gz.json"; sha256_of "$WORK/pushed-manifest.json") | sort)" "$(blob_files)" \
  "blobs/ after pull --keep-blobs=false with keep-blobs set"

step "insecure-registries: a plain HTTP registry on a non-loopback address"
# In a private network namespace (registry, skopeo and strata alike): the registry listens on
# 192.0.2.1 there, and on no interface of the host.
enter_private_netns
IP=$NETNS_IP
start_registry lan --addr "$IP"
assert_match "$("${NETNS_EXEC[@]}" ss -Hltn "sport = :${REG##*:}")" " $REG " "the registry's socket"
LAN=$REG
skopeo_cp "oci-archive:$WORK/gz.tar" "docker://$LAN/cfg:gz"
new_root
expect_rc 1 pull -q "$LAN/cfg:gz"
assert_contains "$ERR" "cannot reach registry $LAN" "pull from an HTTP registry that is not listed"
assert_contains "$ERR" "GET https://$LAN/v2/" "pull from an HTTP registry that is not listed"
assert_not_contains "$ERR" "http://$LAN" "pull from an HTTP registry that is not listed"
assert_file_count "$STRATA_ROOT/objects" 0 "objects after the refused pull"
config "{\"insecure-registries\": [\"http://$LAN\"]}"
expect_rc 0 pull -q "$LAN/cfg:gz"
assert_eq "$LAN/cfg:gz" "$OUT" "pull from a listed registry"
expect_rc 1 pull -q --tls-verify=true "$LAN/cfg:gz"
assert_contains "$ERR" "cannot reach registry $LAN" "--tls-verify=true over the setting"
expect_rc 0 tag "$LAN/cfg:gz" "$LAN/cfg:copy"
expect_rc 0 push -q "$LAN/cfg:copy"
new_root
config "{\"insecure-registries\": [\"$IP/32\"]}"
expect_rc 0 pull -q "$LAN/cfg:copy"
assert_eq "$LAN/cfg:copy" "$OUT" "pull from a registry inside a listed CIDR"
new_root
config "{\"insecure-registries\": [\"$IP:1\", \"127.0.0.0/8\"]}"
expect_rc 1 pull -q "$LAN/cfg:gz"
assert_contains "$ERR" "cannot reach registry $LAN" "pull when only another port and another range are listed"

pass
