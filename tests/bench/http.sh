#!/usr/bin/env bash
# The HTTP benchmark: starts the release binary on a seeded database (SQLite, then
# PostgreSQL), drives each hot endpoint with wrk (-t2 -c16) and prints one table per
# backend: requests/s, p50 and p99 latency, and CPU per request read from /proc — the
# Rapport process's, and PostgreSQL's (every postgres process) where it runs. Rerun it before resolving an issue that touches a request path and compare
# with the README's table: a row more than 20% worse is a regression to fix.
#
#   cargo build --release --bin rapport
#   tests/bench/http.sh                       # 1,000,000 clients, both backends
#   BENCH_CLIENTS=100000 tests/bench/http.sh  # the 100k point, to check rows are flat
#   BENCH_BACKENDS=sqlite tests/bench/http.sh
#   BENCH_SEARCH=meilisearch BENCH_ROWS=search tests/bench/http.sh
#                                             # search through a real Meilisearch
#                                             # (../shared/tools/meilisearch), its rows only
#   BENCH_ROWS=dashboard tests/bench/http.sh  # the dashboard's rows beside a client by id
#   BENCH_ROWS=board tests/bench/http.sh      # a deal and the board beside a client by id
#   BENCH_ROWS=lookups tests/bench/http.sh    # the list's text filter beside a client by id
#   BENCH_ROWS=create BENCH_SECONDS=30 tests/bench/http.sh
#                                             # creates alone, long enough for index merges
#
# Seeding a million clients takes a few minutes per backend; the databases are kept
# between runs (BENCH_RESEED=1 starts over).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/rapport}
CLIENTS=${BENCH_CLIENTS:-1000000}
DEALS=${BENCH_DEALS:-50000}
DURATION=${BENCH_SECONDS:-10}
# 16 connections by default; BENCH_CONNECTIONS=1 gives a request's latency without queueing.
CONNECTIONS=${BENCH_CONNECTIONS:-16}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${BENCH_PORT:-8093}
WORK=${BENCH_DIR:-/tmp/rapport-http-bench-$CLIENTS}
PASSWORD=bench-password-2026
SEARCH=${BENCH_SEARCH:-embedded}
ROWS=${BENCH_ROWS:-all}
MEILI_START=${RAPPORT_MEILI_START:-$(pwd)/../shared/tools/meilisearch/start}
MEILI_PORT=${BENCH_MEILI_PORT:-7790}

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
[ -x "$BIN" ] || { echo "build the release binary first: cargo build --release --bin rapport" >&2; exit 1; }
mkdir -p "$WORK"
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The database server's CPU (every postgres process), so PostgreSQL's share is not hidden.
db_ticks() {
  local t=0 p
  for p in $(pgrep -x postgres || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# One row: name, then wrk's arguments after the URL path.
measure() {
  local name=$1 path=$2; shift 2
  local before after out reqs rps p50 p99 cpu
  local db_before db_after db
  before=$(cpu_ticks "$PID")
  db_before=$(db_ticks)
  out=$(wrk -t"$(( CONNECTIONS < 2 ? 1 : 2 ))" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$PORT$path")
  after=$(cpu_ticks "$PID")
  db_after=$(db_ticks)
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  local bad
  bad=$(awk '/Non-2xx or 3xx responses/{print $5}' <<<"$out")
  cpu=$(python3 -c "print(f'{($after-$before)*1000/$HZ/max($reqs,1):.2f}')")
  if [ "$BACKEND" = postgres ]; then
    db=$(python3 -c "print(f'{($db_after-$db_before)*1000/$HZ/max($reqs,1):.2f}')")
  else
    db="-"
  fi
  printf '| %-44s | %9s | %8s | %8s | %7s | %7s |%s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$db" "${bad:+ $bad non-2xx!}"
}

# Starts the shared Meilisearch once (its data kept in $WORK/meili) and indexes the
# backend's database into it with a full rebuild, timed: the indexing throughput.
use_meilisearch() {
  local backend=$1 data=$2
  [ -x "$MEILI_START" ] || { echo "no Meilisearch at $MEILI_START" >&2; exit 1; }
  if ! curl -sf "http://127.0.0.1:$MEILI_PORT/health" >/dev/null 2>&1; then
    "$MEILI_START" "$MEILI_PORT" bench-master-key "$WORK/meili" >&2
  fi
  export RAPPORT_SEARCH=meilisearch MEILI_URL="http://127.0.0.1:$MEILI_PORT" \
    MEILI_MASTER_KEY=bench-master-key RAPPORT_SEARCH_PREFIX="bench_${backend}_"
  if [ ! -f "$WORK/meili/indexed-$backend" ]; then
    echo "indexing $backend into Meilisearch…" >&2
    "$BIN" search reindex | tail -1 | tee "$WORK/meili/indexed-$backend" >&2
  fi
  echo "Meilisearch indexing: $(cat "$WORK/meili/indexed-$backend")"
}

# A sales rep who owns three of the Hamiltons: the rep's search must show those only.
rep_check() {
  local auth=$1
  "$BIN" user create --org bench --email rep@bench.test --password "$PASSWORD" --role sales_rep >/dev/null 2>&1 || true
  REP_TOKEN=$("$BIN" token create --org bench --email rep@bench.test --name "bench rep $(date +%s)" | tail -1)
  unlimit "$REP_TOKEN"
  local rep_auth="Authorization: Bearer $REP_TOKEN" rep_id ids
  rep_id=$(curl -sf -H "$rep_auth" "http://127.0.0.1:$PORT/api/me" | python3 -c "import json,sys; print(json.load(sys.stdin)['user']['id'])")
  ids=$(curl -sf -H "$auth" "http://127.0.0.1:$PORT/api/search?q=hamilton&type=client&limit=3" | python3 -c "import json,sys; print(' '.join(h['id'] for h in json.load(sys.stdin)['data']))")
  for id in $ids; do
    curl -sf -o /dev/null -X PATCH -H "$auth" -H 'Content-Type: application/json' \
      -d "{\"assignedTo\":\"$rep_id\"}" "http://127.0.0.1:$PORT/api/clients/$id"
  done
  for _ in $(seq 1 60); do
    [ "$(curl -sf -H "$auth" "http://127.0.0.1:$PORT/api/search/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['pending'])")" = 0 ] && break
    sleep 0.5
  done
  curl -sf -H "$auth" "http://127.0.0.1:$PORT/api/search?q=mrgaret%20hamiltn&type=client&limit=3" | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('manager, \"mrgaret hamiltn\": top hit', repr(d['data'][0]['title']), 'of', d['total'])"
  curl -sf -H "$rep_auth" "http://127.0.0.1:$PORT/api/search?q=hamilton&limit=100" | python3 -c "
import json,sys; d=json.load(sys.stdin); mine=set('$ids'.split())
seen=[h['id'] for h in d['data']]
print('sales rep, \"hamilton\":', len(seen), 'hits, all their own' if set(seen) <= mine else 'ANOTHER REP\'S CLIENT SHOWN')"
}

# why: the bench measures the server, not the per-token limit (600 a minute by default,
# 10,000 at most through the API); its own tokens are let through.
unlimit() {
  local limit="UPDATE api_tokens SET rate_limit = 1000000000 WHERE token_prefix = '${1:0:10}'"
  if [ "$BACKEND" = sqlite ]; then
    python3 -c "import sqlite3; c=sqlite3.connect('$DATA/bench.db'); c.execute(\"$limit\"); c.commit()"
  else
    psql -q "$DATABASE_URL" -c "$limit"
  fi
}

# A rep who owns no client yet: their "at risk" list (the five on their dashboard) must not
# read the rest of the organization's to find it has none (minRisk=0: every active client
# of a million is on the organization's list).
new_rep_rows() {
  "$BIN" user create --org bench --email newrep@bench.test --password "$PASSWORD" --role sales_rep >/dev/null 2>&1 || true
  local t
  t=$("$BIN" token create --org bench --email newrep@bench.test --name "bench new rep $(date +%s)" | tail -1)
  unlimit "$t"
  measure "GET /api/scores/at-risk (new rep, minRisk=0)" "/api/scores/at-risk?minRisk=0&limit=5" -H "Authorization: Bearer $t"
}

# The board, and a column's "Show 25 more" as htmx asks for it: the next cards after the
# first page.
board_rows() {
  local cookie=$1 more
  measure "GET /pipeline (console board)" "/pipeline" -H "$cookie"
  more=$(curl -sf -H "$cookie" "http://127.0.0.1:$PORT/pipeline" | grep -o '/pipeline/column?[^"]*' | head -1 | sed 's/&#38;/\&/g; s/&amp;/\&/g' || true)
  if [ -n "$more" ]; then
    measure "GET /pipeline/column (Show 25 more)" "$more" -H "$cookie" -H "HX-Request: true"
  else
    echo "| no column with more cards on the board |"
  fi
}

# The list's text filter: nothing matching, a common prefix newest-first, and the same
# prefix in two other orders (each part of the filter read on its own index); then orders
# by a column, unfiltered (each has an index in the sort's order).
lookup_rows() {
  measure "GET /api/clients?q= (no match)" "/api/clients?q=zqxwv" -H "$1"
  measure "GET /api/clients?q= (name prefix)" "/api/clients?q=marg" -H "$1"
  measure "GET /api/clients?q= (prefix, sort=name)" "/api/clients?q=marg&sort=name" -H "$1"
  measure "GET /api/clients?q= (prefix, sort=city)" "/api/clients?q=marg&sort=city" -H "$1"
  measure "GET /api/clients?sort=city (no q)" "/api/clients?sort=city" -H "$1"
  measure "GET /api/clients?sort=email (no q)" "/api/clients?sort=email" -H "$1"
  measure "GET /api/clients?sort=-phone (no q)" "/api/clients?sort=-phone" -H "$1"
  measure "GET /api/clients?sort=status (no q)" "/api/clients?sort=status" -H "$1"
}

search_rows() {
  local auth=$1
  measure "GET /api/search?q= ($SEARCH)" "/api/search?q=hamilton" -H "$auth"
  if [ "$ROWS" = search ]; then
    measure "search typo: mrgaret hamiltn" "/api/search?q=mrgaret%20hamiltn" -H "$auth"
    measure "search prefix: hamil" "/api/search?q=hamil" -H "$auth"
    measure "search with facets (the console's): hamilton" "/api/search?q=hamilton&facets=true" -H "$auth"
    measure "search phone digits: 555 123 0042" "/api/search?q=555%20123%200042" -H "$auth"
    measure "search as a sales rep: hamilton" "/api/search?q=hamilton" -H "Authorization: Bearer $REP_TOKEN"
  fi
}

run_backend() {
  local backend=$1 url data
  BACKEND=$backend
  data="$WORK/$backend"
  DATA=$data
  if [ "$backend" = sqlite ]; then
    url="sqlite://$data/bench.db"
  else
    url="${PG_ADMIN%/*}/rapport_http_bench_$CLIENTS"
  fi
  export DATABASE_URL=$url RAPPORT_DATA_DIR=$data RAPPORT_ADDR=127.0.0.1:$PORT
  if [ "${BENCH_RESEED:-0}" = 1 ] || [ ! -f "$data/seeded-$CLIENTS" ]; then
    rm -rf "$data"; mkdir -p "$data"
    if [ "$backend" = postgres ]; then
      psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS rapport_http_bench_$CLIENTS" -c "CREATE DATABASE rapport_http_bench_$CLIENTS"
    fi
    "$BIN" migrate >/dev/null
    "$BIN" org create "Bench" >/dev/null
    "$BIN" user create --org bench --email admin@bench.test --password "$PASSWORD" --role admin >/dev/null
    echo "seeding $CLIENTS clients and $DEALS deals on $backend…" >&2
    "$BIN" seed --org bench --clients "$CLIENTS" --deals "$DEALS" >&2
    touch "$data/seeded-$CLIENTS"
  fi
  if [ "$SEARCH" = embedded ] && [ ! -f "$data/embedded-indexed" ]; then
    "$BIN" search reindex --org bench >&2
    touch "$data/embedded-indexed"
  fi
  if [ "$SEARCH" = meilisearch ]; then use_meilisearch "$backend" "$data"; fi
  # why: seeding is single-threaded, so both backends can seed side by side on two cores
  # (BENCH_SEED_ONLY=1 in two shells) before one run measures them one after the other.
  if [ "${BENCH_SEED_ONLY:-0}" = 1 ]; then return; fi
  # Clients the create row added in an earlier run would sit newest-first in every list.
  if [ "$backend" = sqlite ]; then
    python3 -c "import sqlite3; c=sqlite3.connect('$data/bench.db'); c.execute(\"DELETE FROM clients WHERE email LIKE '%@load.test'\"); c.commit()"
  else
    psql -q "$url" -c "DELETE FROM clients WHERE email LIKE '%@load.test'"
  fi
  local token
  token=$("$BIN" token create --org bench --email admin@bench.test --name "bench $(date +%s)" | tail -1)
  unlimit "$token"
  "$BIN" serve >"$WORK/serve-$backend.log" 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null' EXIT
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
  # why: a fresh database's first start computes every client's scores and segments in the
  # background (about a minute at 1M); its CPU would be counted against the first rows.
  local idle=0 t0 t1
  for _ in $(seq 1 300); do
    t0=$(cpu_ticks "$PID"); sleep 1; t1=$(cpu_ticks "$PID")
    if [ $((t1 - t0)) -lt $((HZ / 20)) ]; then idle=$((idle + 1)); else idle=0; fi
    [ "$idle" -ge 3 ] && break
  done
  local auth="Authorization: Bearer $token"
  local client deal jar csrf cookie
  client=$(curl -sf -H "$auth" "http://127.0.0.1:$PORT/api/clients?limit=1&filter%5Btype%5D=individual" | python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['id'])")
  deal=$(curl -sf -H "$auth" "http://127.0.0.1:$PORT/api/opportunities?limit=1" | python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['id'])")
  # The console's session: sign in as a browser would (CSRF cookie and field).
  jar=$(mktemp)
  csrf=$(curl -s -c "$jar" "http://127.0.0.1:$PORT/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//')
  curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "email=admin@bench.test" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$csrf" "http://127.0.0.1:$PORT/login"
  cookie="Cookie: $(awk '$6=="rapport_session"{print "rapport_session="$7}' "$jar")"
  rm -f "$jar"
  local create_lua="$WORK/create.lua"
  cat >"$create_lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  local n = math.random(1, 1000000000)
  local body = string.format(
    '{"firstName":"Bench%d","lastName":"Person%d","email":"bench%d@load.test","phone":"+1 415 %03d %04d"}',
    n, n % 997, n, n % 1000, n % 10000)
  return wrk.format(nil, nil, nil, body)
end
LUA
  echo
  echo "### $backend, $CLIENTS clients, $DEALS deals, search $SEARCH, $CONNECTIONS connections ($(date -u +%F))"
  echo
  printf '| %-44s | %9s | %8s | %8s | %7s | %7s |\n' "endpoint" "req/s" "p50" "p99" "CPU ms" "DB ms"
  printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------------------------" "-----------" "----------" "----------" "---------" "---------"
  if [ "$ROWS" = search ]; then
    rep_check "$auth"
    search_rows "$auth"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    trap - EXIT
    return
  fi
  if [ "$ROWS" = dashboard ]; then
    measure "GET /api/clients/:id" "/api/clients/$client" -H "$auth"
    measure "GET / (console dashboard)" "/" -H "$cookie"
    measure "GET /api/dashboard" "/api/dashboard" -H "$auth"
    new_rep_rows
    kill "$PID"; wait "$PID" 2>/dev/null || true
    trap - EXIT
    return
  fi
  measure "GET /api/clients/:id" "/api/clients/$client" -H "$auth"
  if [ "$ROWS" = create ]; then
    measure "POST /api/clients (create)" /api/clients -H "$auth" -s "$create_lua"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    trap - EXIT
    return
  fi
  if [ "$ROWS" = lookups ]; then
    lookup_rows "$auth"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    trap - EXIT
    return
  fi
  if [ "$ROWS" = board ]; then
    measure "GET /opportunities/:id (console deal)" "/opportunities/$deal" -H "$cookie"
    board_rows "$cookie"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    trap - EXIT
    return
  fi
  measure "GET /clients/:id (console profile)" "/clients/$client" -H "$cookie"
  measure "GET /api/clients (first page)" "/api/clients?limit=50" -H "$auth"
  lookup_rows "$auth"
  measure "filter[status]&filter[type]&sort=name" "/api/clients?filter%5Bstatus%5D=customer&filter%5Btype%5D=company&sort=name" -H "$auth"
  measure "filter[type]=company" "/api/clients?filter%5Btype%5D=company" -H "$auth"
  search_rows "$auth"
  measure "GET /clients/:id/timeline (console)" "/clients/$client/timeline" -H "$cookie"
  measure "GET /api/opportunities/:id" "/api/opportunities/$deal" -H "$auth"
  measure "GET /opportunities/:id (console deal)" "/opportunities/$deal" -H "$cookie"
  board_rows "$cookie"
  # The admin's dashboard: the team's view, the most the page computes.
  measure "GET / (console dashboard)" "/" -H "$cookie"
  measure "GET /api/dashboard" "/api/dashboard" -H "$auth"
  new_rep_rows
  # Last, so the clients it adds do not change what the reads above see.
  measure "POST /api/clients (create)" /api/clients -H "$auth" -s "$create_lua"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  trap - EXIT
}

for b in $BACKENDS; do run_backend "$b"; done
