#!/bin/sh
# A tour of coatcheck's operator CLI on the embedded SQLite store (demo.db in this folder).
set -eu
export COATCHECK_STORE_URL="${COATCHECK_STORE_URL:-sqlite:///demo.db}"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say coatcheck migrate
coatcheck migrate

say coatcheck sessions create --user alice
token=$(coatcheck sessions create --user alice 2>/dev/null)
echo "(token kept in a shell variable, not printed)"
coatcheck sessions create --user alice --kind api >/dev/null 2>&1

say 'coatcheck sessions check - <<< $token'
printf '%s\n' "$token" | coatcheck sessions check -

say coatcheck sessions list --user alice
coatcheck sessions list --user alice

say coatcheck stats --since 1h
coatcheck stats --since 1h

say 'coatcheck sessions revoke - <<< $token'
printf '%s\n' "$token" | coatcheck sessions revoke -

say 'coatcheck sessions check - <<< $token   # exit status 1: no longer active'
printf '%s\n' "$token" | coatcheck sessions check - || echo "(exit status $?)"

say coatcheck purge
coatcheck purge
