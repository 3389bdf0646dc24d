#!/usr/bin/env bash
# bi-postgres's first start (docker-compose.yml): the postgres image runs this once, as
# the superuser, when its data volume is empty. It creates
#   - the pipeline's login ($BI_PUBLISHER_USER), owner of the database, with CREATEROLE
#     as docs/bi.md asks of it;
#   - the NOLOGIN role the pipeline grants its views to ($BI_READER_ROLE, publish.
#     postgres_reader_role), here already, with ADMIN OPTION for the pipeline's login;
#   - a login for BI tools ($BI_READER_USER), member of that role, looking in schema rfm.
# The names and passwords come from .env. tests/deploy/test_bi_postgres_init.py runs it
# against a real server.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=database="$POSTGRES_DB" \
    --set=publisher="$BI_PUBLISHER_USER" \
    --set=publisher_password="$BI_PUBLISHER_PASSWORD" \
    --set=reader_role="${BI_READER_ROLE:-rfm_reader}" \
    --set=bi_user="$BI_READER_USER" \
    --set=bi_password="$BI_READER_PASSWORD" <<'SQL'
create role :"publisher" login createrole password :'publisher_password';
alter database :"database" owner to :"publisher";
create role :"reader_role" nologin;
grant :"reader_role" to :"publisher" with admin option;
create role :"bi_user" login password :'bi_password';
grant :"reader_role" to :"bi_user";
alter role :"bi_user" set search_path = rfm;
SQL
