#!/bin/sh
# Run by the compose service "init" before anything else: creates, once,
# the secrets of the stack in their volumes. An existing secret is never
# replaced, so keys and passwords survive `docker compose down` and image
# upgrades (only `docker compose down -v` deletes them, with the data).
#
#   /secrets/kisee/key.pem       Kisee's signing key            (kisee keygen)
#   /secrets/pasee/key.pem       Pasee's signing key            (pasee keygen)
#   /secrets/postgres/*_password the PostgreSQL passwords       (random)
#   /secrets/kisee/pgpass        Kisee's PostgreSQL password, read through PGPASSFILE
#   /secrets/pasee/pgpass        Pasee's, likewise
#
# Each volume is mounted read-only, and only where it is needed: Kisee never
# sees Pasee's key, nor Pasee Kisee's.
set -eu
umask 077

app=10001  # the image's kisee-pasee user (deploy/Dockerfile)
pg=70      # postgres in the postgres:*-alpine images

# put FILE OWNER: moves FILE.tmp into place, readable by OWNER only.
put() {
	chmod 0400 "$1.tmp"
	chown "$2:$2" "$1.tmp"
	mv "$1.tmp" "$1"
	echo "init: created $1"
}

# key FILE COMMAND: a fresh signing key from `COMMAND keygen` (ES256).
key() {
	[ -s "$1" ] && return 0
	"$2" keygen >"$1.tmp"
	put "$1" "$app"
}

# password NAME: a random database password, for PostgreSQL's first start.
password() {
	f="/secrets/postgres/$1_password"
	[ -s "$f" ] && return 0
	tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$f.tmp"
	put "$f" "$pg"
}

# pgpass SERVICE: the service's line of a PostgreSQL password file.
pgpass() {
	f="/secrets/$1/pgpass"
	[ -s "$f" ] && return 0
	printf 'postgres:5432:%s:%s:%s\n' "$1" "$1" "$(cat "/secrets/postgres/$1_password")" >"$f.tmp"
	put "$f" "$app"
}

key /secrets/kisee/key.pem kisee
key /secrets/pasee/key.pem pasee
password superuser
password kisee
password pasee
pgpass kisee
pgpass pasee
echo "init: secrets ready"
