#!/usr/bin/env bash
# Checks a pg_privacy receipt OUTSIDE the database (docs/compliance.md, "Receipts"), with openssl,
# awk and jq only:
#
#   psql -Atc "select privacy.receipt(42)" > receipt-42.pem
#   PGTZ=UTC psql -X -c "\copy (SELECT * FROM privacy.audit_export('2024-01-01', now())) TO 'audit.csv' CSV HEADER"
#   scripts/verify-receipt.sh receipt-42.pem signing.crt audit.csv
#
# 1. the receipt's signature, with the installation's certificate as the only trust anchor
#    (openssl cms -verify -CAfile signing.crt);
# 2. the audit export (scripts/verify-audit-export.sh: every row's hash and link);
# 3. every audit row the receipt names (id and hash), and the chain head it names, is in the
#    export with that hash.
# Prints "OK: ..." and exits 0, or says what failed and exits 1 (2 for bad usage).
set -euo pipefail
export LC_ALL=C

receipt=${1:?usage: verify-receipt.sh receipt.pem signing.crt audit.csv}
certificate=${2:?usage: verify-receipt.sh receipt.pem signing.crt audit.csv}
csv=${3:?usage: verify-receipt.sh receipt.pem signing.crt audit.csv}
for file in "$receipt" "$certificate" "$csv"; do
  [ -r "$file" ] || { echo "cannot read $file" >&2; exit 2; }
done
for tool in openssl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! openssl cms -verify -inform PEM -in "$receipt" -CAfile "$certificate" -out "$work/receipt.json" \
     2>"$work/openssl.err"; then
  echo "BAD: the receipt's signature does not verify with $certificate:"
  sed 's/^/  /' "$work/openssl.err"
  exit 1
fi
echo "signature: OK ($(grep -o 'CMS Verification successful' "$work/openssl.err" || echo verified))"

if ! audit=$("$here/verify-audit-export.sh" "$csv" "$work/manifest"); then
  echo "BAD: the audit export does not verify:"
  echo "$audit" | sed 's/^/  /'
  exit 1
fi
echo "audit export: $(echo "$audit" | tail -n 1)"

# "<id> <hash>" of the rows the receipt names, then of its chain head.
jq -r '.audit.rows[] | "\(.id) \(.hash)"' "$work/receipt.json" > "$work/named"
jq -r '.audit.head | "\(.id) \(.hash)"' "$work/receipt.json" >> "$work/named"
missing=$(sort -u "$work/named" | sort -k1,1 | join -v 1 - <(sort -k1,1 "$work/manifest") || true)
mismatched=$(sort -u "$work/named" | sort -k1,1 | join - <(sort -k1,1 "$work/manifest") | awk '$2 != $3 {print $1}')
if [ -n "$missing" ] || [ -n "$mismatched" ]; then
  [ -n "$missing" ] && echo "$missing" | awk '{print "BAD: audit row " $1 " named by the receipt is not in the export (export a period that covers the receipt)"}'
  [ -n "$mismatched" ] && echo "$mismatched" | awk '{print "BAD: audit row " $1 " has another hash in the export than in the receipt"}'
  exit 1
fi
summary=$(jq -r '"receipt of job \(.job) (\(.kind), tenant \(.tenant))"' "$work/receipt.json")
head_hash=$(jq -r '.audit.head.hash' "$work/receipt.json")
echo "OK: $summary: $(jq '.audit.rows | length' "$work/receipt.json") audit rows and the chain head ${head_hash:0:12}... are in the export"
