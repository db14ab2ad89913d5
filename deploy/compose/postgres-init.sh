#!/bin/sh
# Run once by the postgres image, when it initializes an empty data volume
# (mounted into /docker-entrypoint-initdb.d/): a role and a database for
# each service, with the passwords the init service generated. Neither
# role is a superuser. The entrypoint may source this file rather than run
# it, so it sets no shell options and does not exit.

for service in kisee pasee; do
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
		--set=role="$service" --set=password="$(cat "/run/secrets-postgres/${service}_password")" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
SQL
done
