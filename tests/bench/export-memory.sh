#!/usr/bin/env bash
# Measures the server's memory while it exports the import bench's 1,000,000 clients.
# Run after `cargo bench -p rapport-platform --bench import` (which leaves a database of a
# million contacts behind) and `cargo build --release --bin rapport`. Prints time and the
# server's resident memory before and at its peak, per format.
set -euo pipefail
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
# Or the HTTP bench's databases (export names the owner beside each id, a join per row):
#   EXPORT_DATABASE_URL=sqlite:///tmp/rapport-http-bench-1000000/sqlite/bench.db \
#   EXPORT_DATA_DIR=/tmp/rapport-http-bench-1000000/sqlite EXPORT_ORG=bench tests/bench/export-memory.sh
#   EXPORT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_http_bench_1000000 \
#   EXPORT_DATA_DIR=/tmp/rapport-http-bench-1000000/postgres EXPORT_ORG=bench tests/bench/export-memory.sh
DB=/tmp/rapport-bench-import/bench.db
export DATABASE_URL="${EXPORT_DATABASE_URL:-sqlite://$DB}"
export RAPPORT_DATA_DIR="${EXPORT_DATA_DIR:-/tmp/rapport-bench-import}" RAPPORT_ADDR=127.0.0.1:8097
ORG=${EXPORT_ORG:-import-bench}
# The imported rows wait in the search outbox; indexing them is not what is measured.
case "$DATABASE_URL" in
  sqlite://*) python3 -c "import sqlite3; c=sqlite3.connect('${DATABASE_URL#sqlite://}'); c.execute('DELETE FROM search_outbox'); c.commit()" ;;
  *) psql -q "$DATABASE_URL" -c 'DELETE FROM search_outbox' ;;
esac
TOKEN=$($BIN token create --org "$ORG" --email admin@bench.test --name export | tail -1)
$BIN serve > /tmp/export-serve.log 2>&1 &
PID=$!
trap 'kill $PID' EXIT
sleep 3
rss() { awk '/VmRSS/{print $2/1024}' /proc/$PID/status; }
for fmt in ${EXPORT_FORMATS:-csv xlsx json}; do
  before=$(rss)
  peak=$before
  start=$(date +%s.%N)
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8097/api/clients/export?format=$fmt" -o /tmp/export.$fmt &
  C=$!
  while kill -0 $C 2>/dev/null; do r=$(rss); peak=$(python3 -c "print(max($peak,$r))"); sleep 0.2; done
  end=$(date +%s.%N)
  printf '%s: %s bytes in %.1f s; server memory %.0f MB before, peak %.0f MB\n' $fmt $(stat -c %s /tmp/export.$fmt) $(python3 -c "print($end-$start)") $before $peak
done
