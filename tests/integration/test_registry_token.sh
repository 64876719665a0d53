#!/usr/bin/env bash
# The Bearer token flow against a real docker-registry configured with `auth: token:` and a
# token server (tests/testutil/token_server.py) whose JWTs are signed with a certificate made
# by the test: login (Basic credentials to the token server), wrong password, push and pull with
# per-scope tokens reused across parallel layer transfers, anonymous tokens for a public
# repository, insufficient scope for a private one, cross-repository mount scopes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

PASS_WORD='t0ken-flow-Pa55'

# count_tokens FILTER: token requests logged whose JSON satisfies the python expression FILTER (on e).
count_tokens() {
  "$PYTHON" -c 'import json, sys
f = sys.argv[2]
print(sum(1 for l in open(sys.argv[1]) for e in [json.loads(l)] if eval(f)))' "$WORK/token.log" "$1"
}

step "a token server and a registry that trusts its signing certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=strata test token signer" \
  -keyout "$WORK/token.key" -out "$WORK/token.crt" -addext "keyUsage=critical,digitalSignature" >/dev/null 2>&1 ||
  fail "openssl: cannot make the token signing certificate"
"$PYTHON" "$STRATA_SRC/tests/testutil/token_server.py" --key "$WORK/token.key" --cert "$WORK/token.crt" \
  --issuer strata-test-issuer --user "alice:$PASS_WORD" --anonymous-pull public/ \
  --port-file "$WORK/token.port" --log "$WORK/token.log" >"$WORK/token-server.out" 2>&1 &
track_pid $!
for _ in $(seq 1 100); do [ -s "$WORK/token.port" ] && break; sleep 0.05; done
[ -s "$WORK/token.port" ] || fail "token server did not start: $(cat "$WORK/token-server.out")"
REALM="http://127.0.0.1:$(cat "$WORK/token.port")/token"
start_registry tok --token "$REALM" strata-test-registry strata-test-issuer "$WORK/token.crt"
R=$REG
CONFIG="$DOCKER_CONFIG/config.json"

step "login through the token server"
expect_rc 1 login -u alice --password-stdin "$R" <<<"not-the-password"
assert_contains "$ERR" "unauthorized: incorrect username or password" "wrong password"
assert_not_contains "$OUT$ERR" "not-the-password" "output of a failed login"
[ ! -e "$CONFIG" ] || fail "a failed login wrote $CONFIG"
expect_rc 0 login -u alice --password-stdin "$R" <<<"$PASS_WORD"
assert_eq "Login Succeeded" "$OUT" "login"
assert_eq 1 "$(count_tokens 'e["account"] == "alice" and e["scopes"] == [] and e["status"] == 200')" \
  "login asked for a scope-less token with the credentials"

step "push with tokens: one token per scope set, reused by parallel uploads"
l1=$(random_layer tl1 1 100000)
l2=$(random_layer tl2 1 100000)
l3=$(random_layer tl3 1 100000)
l4=$(random_layer tl4 1 100000)
ID=$(strata_image "$R/private/app:v1" "$l1" "$l2" "$l3" "$l4")
: >"$WORK/token.log"
expect_rc 0 push "$R/private/app:v1"
PUSHED=$(sed -n 's/^v1: digest: \(sha256:[0-9a-f]*\) .*/\1/p' <<<"$OUT")
assert_eq 1 "$(count_tokens '"repository:private/app:pull,push" in e["scopes"]')" \
  "token requests for the push scope (4 layers, 3 in parallel)"

step "pull with tokens"
new_root
: >"$WORK/token.log"
expect_rc 0 pull "$R/private/app:v1"
expect_rc 0 images -q --no-trunc
assert_eq "$ID" "$OUT" "image pulled with tokens"
assert_eq 1 "$(count_tokens 'e["scopes"] == ["repository:private/app:pull"]')" "token requests for the pull scope"

step "cross-repository mount asks for both repositories' scopes"
expect_rc 0 tag "$R/private/app:v1" "$R/public/app:v1"
expect_rc 0 push "$R/public/app:v1"
assert_contains "$ERR" "Mounted from private/app" "mount with tokens"
assert_eq "$PUSHED" "$(sed -n 's/^v1: digest: \(sha256:[0-9a-f]*\) .*/\1/p' <<<"$OUT")" "digest after the mount"
[ "$(count_tokens '"repository:private/app:pull" in e["scopes"] and "repository:public/app:pull,push" in e["scopes"]')" -ge 1 ] ||
  fail "no token was requested for the mount's two scopes"

step "anonymous tokens: a public repository pulls, a private one is refused"
expect_rc 0 logout "$R"
new_root
: >"$WORK/token.log"
expect_rc 0 pull -q "$R/public/app:v1"
assert_eq 1 "$(count_tokens 'e["anonymous"] and e["scopes"] == ["repository:public/app:pull"]')" "anonymous token"
expect_rc 1 pull "$R/private/app:v1"
assert_contains "$ERR" "pull access denied for $R/private/app" "anonymous pull of a private repository"
expect_rc 1 push "$R/public/app:v1"
assert_contains "$ERR" "unauthorized" "anonymous push"

step "credentials from Podman's auth.json drive the token flow too"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$R" "$(printf 'alice:%s' "$PASS_WORD" | base64 -w0)" >"$REGISTRY_AUTH_FILE"
new_root
expect_rc 0 pull -q "$R/private/app:v1"

pass
