#!/usr/bin/env bash
# Verifies a CSV export of the pg_privacy audit trail OUTSIDE the database, with awk and
# `openssl dgst -sha256` only (docs/audit.md). Usage:
#
#   PGTZ=UTC psql -X -d mydb \
#     -c "\copy (SELECT * FROM privacy.audit_export('2024-01-01', now())) TO 'audit.csv' CSV HEADER"
#   scripts/verify-audit-export.sh audit.csv
#
# For every row it rebuilds the canonical encoding of src/core/hash_chain.hpp:
#   13 fields (id chain at session_user current_user client_addr application_name action
#   tenant_id job_id target outcome detail), each "<byte length>:<text>;" or "~;" for NULL,
#   "at" as YYYY-MM-DDTHH:MI:SS.ffffffZ (UTC)
# and checks   hash = SHA-256(prev_hash || encoding)   and that each row's prev_hash is the hash
# of the previous row of the same chain in the file. The first row of each chain in the file
# links to something outside it (the chain's anchor or an earlier export): its prev_hash is
# printed so it can be compared with that.
#
# Prints "OK: ..." and exits 0, or one "BAD: row <id>: ..." line per bad row and exits 1.
# With a second argument, also writes "<id> <hash>" of every verified row to that file
# (scripts/verify-receipt.sh uses it).
set -euo pipefail
export LC_ALL=C   # byte lengths, byte-wise text

csv=${1:?usage: verify-audit-export.sh audit.csv [manifest-out]}
manifest_out=${2:-}
[ -r "$csv" ] || { echo "cannot read $csv" >&2; exit 2; }
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. awk: parse the CSV (quoted fields may hold commas, quotes and newlines; an unquoted empty
#    field is NULL, a quoted one is the empty string), write one file per row holding exactly
#    the bytes to hash, and check the chain links. Manifest lines: "<id> <stored hash>".
awk -v dir="$work" '
function parse(s,    i, c, f, inq, quoted) {
  nf = 0; f = ""; inq = 0; quoted = 0
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (inq) {
      if (c == "\"") {
        if (substr(s, i + 1, 1) == "\"") { f = f "\""; i++ } else inq = 0
      } else f = f c
    } else if (c == "\"") { inq = 1; quoted = 1 }
    else if (c == ",") { nf++; val[nf] = f; isnull[nf] = (!quoted && f == ""); f = ""; quoted = 0 }
    else f = f c
  }
  nf++; val[nf] = f; isnull[nf] = (!quoted && f == "")
}
function field(name) {
  if (!(name in col)) { print "export has no column " name > "/dev/stderr"; exit 2 }
  return col[name]
}
function enc(name,    i) {
  i = field(name)
  if (isnull[i]) return "~;"
  return length(val[i]) ":" val[i] ";"
}
# "2024-01-02 03:04:05.12+00" (psql with TimeZone UTC) -> "2024-01-02T03:04:05.120000Z"
function canonical_at(t,    frac, sec) {
  if (t !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9](\.[0-9]+)?\+00$/) {
    print "row " val[field("id")] ": time \"" t "\" is not in UTC; export with PGTZ=UTC (see docs/audit.md)" > "/dev/stderr"
    exit 2
  }
  sec = substr(t, 12, 8); frac = ""
  if (substr(t, 20, 1) == ".") frac = substr(t, 21, length(t) - 23)
  while (length(frac) < 6) frac = frac "0"
  return substr(t, 1, 10) "T" sec "." frac "Z"
}
{
  record = (pending == "" ? $0 : pending "\n" $0)
  tmp = record
  if (gsub(/"/, "", tmp) % 2 == 1) { pending = record; next }   # a quoted field goes on
  pending = ""
  parse(record)
  if (!header_done) { for (i = 1; i <= nf; i++) col[val[i]] = i; header_done = 1; next }
  id = val[field("id")]; chain = val[field("chain")]
  prev = val[field("prev_hash")]; hash = val[field("hash")]
  at = canonical_at(val[field("at")])
  encoding = enc("id") enc("chain") length(at) ":" at ";" enc("actor") enc("acting_role") \
             enc("client_addr") enc("application_name") enc("action") enc("tenant_id") \
             enc("job_id") enc("target") enc("outcome") enc("detail")
  file = dir "/" id
  printf "%s%s", prev, encoding > file
  close(file)
  print id, hash > (dir "/manifest")
  if (chain in last) {
    if (prev != last[chain]) print "BAD: row " id ": prev_hash does not link to row " last_id[chain] " of its chain (a row was deleted, inserted or moved)"
  } else {
    printf "chain \"%s\" starts at row %s, linking to %s\n", chain, id, prev > (dir "/starts")
    chains++
  }
  last[chain] = hash; last_id[chain] = id; rows++
}
END { if (pending != "") { print "unterminated quoted field at the end of the file" > "/dev/stderr"; exit 2 }
      printf "%d %d\n", rows, chains > (dir "/counts") }
' "$csv" > "$work/link_errors"

read -r rows chains < "$work/counts"
# 2. openssl: hash every row file (one process for all of them) and compare.
: > "$work/hash_errors"
if [ "$rows" -gt 0 ]; then
  (cd "$work" && awk '{print $1}' manifest | xargs openssl dgst -sha256 -r) |
    awk '{ sub(/^\*/, "", $2); print $2, $1 }' | sort -k1,1 > "$work/computed"
  sort -k1,1 "$work/manifest" | join - "$work/computed" |
    awk '$2 != $3 { print "BAD: row " $1 ": hash does not match its fields (the row was changed)" }' \
    > "$work/hash_errors"
fi
[ -f "$work/starts" ] && cat "$work/starts"
if [ -s "$work/link_errors" ] || [ -s "$work/hash_errors" ]; then
  cat "$work/link_errors" "$work/hash_errors" | sort -t' ' -k3,3n
  exit 1
fi
[ -n "$manifest_out" ] && sort -n "$work/manifest" > "$manifest_out"
echo "OK: $rows rows in $chains chains verified"
