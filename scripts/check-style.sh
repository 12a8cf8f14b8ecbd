#!/usr/bin/env bash
# The house checks CI runs before the tests (.ci/run): clang-format (.clang-format) on every C++
# file, then clang-tidy (.clang-tidy) on every source file of the extension with the PGXS build's
# compile commands. Fix a format failure with `clang-format -i FILE`. Exits non-zero on any finding.
# Honours PG_CONFIG (default: the system PostgreSQL 15).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
mapfile -t cxx_files < <(find src test/unit test/modules \( -name '*.cpp' -o -name '*.hpp' \) -print | sort)

echo "clang-format: ${#cxx_files[@]} files"
clang-format --dry-run --Werror "${cxx_files[@]}"

make -s compile_commands.json PG_CONFIG="$PG_CONFIG"
mapfile -t sources < <(printf '%s\n' "${cxx_files[@]}" | grep -E '^src/.*\.cpp$')
echo "clang-tidy: ${#sources[@]} files"
# PostgreSQL's headers use __attribute__((format(gnu_printf))), which clang does not know.
findings=$(printf '%s\n' "${sources[@]}" |
  xargs -P "$(nproc)" -n 4 clang-tidy -p . --quiet \
    --extra-arg=-Wno-ignored-attributes --extra-arg=-Wno-unknown-warning-option 2>/dev/null || true)
if grep -qE '(warning|error):' <<<"$findings"; then
  echo "$findings"
  echo "clang-tidy found the problems above (the checks and why each is on: .clang-tidy)"
  exit 1
fi
echo "style checks passed"
