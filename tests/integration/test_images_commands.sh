#!/usr/bin/env bash
# The Docker-style image commands: tag, images (formats, filter, digests), rmi, image prune,
# inspect, history, reference errors, version.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "fixtures"
umask 022
mkdir -p "$WORK/l1/etc" "$WORK/l2/app" "$WORK/l3/other"
echo one >"$WORK/l1/etc/one"
echo two >"$WORK/l2/app/two"
echo three >"$WORK/l3/other/three"
find "$WORK/l1" "$WORK/l2" "$WORK/l3" -exec touch -h -d @1700000000 {} +
LONG_CMD='/bin/sh -c set -eux; apt-get update && apt-get install -y --no-install-recommends ca-certificates'
# Image A: two layers, an empty layer between them and one on top; created 2023-11-14.
ID_A=$(mkimage --format docker-archive -o "$WORK/a.tar" --tag app:1.0 --created 2023-11-14T22:13:20Z \
  --layer "$WORK/l1" --empty-layer "$LONG_CMD" --layer "$WORK/l2" --empty-layer 'CMD ["/app/two"]' \
  --cmd '["/app/two","--flag"]' --env PATH=/usr/bin:/bin --label org.example.k=v --workdir /app \
  --arch arm64 --variant v8 --summary "$WORK/a.json")
# Image B: one layer of its own, created later (listed first), loaded without a tag.
ID_B=$(mkimage --format docker-archive -o "$WORK/b.tar" --created 2024-01-02T03:04:05Z --layer "$WORK/l3")
# Image C: shares A's first layer.
ID_C=$(mkimage --format oci-archive -o "$WORK/c.tar" --tag tools/c:latest --created 2022-05-06T07:08:09Z \
  --layer "$WORK/l1")
LAYERS_A=$(json_eval 'json.dumps([l["diff_id"] for l in j["layers"]], separators=(",", ":"))' <"$WORK/a.json")
SHORT_A=${ID_A:7:12} SHORT_B=${ID_B:7:12} SHORT_C=${ID_C:7:12}

step "load"
expect_rc 0 load -i "$WORK/a.tar"
assert_eq "Loaded image: app:1.0" "$OUT" "load a"
expect_rc 0 load -i "$WORK/b.tar"
assert_eq "Loaded image ID: $ID_B" "$OUT" "load of an untagged archive"
expect_rc 0 load -i "$WORK/c.tar"
assert_eq "Loaded image: tools/c:latest" "$OUT" "load c"

step "tag: many tags for one image"
for t in app:latest app:stable registry.example.com:5000/team/app:1.0 docker.io/library/app:edge; do
  expect_rc 0 tag app:1.0 "$t"
  assert_eq "" "$OUT" "tag $t stdout"
done
expect_rc 0 tag "$SHORT_A" byid:x       # by short ID
expect_rc 0 image tag "$ID_A" byid:y     # by full ID, image subcommand
expect_rc 0 images --format '{{.Repository}}:{{.Tag}} {{.ID}}' app
assert_eq "$(printf 'app:1.0 %s\napp:edge %s\napp:latest %s\napp:stable %s' "$SHORT_A" "$SHORT_A" "$SHORT_A" "$SHORT_A")" \
  "$(printf '%s\n' "$OUT" | sort)" "images app"
expect_rc 0 images -q
# One ID per image, newest first: B (2024), A (2023), C (2022).
assert_eq "$(printf '%s\n' "$SHORT_B" "$SHORT_A" "$SHORT_C")" "$OUT" "images -q"
expect_rc 0 images
assert_match "$(printf '%s\n' "$OUT" | sed -n 1p)" '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$' "images header"
# 7 tags of A + untagged B + C, and the header.
assert_eq 10 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "images line count"
assert_match "$(printf '%s\n' "$OUT" | sed -n 2p)" "^<none> +<none> +$SHORT_B +[0-9]+ (months|years) ago +[0-9.]+[kMG]?B$" \
  "first row (dangling B)"
assert_contains "$OUT" "registry.example.com:5000/team/app" "images"
# docker.io/library/ is shown in the familiar form.
assert_not_contains "$OUT" "docker.io" "images"
# Tagging an existing tag moves it.
expect_rc 0 tag tools/c app:stable
expect_rc 0 images --format '{{.ID}}' app:stable
assert_eq "$SHORT_C" "$OUT" "moved tag"
expect_rc 0 tag app:1.0 app:stable
expect_rc 1 tag nosuch:1 x:1
assert_contains "$ERR" "No such image: nosuch:1" "tag of a missing image"

step "images --format json"
expect_rc 0 images --format json
assert_eq 9 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "json lines"
printf '%s\n' "$OUT" | "$PYTHON" -c '
import json, sys
for line in sys.stdin:
    row = json.loads(line)
    for key in ("Repository", "Tag", "ID", "Digest", "CreatedAt", "CreatedSince", "Size"):
        if key not in row:
            sys.exit("json row lacks %s: %s" % (key, line))
    if len(row["ID"]) != 12:
        sys.exit("json row ID is not short: %s" % line)
' || fail "images --format json rows are not JSON with Repository/Tag/ID"
row=$(printf '%s\n' "$OUT" | grep '"Tag":"1.0"' | grep '"Repository":"app"')
assert_eq "app 1.0 $SHORT_A" "$(json_eval '" ".join((j["Repository"], j["Tag"], j["ID"]))' <<<"$row")" "json row of app:1.0"
expect_rc 0 images --no-trunc --format json tools/c
assert_eq "$ID_C" "$(json_eval 'j["ID"]' <<<"$OUT")" "json --no-trunc ID"

step "images --format TEMPLATE, table, --digests, filter"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}}' tools/c
assert_eq "tools/c:latest" "$OUT" "template"
expect_rc 0 images --format 'table {{.Repository}}\t{{.ID}}' tools/c
assert_match "$OUT" "^REPOSITORY +IMAGE ID
tools/c +$SHORT_C$" "table template"
expect_rc 0 images --digests tools/c
assert_match "$(printf '%s\n' "$OUT" | sed -n 1p)" '^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE$' "--digests header"
assert_match "$(printf '%s\n' "$OUT" | sed -n 2p)" "^tools/c +latest +<none> +$SHORT_C " "--digests row"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}}' registry.example.com:5000/team/app
assert_eq "registry.example.com:5000/team/app:1.0" "$OUT" "filter by a registry repository"
expect_rc 0 images --format '{{.Tag}}' app:latest
assert_eq "latest" "$OUT" "filter REPO:TAG"
expect_rc 0 images nosuch
assert_match "$OUT" '^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$' "filter matching nothing"
expect_rc 0 image ls -q tools/c
assert_eq "$SHORT_C" "$OUT" "image ls -q filter"
expect_rc 2 images --format '{{.Nope' app
assert_contains "$ERR" "invalid --format" "bad template"
assert_contains "$ERR" "Run with --help for more information." "bad template"
assert_eq "" "$OUT" "stdout with a bad template"
# Refused before any row is printed, also when there is none.
expect_rc 2 images --format '{{.Repository | nosuchfunc}}' nosuch
assert_contains "$ERR" 'function "nosuchfunc" not defined' "template with an unknown function"
expect_rc 2 images --format 'table {{if .Tag}}x{{end}}'
assert_contains "$ERR" 'unsupported action "if"' "table template with a control structure"

step "inspect"
expect_rc 0 inspect app:1.0
printf '%s\n' "$OUT" >"$WORK/inspect.json"
assert_eq "$ID_A" "$(json_eval 'j[0]["Id"]' <"$WORK/inspect.json")" "Id"
assert_eq '["app:1.0","app:edge","app:latest","app:stable","byid:x","byid:y","registry.example.com:5000/team/app:1.0"]' \
  "$(json_eval 'json.dumps(sorted(j[0]["RepoTags"]), separators=(",", ":"))' <"$WORK/inspect.json")" "RepoTags"
assert_eq "$LAYERS_A" "$(json_eval 'json.dumps(j[0]["RootFS"]["Layers"], separators=(",", ":"))' <"$WORK/inspect.json")" \
  "RootFS.Layers"
assert_eq "layers" "$(json_eval 'j[0]["RootFS"]["Type"]' <"$WORK/inspect.json")" "RootFS.Type"
assert_eq '["/app/two","--flag"]' "$(json_eval 'json.dumps(j[0]["Config"]["Cmd"], separators=(",", ":"))' <"$WORK/inspect.json")" \
  "Config.Cmd"
assert_eq "arm64 v8 linux 2023-11-14T22:13:20Z" \
  "$(json_eval '" ".join((j[0]["Architecture"], j[0]["Variant"], j[0]["Os"], j[0]["Created"]))' <"$WORK/inspect.json")" \
  "Architecture Variant Os Created"
assert_eq "8" "$(json_eval 'str(j[0]["Size"])' <"$WORK/inspect.json")" "Size (bytes of file content)"
expect_rc 0 inspect -f '{{.Id}} {{json .Config.Cmd}} {{.Architecture}}/{{.Os}} {{.Config.WorkingDir}}' "$SHORT_A"
assert_eq "$ID_A [\"/app/two\",\"--flag\"] arm64/linux /app" "$OUT" "inspect -f"
expect_rc 0 inspect -f '{{index .Config.Labels "org.example.k"}} {{json .Config.Env}}' app:1.0
assert_eq 'v ["PATH=/usr/bin:/bin"]' "$OUT" "inspect labels/env"
expect_rc 0 image inspect -f '{{.Id}}' app:1.0 tools/c "$ID_B"
assert_eq "$(printf '%s\n%s\n%s' "$ID_A" "$ID_C" "$ID_B")" "$OUT" "inspect of three images"
expect_rc 1 inspect app:1.0 nosuch:tag
assert_contains "$ERR" "No such image: nosuch:tag" "inspect of a missing image"
expect_rc 2 inspect -f '{{.Id' app:1.0
assert_contains "$ERR" "invalid --format" "inspect with a bad template"
assert_eq "" "$OUT" "inspect stdout with a bad template"
expect_rc 2 inspect -f '{{.Id' nosuch:tag
assert_contains "$ERR" "invalid --format" "a bad template comes before a missing image"

step "history"
expect_rc 0 history app:1.0
printf '%s\n' "$OUT" >"$WORK/history.txt"
assert_eq 5 "$(wc -l <"$WORK/history.txt" | tr -d ' ')" "history lines (header + 4 entries)"
assert_match "$(sed -n 1p "$WORK/history.txt")" '^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$' "history header"
assert_match "$(sed -n 2p "$WORK/history.txt")" "^$SHORT_A +[0-9]+ (months|years) ago +CMD \[\"/app/two\"\] +0B *$" \
  "history top row"
assert_match "$(sed -n 3p "$WORK/history.txt")" '^<missing> +[0-9]+ (months|years) ago +mkimage layer 2: l2 +4B *$' \
  "history row 2"
# Long CREATED BY text is cut at 45 characters.
row3=$(sed -n 4p "$WORK/history.txt")
assert_match "$row3" '^<missing> +[0-9]+ (months|years) ago +.*… +0B *$' "history row 3"
assert_contains "$row3" "   ${LONG_CMD:0:44}…   0B" "history row 3 (CREATED BY cut to 44 characters and …)"
assert_match "$(sed -n 5p "$WORK/history.txt")" '^<missing> +[0-9]+ (months|years) ago +mkimage layer 1: l1 +4B *$' \
  "history bottom row"
expect_rc 0 history --no-trunc app:1.0
assert_match "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$ID_A " "history --no-trunc top row"
assert_contains "$OUT" "$LONG_CMD" "history --no-trunc"
expect_rc 0 history -q app:1.0
assert_eq "$(printf '%s\n<missing>\n<missing>\n<missing>' "$SHORT_A")" "$OUT" "history -q"
expect_rc 0 history --format '{{.CreatedBy}}|{{.Size}}' tools/c
assert_eq "mkimage layer 1: l1|4B" "$OUT" "history --format"
expect_rc 0 image history --human=false --format '{{.CreatedAt}} {{.Size}}' tools/c
assert_eq "2022-05-06T07:08:09Z 4" "$OUT" "history --human=false"
# Docker's parser takes a short flag's value after '=' as well.
expect_rc 0 history -H=false --format '{{.CreatedAt}} {{.Size}}' tools/c
assert_eq "2022-05-06T07:08:09Z 4" "$OUT" "history -H=false"
expect_rc 0 history --format '{{.Size}}' tools/c -H=false
assert_eq "4" "$OUT" "history IMAGE -H=false"
expect_rc 1 history nosuch
assert_contains "$ERR" "No such image: nosuch" "history of a missing image"

step "bad references"
expect_rc 1 tag app:1.0 Upper/Case:1
assert_contains "$ERR" "lowercase" "tag to an uppercase name"
assert_contains "$ERR" "Upper/Case:1" "tag to an uppercase name"
expect_rc 1 inspect MyImage
assert_contains "$ERR" "lowercase" "inspect of an uppercase name"
expect_rc 1 rmi MyImage
assert_contains "$ERR" "lowercase" "rmi of an uppercase name"
expect_rc 1 images MyImage
assert_contains "$ERR" "lowercase" "images filter with an uppercase name"
expect_rc 1 save -o "$WORK/x.tar" MyImage
assert_contains "$ERR" "lowercase" "save of an uppercase name"
expect_rc 1 tag app:1.0 'app:bad tag!'
assert_contains "$ERR" "invalid reference" "tag with a bad tag"
expect_rc 1 tag app:1.0 "app@sha256:$(printf '%064d' 0)"
assert_contains "$ERR" "digest" "tag to a digest reference"
expect_rc 0 images -q
assert_eq 3 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "images after the bad references"

step "rmi: untag versus delete"
expect_rc 1 rmi "$SHORT_A"
assert_contains "$ERR" "must be forced" "rmi of an ID with several tags"
assert_contains "$ERR" "$SHORT_A" "rmi of an ID with several tags"
expect_rc 0 rmi app:latest
assert_eq "Untagged: app:latest" "$OUT" "rmi of one tag of several"
expect_rc 0 image rm byid:x byid:y app:stable app:edge registry.example.com:5000/team/app:1.0
assert_eq "$(printf 'Untagged: byid:x\nUntagged: byid:y\nUntagged: app:stable\nUntagged: app:edge\nUntagged: registry.example.com:5000/team/app:1.0')" \
  "$OUT" "image rm of five tags"
expect_rc 0 inspect -f '{{json .RepoTags}}' "$ID_A"
assert_eq '["app:1.0"]' "$OUT" "tags left"
# Last tag: the image goes; C's layers stay though A shared one.
expect_rc 0 rmi app:1.0
assert_eq "$(printf 'Untagged: app:1.0\nDeleted: %s' "$ID_A")" "$OUT" "rmi of the last tag"
expect_rc 0 images -q --no-trunc
assert_eq "$(printf '%s\n' "$ID_B" "$ID_C")" "$OUT" "images after deleting A"
expect_rc 0 save -o "$WORK/c-saved.tar" tools/c
# Forced removal of an ID with two tags untags both.
expect_rc 0 load -i "$WORK/a.tar"
expect_rc 0 tag app:1.0 app:two
expect_rc 0 rmi -f "$SHORT_A"
assert_eq "$(printf 'Untagged: app:1.0\nUntagged: app:two\nDeleted: %s' "$ID_A")" "$OUT" "rmi -f of an ID with two tags"
# Deleting by ID an image with one tag.
expect_rc 0 load -i "$WORK/a.tar"
expect_rc 0 rmi "$ID_A"
assert_eq "$(printf 'Untagged: app:1.0\nDeleted: %s' "$ID_A")" "$OUT" "rmi by full ID"
# Every argument is tried; the first failure decides the exit status.
expect_rc 0 load -i "$WORK/a.tar"
expect_rc 1 rmi nosuch:1 app:1.0
assert_eq "$(printf 'Untagged: app:1.0\nDeleted: %s' "$ID_A")" "$OUT" "rmi with one missing image"
assert_contains "$ERR" "No such image: nosuch:1" "rmi of a missing image"
expect_rc 2 rmi
expect_rc 0 fsck -n
assert_match "$OUT" 'consistent$' "fsck after rmi"

step "image prune"
expect_rc 0 load -i "$WORK/a.tar"
# Loading another image with A's tag leaves A dangling.
ID_A2=$(mkimage --format docker-archive -o "$WORK/a2.tar" --tag app:1.0 --created 2023-12-01T00:00:00Z \
  --layer "$WORK/l1" --layer "$WORK/l2")
expect_rc 0 load -i "$WORK/a2.tar"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
assert_eq "$(printf '<none>:<none> %s\napp:1.0 %s\n<none>:<none> %s\ntools/c:latest %s' "$SHORT_B" "${ID_A2:7:12}" "$SHORT_A" "$SHORT_C")" \
  "$OUT" "images with two dangling"
# Without -f, answering "n" removes nothing.
expect_rc 0 image prune <<<"n"
assert_contains "$ERR" "WARNING! This will remove all dangling images." "prune prompt"
assert_contains "$ERR" "Are you sure you want to continue? [y/N]" "prune prompt"
assert_eq "" "$OUT" "prune answered n"
expect_rc 0 images -q
assert_eq 4 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "images after prune answered n"
# No answer at all (EOF) is a no as well.
expect_rc 0 image prune -a </dev/null
assert_contains "$ERR" "WARNING! This will remove all images without at least one container" "prune -a prompt"
expect_rc 0 images -q
assert_eq 4 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "images after prune -a with no answer"
# "y" prunes the dangling ones only.
expect_rc 0 image prune <<<"y"
assert_eq "Deleted Images:" "$(printf '%s\n' "$OUT" | sed -n 1p)" "prune output"
assert_eq "$(printf 'deleted: %s\n' "$ID_A" "$ID_B" | sort)" \
  "$(printf '%s\n' "$OUT" | grep '^deleted: ' | sort)" "prune deleted lines"
assert_not_contains "$OUT" "untagged:" "prune of dangling images"
assert_match "$(printf '%s\n' "$OUT" | tail -n 1)" '^Total reclaimed space: [0-9.]+[kMG]?B$' "prune total"
expect_rc 0 images --format '{{.Repository}}:{{.Tag}}'
assert_eq "$(printf 'app:1.0\ntools/c:latest')" "$OUT" "images after prune"
expect_rc 0 image prune -f
assert_eq "Total reclaimed space: 0B" "$OUT" "prune -f with nothing dangling"
assert_eq "" "$ERR" "prune -f does not prompt"
expect_rc 0 image prune -a -f
assert_eq "$(printf 'untagged: app:1.0\ndeleted: %s\nuntagged: tools/c:latest\ndeleted: %s' "$ID_A2" "$ID_C" | sort)" \
  "$(printf '%s\n' "$OUT" | grep -E '^(untagged|deleted): ' | sort)" "prune -a -f lines"
expect_rc 0 images -q
assert_eq "" "$OUT" "images after prune -a"
assert_file_count "$STRATA_ROOT/objects" 0 "objects after prune -a"
assert_file_count "$STRATA_ROOT/blobs" 0 "blobs after prune -a"
expect_rc 0 fsck -n
assert_eq "0 images, 0 layers, 0 objects, 0 blobs: consistent" "$OUT" "fsck after prune -a"

step "version"
expect_rc 0 version
want_version=$(sed -n 's/^project(strata VERSION \([0-9.]*\).*/\1/p' "$STRATA_SRC/CMakeLists.txt")
assert_eq "strata version $want_version" "$OUT" "version"
expect_rc 0 --version
assert_eq "strata version $want_version" "$OUT" "--version"
expect_rc 2 nosuchcommand
expect_rc 2

step "bad option values are usage errors (exit 2), like parse errors"
expect_rc 2 history --format '{{.Size' tools/c
assert_contains "$ERR" "invalid --format" "history with a bad template"
expect_rc 2 ps -a --format '{{.Names'
assert_contains "$ERR" "invalid --format" "ps with a bad template"
expect_rc 2 system df --format yaml
assert_contains "$ERR" 'unknown --format "yaml"' "system df with an unknown format"
expect_rc 2 search --limit 0 nginx
assert_contains "$ERR" "limit 0 is outside the range of [1, 100]" "search --limit 0"
expect_rc 2 search --format '{{.Name' nginx
assert_contains "$ERR" "invalid --format" "search with a bad template"
expect_rc 2 load --max-entries lots -i "$WORK/a.tar"
expect_rc 2 --log-level loud images

step "each command line reaches its command (main.cc builds only the command it names)"
expect_rc 0 --help
commands=$(printf '%s\n' "$OUT" | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z]*\).*/\1/p')
assert_contains "$commands" "bundle" "commands listed by --help"
for c in $commands unmount; do
  expect_rc 0 "$c" --help
  assert_match "$OUT" "Usage: strata ($c|umount) " "$c --help"
done
for group in image container; do
  expect_rc 0 "$group" --help
  listing=$(printf '%s\n' "$OUT" | sed -n '/^Subcommands:/,$p' | sed 1d)
  assert_contains "$listing" "rm, remove" "$group --help"
  checked=0
  while IFS='|' read -r names desc; do
    for c in ${names//,/}; do
      expect_rc 0 "$group" "$c" --help
      assert_eq "$desc" "$(printf '%s\n' "$OUT" | sed -n 1p)" "$group $c --help"
      checked=$((checked + 1))
    done
  done < <(printf '%s\n' "$listing" | sed -n 's/^  \([a-z][a-z, ]*[a-z]\)  *\([A-Z].*\)$/\1|\2/p')
  [ "$checked" -ge 12 ] || fail "$group --help: only $checked subcommand names checked"
done
new_root
expect_rc 0 load -i "$WORK/c.tar"
root_c=$STRATA_ROOT
new_root
expect_rc 0 --root "$root_c" --log-level warn images -q
assert_eq "$SHORT_C" "$OUT" "images after global options with values"
expect_rc 0 --root="$root_c" --log-level=warn image ls -q
assert_eq "$SHORT_C" "$OUT" "image ls after global options with ="
expect_rc 2 --root "$root_c" nosuchcommand

pass
