# Owns the `records` group of scripts/bench (sourced by it; not run alone):
# for each store of RECORDS_STORES, a fresh store (a SQLite file, or a
# PostgreSQL server of its own started as the `postgres` user with
# initdb/pg_ctl on a free loopback port), then `presence-loadtest records`,
# which starts its own hubs on 127.0.0.1:0, loads RECORDS_COUNT synthetic
# ended sessions through the hub's history-file import and measures. One
# store at a time, each bounded by RECORDS_LIMIT seconds (timeout stops the
# harness and the hubs it started); the store is removed afterwards.
#
# Environment:
#   RECORDS_COUNT   sessions to load [10000000; --quick 20000]
#   RECORDS_STORES  stores to run, in order [sqlite postgres]
#   RECORDS_LIMIT   seconds per store before the run is stopped [1500]
#   RECORDS_DIR     parent of the scratch directories [$TMPDIR or /tmp]
#   RECORDS_ARGS    extra presence-loadtest records options
#   RECORDS_KEEP=1  keep the loaded stores

# The issue's targets, judged on the report (exit 3 when one is missed).
RECORDS_TARGETS=(
  --fail-if 'query_p99_max_ms>100'
  --fail-if 'stats.latency_ms.p99>20'
  --fail-if 'analytics_max_ms>500'
  --fail-if 'export.rows_per_s<100000'
  --fail-if 'ingest.records_per_s<20000'
  --fail-if 'live_ingest.sessions_per_s<20000'
  --fail-if 'hub_rss_growth_bytes>50000000'
  --fail-if 'startup_ms>2000'
  --fail-if 'errors>0'
)

as_postgres() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DIR: initdb + pg_ctl start in DIR on a free port; sets PG_URL.
start_postgres() {
  local dir=$1 bin port
  bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n1)
  [[ -x $bin/initdb ]] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; return 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$dir/pg"
  [[ $(id -u) == 0 ]] && chown -R postgres:postgres "$dir/pg"
  as_postgres "$bin/initdb" -D "$dir/pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 > "$dir/pg/initdb.log" 2>&1
  PG_OPTIONS="-p $port -c listen_addresses=127.0.0.1 -k $dir/pg -c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=15min"
  as_postgres "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 60 -o "$PG_OPTIONS" start > /dev/null
  PG_CTL=$bin/pg_ctl PG_DATA=$dir/pg/data
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  printf 'postgres\t# initdb -A trust; pg_ctl start -o "%s"\n' "${PG_OPTIONS//$dir/\$SCRATCH}" >> "$OUT/commands.txt"
}

stop_postgres() {
  [[ -n ${PG_DATA:-} ]] || return 0
  as_postgres "$PG_CTL" -D "$PG_DATA" -m fast -w stop > /dev/null 2>&1 || true
  PG_DATA=
}

# records_runs: every store of RECORDS_STORES, one after the other.
records_runs() {
  local count=${RECORDS_COUNT:-10000000} limit=${RECORDS_LIMIT:-1500} store dir url path rc
  local scale=()
  if [[ $QUICK == 1 ]]; then
    count=${RECORDS_COUNT:-20000}
    scale=(--chunk 10000 --requests 20 --stats-requests 50 --analytics-runs 1 --live-sessions 2000)
  fi
  read -r -a extra <<< "${RECORDS_ARGS:-}"
  for store in ${RECORDS_STORES:-sqlite postgres}; do
    dir=$(mktemp -d "${RECORDS_DIR:-${TMPDIR:-/tmp}}/presence-records-$store.XXXXXX")
    chmod 755 "$dir"
    case $store in
      sqlite) url="sqlite://$dir/records.db"; path=$dir/records.db ;;
      postgres) start_postgres "$dir" || continue; url=$PG_URL; path=$dir/pg/data ;;
      *) echo "RECORDS_STORES: unknown store $store" >&2; continue ;;
    esac
    local file=$OUT/records-$store.json
    local cmd=(presence-loadtest records --hub-bin presence-hub --database-url "$url" --count "$count"
      --work-dir "$dir" --store-path "$path" "${scale[@]+"${scale[@]}"}" "${extra[@]+"${extra[@]}"}"
      "${RECORDS_TARGETS[@]}" --json "$file")
    printf 'records-%s\t%s\n' "$store" "${cmd[*]//$dir/\$SCRATCH}" >> "$OUT/commands.txt"
    log "records-$store: ${cmd[*]} (limit ${limit}s); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    rc=0
    cmd[3]=$HUB_BIN
    timeout --kill-after=15 "$limit" "$LT_BIN" "${cmd[@]:1}" 2>&1 | tee "$OUT/records-$store.out" || rc=${PIPESTATUS[0]}
    echo "records-$store: exit $rc; load after: $(cut -d' ' -f1-3 /proc/loadavg); report $file" >&2
    [[ $store == postgres ]] && stop_postgres
    if [[ ${RECORDS_KEEP:-0} == 1 ]]; then echo "store kept in $dir" >&2; else rm -rf "$dir"; fi
    [[ -s $file ]] && RECORDS_REPORTS+=("$file")
  done
}
