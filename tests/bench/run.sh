#!/bin/bash
# tests/bench/run.sh: throughput and latency of webpoold side by side with
# nginx and lighttpd, in the same run, on the same files, with the same load.
#
# It prints figures; it asserts nothing about speed. It fails (exit 1) only if
# a server cannot be started or serves wrong bytes, so a broken server is
# never reported as a fast one.
#
# Usage, as root, from anywhere:   tests/bench/run.sh
# Environment:
#   BENCH_SECONDS       length of each wrk run, 1..600 s         (default 10)
#   BENCH_CONNECTIONS   wrk connections, 1..10000                 (default 64)
#   BENCH_THREADS       wrk threads, 1..64                        (default 2)
#   BENCH_SERVERS       which servers, in order                   (default "webpoold nginx lighttpd")
#   BENCH_OUT           a directory to keep the raw wrk outputs in (default: not kept)
#   WEBPOOLD            the webpoold binary (default: build/webpoold, built with make if missing)
#
# Servers run one at a time, on 127.0.0.1 only, each on a free port that it
# binds itself, each stopped with SIGTERM (by PID) after its runs. Everything
# it creates lives in one temporary directory removed on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
SERVERS=${BENCH_SERVERS:-webpoold nginx lighttpd}
OUT=${BENCH_OUT:-}
WEBPOOLD=${WEBPOOLD:-$top/build/webpoold}

note() { printf '# %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 2; }

int_in() { # VALUE MIN MAX
    [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 >= $2 && 10#$1 <= $3 ))
}
int_in "$SECONDS_PER_RUN" 1 600 || die "BENCH_SECONDS must be a whole number of seconds, 1 to 600"
int_in "$CONNECTIONS" 1 10000 || die "BENCH_CONNECTIONS must be 1 to 10000"
int_in "$THREADS" 1 64 || die "BENCH_THREADS must be 1 to 64"
(( THREADS <= CONNECTIONS )) || THREADS=$CONNECTIONS
for s in $SERVERS; do
    case $s in webpoold|nginx|lighttpd) ;; *) die "unknown server in BENCH_SERVERS: $s" ;; esac
done
[[ $(id -u) == 0 ]] || note "not root: installing packages will fail if any is missing"

# ---------------------------------------------------------------- cleanup
tmp=""
server_pid=""
our_policy=""
cleanup() {
    local rc=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [[ -n $our_policy ]] && rm -f "$our_policy"
    [[ -n $tmp && -d $tmp ]] && rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v curl >/dev/null || need_pkgs+=(curl)
command -v wrk >/dev/null || need_pkgs+=(wrk)
for s in $SERVERS; do
    case $s in
        nginx) [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light) ;;
        lighttpd) [[ -x /usr/sbin/lighttpd ]] || need_pkgs+=(lighttpd) ;;
    esac
done
if (( ${#need_pkgs[@]} )); then
    note "installing ${need_pkgs[*]}"
    # The packages' maintainer scripts would start nginx and lighttpd as
    # services on port 80; a policy-rc.d that answers 101 stops that.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        our_policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$our_policy"
        chmod 755 "$our_policy"
    fi
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2
    if [[ -n $our_policy ]]; then rm -f "$our_policy"; our_policy=""; fi
fi

if [[ " $SERVERS " == *" webpoold "* && ! -x $WEBPOOLD ]]; then
    note "building webpoold"
    make -C "$top" >&2
fi

# ---------------------------------------------------------------- files
tmp=$(mktemp -d /tmp/webpoold-bench.XXXXXX)
chmod 755 "$tmp" # nginx's workers run as nobody and must reach the root
root=$tmp/www
mkdir -m 755 "$root"
head -c 100 /dev/urandom >"$root/100.bin"
head -c 16384 /dev/urandom >"$root/16k.bin"
head -c 1048576 /dev/urandom >"$root/1m.bin"
chmod 644 "$root"/*
FILES=(100.bin 16k.bin 1m.bin)
declare -A SIZE_LABEL=([100.bin]="100 B" [16k.bin]="16 KiB" [1m.bin]="1 MiB")
results=$tmp/results.tsv
: >"$results"
[[ -n $OUT ]] && mkdir -p "$OUT"

# A port on 127.0.0.1 that no socket uses now, not even one in TIME-WAIT,
# picked below the kernel's ephemeral range so that wrk's own client sockets
# (and their TIME-WAIT leftovers) cannot be holding it. The server binds it.
free_port() {
    local p lo
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
    (( lo > 11000 )) || lo=61000 # unusual range: take ports above 61000 instead
    for _ in $(seq 100); do
        if (( lo == 61000 )); then p=$((61000 + RANDOM % 4000)); else p=$((10000 + RANDOM % (lo - 10000))); fi
        if command -v ss >/dev/null; then
            [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]] || continue
        elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            continue
        fi
        echo "$p"
        return 0
    done
    return 1
}

# ---------------------------------------------------------------- servers
# Each start_X writes a config under $tmp/X, starts the server in the
# foreground as a child of this script and sets server_pid and server_log.
start_webpoold() {
    local d=$tmp/webpoold
    mkdir -p "$d"
    cat >"$d/webpoold.conf" <<EOF
[server]
listen = 127.0.0.1:$port
root = $root
workers = 2
max_connections = 4096

[log]
level = info
access = off
EOF
    server_log=$d/log
    server_out=$d/log
    "$WEBPOOLD" -c "$d/webpoold.conf" >"$server_log" 2>&1 &
    server_pid=$!
}

start_nginx() {
    local d=$tmp/nginx
    mkdir -p "$d/logs" "$d/body"
    cat >"$d/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $d/body;
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
EOF
    server_log=$d/logs/error.log
    server_out=$d/logs/stdout
    /usr/sbin/nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf" >"$server_out" 2>&1 &
    server_pid=$!
}

start_lighttpd() {
    local d=$tmp/lighttpd
    mkdir -p "$d"
    cat >"$d/lighttpd.conf" <<EOF
server.document-root = "$root"
server.port = $port
server.bind = "127.0.0.1"
server.errorlog = "$d/error.log"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 75
server.max-fds = 8192
server.max-connections = 4096
mimetype.assign = ( ".bin" => "application/octet-stream" )
EOF
    server_log=$d/error.log
    server_out=$d/stdout
    /usr/sbin/lighttpd -D -f "$d/lighttpd.conf" >"$server_out" 2>&1 &
    server_pid=$!
}

# Until the server answers a request (webpoold: and has logged "serving"), 10 s at most.
wait_ready() { # NAME
    for _ in $(seq 100); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            note "$1 exited before answering; its log:"
            cat "$server_log" >&2 2>/dev/null || true
            [[ $server_out == "$server_log" ]] || cat "$server_out" >&2 2>/dev/null || true
            return 1
        fi
        if [[ $1 != webpoold ]] || grep -q serving "$server_log" 2>/dev/null; then
            if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/100.bin"; then
                return 0
            fi
        fi
        sleep 0.1
    done
    note "$1 did not answer within 10 s"
    return 1
}

# Every file, fetched once, must come back whole: status 200 and the same sha256.
verify() { # NAME
    local f got want code
    for f in "${FILES[@]}"; do
        code=$(curl -s --max-time 10 -o "$tmp/fetched" -w '%{http_code}' "http://127.0.0.1:$port/$f") || code="curl failed"
        want=$(sha256sum <"$root/$f" | cut -d' ' -f1)
        got=$(sha256sum <"$tmp/fetched" | cut -d' ' -f1)
        if [[ $code != 200 || $got != "$want" ]]; then
            note "$1 served /$f wrong: status $code, sha256 $got, expected $want"
            return 1
        fi
    done
    rm -f "$tmp/fetched"
    note "$1: ${FILES[*]} served byte for byte (sha256 checked)"
}

stop_server() { # NAME
    local rc=0 alive=false
    [[ -n $server_pid ]] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then alive=true; fi
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
        note "$1 still running 15 s after SIGTERM; killing it"
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || rc=$?
    server_pid=""
    if $alive && (( rc != 0 )); then
        note "$1 exited with status $rc after SIGTERM"
        stop_notes+=("$1 exited with status $rc after SIGTERM")
    fi
}

# ---------------------------------------------------------------- wrk
# CPU time (user + system, in clock ticks) used so far by the server: its
# process, all its threads, and its child processes (nginx's workers).
server_cpu_ticks() {
    local p total=0 stat
    for p in $server_pid $(pgrep -P "$server_pid" || true); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) } # after "(comm) ": field 3 onwards
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12])) # utime, stime: fields 14 and 15
    done
    echo "$total"
}

# One run; appends a tab-separated line to $results:
# test server req/s transfer/s lat_avg p99 requests non2xx socket_errors server_cpu
bench() { # NAME FILE MODE(keep-alive|close)
    local name=$1 file=$2 mode=$3 raw label
    local -a extra=()
    [[ $mode == close ]] && extra=(-H "Connection: close")
    raw=$tmp/wrk-$name-$file-$mode.txt
    label="${SIZE_LABEL[$file]} $mode"
    note "$name: $label: wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s ${extra[*]}"
    local cpu0 cpu1
    cpu0=$(server_cpu_ticks)
    # wrk stops itself after -d; timeout only guards against a hung client.
    if ! timeout $((SECONDS_PER_RUN + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" \
            --timeout 5s --latency "${extra[@]}" "http://127.0.0.1:$port/$file" >"$raw" 2>&1; then
        note "wrk failed for $name $label:"
        cat "$raw" >&2
    fi
    cpu1=$(server_cpu_ticks)
    [[ -n $OUT ]] && cp "$raw" "$OUT/"
    awk -v test="$label" -v server="$name" -v ticks=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v secs="$SECONDS_PER_RUN" '
        $1 == "Latency" && $2 != "Distribution" { avg = $2 }
        $1 == "99%" { p99 = $2 }
        / requests in / { total = $1 }
        /^  Socket errors:/ {
            gsub(",", ""); sock = $4 + $6 + $8 + $10
        }
        /^  Non-2xx or 3xx responses:/ { non2xx = $NF }
        /^Requests\/sec:/ { rps = $2 }
        /^Transfer\/sec:/ { tps = $2 }
        END {
            if (rps == "") { rps = "FAILED"; tps = avg = p99 = total = "-" }
            cpu = sprintf("%.0f%%", 100 * ticks / hz / secs)
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", test, server, rps, tps, avg, p99, total, non2xx, sock, cpu
        }' "$raw" >>"$results"
}

# ---------------------------------------------------------------- versions
versions=()
for s in $SERVERS; do
    case $s in
        webpoold) versions+=("webpoold $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?') ($WEBPOOLD)") ;;
        nginx) versions+=("$( (/usr/sbin/nginx -v 2>&1 || true) | sed 's/^nginx version: //')") ;;
        lighttpd) versions+=("$( (/usr/sbin/lighttpd -v 2>&1 || true) | head -1 | cut -d' ' -f1)") ;;
    esac
done
versions+=("$( (wrk -v 2>&1 || true) | head -1 | cut -d' ' -f1-2)") # wrk -v exits 1

# ---------------------------------------------------------------- run
failed=()
stop_notes=()
for s in $SERVERS; do
    # Should another program take the port between our look and the
    # server's bind, the server exits at once: try another port, 3 at most.
    ready=false
    for attempt in 1 2 3; do
        port=$(free_port) || die "no free port found on 127.0.0.1"
        note "starting $s on 127.0.0.1:$port"
        "start_$s"
        if wait_ready "$s"; then ready=true; break; fi
        stop_server "$s"
        (( attempt < 3 )) && note "trying $s again on another port"
    done
    if ! $ready || ! verify "$s"; then
        failed+=("$s")
        stop_server "$s"
        continue
    fi
    # One second of load first, not recorded, so no server is measured cold.
    timeout 30 wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/16k.bin" >/dev/null 2>&1 || true
    for f in "${FILES[@]}"; do
        bench "$s" "$f" keep-alive
    done
    bench "$s" 100.bin close
    if ! kill -0 "$server_pid" 2>/dev/null; then
        note "$s died during its runs; its log:"
        tail -20 "$server_log" >&2 || true
        failed+=("$s")
    fi
    stop_server "$s"
done

# ---------------------------------------------------------------- report
echo
echo "webpoold benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s --latency per run, over 127.0.0.1; client and server share the machine"
echo "server CPU: user+system time the server used during the run, 100% = one whole core (the machine has $(nproc)); wrk uses the rest"
vlist=$(IFS=';'; echo "${versions[*]}")
printf 'versions: %s\n' "${vlist//;/; }"
echo
echo "| file, connections | server | requests/s | vs nginx | transfer/s | latency avg | p99 | requests | non-2xx | socket errors | server CPU |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for t in "100 B keep-alive" "16 KiB keep-alive" "1 MiB keep-alive" "100 B close"; do
    awk -F'\t' -v t="$t" '
        $1 == t { row[++n] = $0; if ($2 == "nginx") ref = $3 }
        END {
            for (i = 1; i <= n; i++) {
                split(row[i], f, "\t")
                rel = (ref > 0 && f[3] != "FAILED") ? sprintf("%.2f", f[3] / ref) : "-"
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", \
                    f[1], f[2], f[3], rel, f[4], f[5], f[6], f[7], f[8], f[9], f[10]
            }
        }' "$results"
done
for n in "${stop_notes[@]}"; do echo "note: $n"; done
if (( ${#failed[@]} )); then
    echo "FAILED (not started, wrong bytes or died): ${failed[*]}"
    exit 1
fi
