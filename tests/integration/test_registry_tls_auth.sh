#!/usr/bin/env bash
# strata against docker-registry serving TLS with a CA made by the test and htpasswd (bcrypt)
# Basic auth: certificate verification and per-registry CAs (STRATA_CERTS_DIR), login with a
# wrong password (clear error, exit 1, nothing saved, the password never shown), login that saves
# a Docker-compatible config.json (0600), authenticated push/pull (skopeo agrees on digests),
# logout, Podman's auth.json, and loopback's insecure-TLS default.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

PASS_WORD='s3cr3t-Pa55-$(not)-a-shell'
WRONG='wr0ng-Pa55-never-shown'

step "a TLS registry with htpasswd auth"
make_ca "$WORK/ca"
htpasswd -Bbn alice "$PASS_WORD" >"$WORK/htpasswd"
start_registry tls --tls "$WORK/ca" --htpasswd "$WORK/htpasswd"
R=$REG
mkdir -p "$WORK/certs.d/$R" "$WORK/no-certs"
cp "$WORK/ca/ca.crt" "$WORK/certs.d/$R/ca.crt"
CONFIG="$DOCKER_CONFIG/config.json"

step "TLS verification required without the CA: a certificate error naming the fix"
export STRATA_CERTS_DIR="$WORK/no-certs"
expect_rc 1 login --tls-verify=true -u alice --password-stdin "$R" <<<"$PASS_WORD"
assert_contains "$ERR" "certificate" "login to an untrusted registry"
assert_contains "$ERR" "$WORK/no-certs/$R/ca.crt" "the hint names where the CA goes"
[ ! -e "$CONFIG" ] || fail "a failed login wrote $CONFIG"

export STRATA_CERTS_DIR="$WORK/certs.d"
step "login with a wrong password: clear error, exit 1, nothing saved, password never shown"
expect_rc 1 login -u alice --password-stdin "$R" <<<"$WRONG"
assert_contains "$ERR" "unauthorized" "wrong password"
assert_contains "$ERR" "alice" "the error names the user"
assert_not_contains "$OUT$ERR" "$WRONG" "output of a failed login"
[ ! -e "$CONFIG" ] || fail "a failed login wrote $CONFIG"
expect_rc 1 login -u alice "$R" </dev/null
assert_contains "$ERR" "non TTY" "login without a password and without a terminal"
expect_rc 2 login --password-stdin "$R" </dev/null
assert_contains "$ERR" "--username" "--password-stdin without a user"

step "login: config.json holds base64 user:password, mode 0600"
expect_rc 0 login -u alice --password-stdin "$R" <<<"$PASS_WORD"
assert_eq "Login Succeeded" "$OUT" "login output"
assert_not_contains "$OUT$ERR" "$PASS_WORD" "output of a login"
assert_eq 600 "$(stat -c %a "$CONFIG")" "mode of config.json"
assert_eq "alice:$PASS_WORD" "$(json_eval "j['auths']['$R']['auth']" <"$CONFIG" | base64 -d)" "saved credentials"
expect_rc 0 login -u alice -p "$PASS_WORD" "https://$R/"
assert_contains "$ERR" "insecure" "-p warns"
assert_not_contains "$OUT$ERR" "$PASS_WORD" "output of login -p"
assert_eq "[\"$R\"]" "$(json_eval 'sorted(j["auths"].keys())' <"$CONFIG")" "one entry per registry"
# Stored credentials are checked when no user is given.
expect_rc 0 login "$R" </dev/null
assert_eq "Login Succeeded" "$OUT" "login with stored credentials"
cp "$CONFIG" "$WORK/config.before"
expect_rc 1 login -u alice --password-stdin "$R" <<<"$WRONG"
assert_not_contains "$OUT$ERR" "$WRONG" "output of a failed login over saved credentials"
cmp -s "$CONFIG" "$WORK/config.before" || fail "a failed login changed the saved credentials in $CONFIG"

step "authenticated push and pull over verified TLS; skopeo agrees"
layer=$(random_layer tlsl 2 100000)
ID=$(strata_image "$R/secure/app:v1" "$layer")
expect_rc 0 push "$R/secure/app:v1"
PUSHED=$(sed -n 's/^v1: digest: \(sha256:[0-9a-f]*\) .*/\1/p' <<<"$OUT")
SK=$("${SKOPEO[@]}" inspect --cert-dir "$WORK/certs.d/$R" --creds "alice:$PASS_WORD" --format '{{.Digest}}' \
  "docker://$R/secure/app:v1" 2>"$WORK/skopeo.err") || fail "skopeo inspect: $(cat "$WORK/skopeo.err")"
assert_eq "$PUSHED" "$SK" "digest over TLS"
new_root
expect_rc 0 pull "$R/secure/app:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$ID" "$OUT" "image pulled over TLS with auth"
expect_rc 0 manifest inspect "$R/secure/app:v1"
assert_contains "$OUT" "$ID" "manifest inspect with auth"

step "the registry's catalog needs auth too: search works logged in"
expect_rc 0 search --format '{{.Name}}' "$R/app"
assert_eq "$R/secure/app" "$OUT" "search with auth"

step "logout: credentials removed; anonymous pull is refused"
expect_rc 0 logout "$R"
assert_eq "Removing login credentials for $R" "$OUT" "logout output"
assert_eq "[]" "$(json_eval 'sorted(j["auths"].keys())' <"$CONFIG")" "auths after logout"
expect_rc 0 logout "$R"
assert_eq "Not logged in to $R" "$OUT" "second logout"
new_root
expect_rc 1 pull "$R/secure/app:v1"
assert_contains "$ERR" "pull access denied for $R/secure/app" "anonymous pull"
expect_rc 1 push "$R/secure/app:v1"
assert_contains "$ERR" "An image does not exist locally" "push of a missing image"

step "Podman's auth.json is read"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$R" "$(printf 'alice:%s' "$PASS_WORD" | base64 -w0)" >"$REGISTRY_AUTH_FILE"
expect_rc 0 pull -q "$R/secure/app:v1"
expect_rc 0 logout "$R"
assert_contains "$ERR" "podman logout" "logout leaves Podman's file alone and says so"
rm -f "$REGISTRY_AUTH_FILE"

step "loopback default: TLS without a CA is accepted unverified (Docker's insecure loopback)"
export STRATA_CERTS_DIR="$WORK/no-certs"
expect_rc 0 login -u alice --password-stdin "$R" <<<"$PASS_WORD"
new_root
expect_rc 0 pull -q "$R/secure/app:v1"
expect_rc 1 pull --tls-verify=true "$R/secure/app:v1"
assert_contains "$ERR" "certificate" "--tls-verify=true without the CA"
expect_rc 0 pull -q --tls-verify=false "$R/secure/app:v1"

pass
