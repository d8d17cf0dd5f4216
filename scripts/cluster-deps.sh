#!/usr/bin/env bash
# etcd and NATS for the real-cluster tests of pitaya-cluster.
#
#   eval "$(scripts/cluster-deps.sh start)"   # install if missing, start both, export the env
#   cargo test -p pitaya-cluster --features real-cluster-tests
#   scripts/cluster-deps.sh stop              # stop both (by their saved PIDs)
#
#   scripts/cluster-deps.sh install           # only install the Debian packages
#   scripts/cluster-deps.sh env               # print the exports of the running pair
#
# `start` installs the Debian packages etcd-server, nats-server and
# protobuf-compiler with apt when the commands are absent, starts etcd and
# nats-server on free 127.0.0.1 ports in a temporary directory, waits until
# both answer, and prints on stdout (everything else goes to stderr):
#
#   export PITAYA_TEST_ETCD=http://127.0.0.1:<port>
#   export PITAYA_TEST_NATS=nats://127.0.0.1:<port>
#
# The state (PIDs, ports, data, logs) lives in $PITAYA_CLUSTER_DEPS_DIR
# (default: $TMPDIR/pitaya-cluster-deps). `start` first stops a pair left
# there by an earlier `start`.
set -euo pipefail

state_dir="${PITAYA_CLUSTER_DEPS_DIR:-${TMPDIR:-/tmp}/pitaya-cluster-deps}"
log() { echo "cluster-deps: $*" >&2; }

install() {
    # command -> Debian package
    local -A packages=([etcd]=etcd-server [nats-server]=nats-server [protoc]=protobuf-compiler)
    local missing=() cmd
    for cmd in "${!packages[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || [[ $cmd == nats-server && -x /usr/sbin/nats-server ]] ||
            missing+=("${packages[$cmd]}")
    done
    ((${#missing[@]})) || return 0
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    log "installing: ${missing[*]}"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    # The packages ship services; the tests start their own processes.
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        $sudo systemctl disable --now etcd nats-server >/dev/null 2>&1 || true
    fi
}

find_bin() {
    local name=$1 dir
    command -v "$name" 2>/dev/null && return 0
    for dir in /usr/sbin /usr/bin /usr/local/bin; do
        [[ -x $dir/$name ]] && { echo "$dir/$name"; return 0; }
    done
    log "error: $name not found (run: $0 install)"
    return 1
}

# A TCP port nobody listens on at the moment, on 127.0.0.1.
free_port() {
    python3 - <<'EOF' 2>/dev/null && return 0
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    log "error: no free port found"
    return 1
}

wait_until() {
    local what=$1 pid=$2 log_file=$3
    shift 3
    for _ in $(seq 1 150); do
        if "$@"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "error: $what exited; its log ($log_file):"
            tail -n 30 "$log_file" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "error: $what did not answer within 15 s; its log ($log_file):"
    tail -n 30 "$log_file" >&2 || true
    return 1
}

# GET /health answers {"health":"true"} once etcd serves requests.
etcd_healthy() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        timeout 2 cat <&3 | grep -q '"health":"true"'
    ) 2>/dev/null
}

# nats-server greets every client with an INFO line.
nats_ready() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 1 line <&3 || exit 1
        [[ $line == INFO* ]]
    ) 2>/dev/null
}

stop() {
    local name pid
    for name in nats etcd; do
        [[ -f $state_dir/$name.pid ]] || continue
        pid=$(cat "$state_dir/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
            log "stopped $name (pid $pid)"
        fi
        rm -f "$state_dir/$name.pid"
    done
    rm -rf "$state_dir/etcd-data" "$state_dir/env"
}

print_env() {
    [[ -f $state_dir/env ]] || { log "error: not started (run: $0 start)"; return 1; }
    cat "$state_dir/env"
}

start() {
    install
    local etcd_bin nats_bin
    etcd_bin=$(find_bin etcd)
    nats_bin=$(find_bin nats-server)

    stop
    mkdir -p "$state_dir"

    local etcd_port etcd_peer nats_port
    etcd_port=$(free_port)
    etcd_peer=$(free_port)
    while [[ $etcd_peer == "$etcd_port" ]]; do etcd_peer=$(free_port); done
    nats_port=$(free_port)
    while [[ $nats_port == "$etcd_port" || $nats_port == "$etcd_peer" ]]; do nats_port=$(free_port); done

    # setsid: the servers outlive this script and do not get the terminal's signals.
    setsid "$etcd_bin" \
        --name pitaya-test \
        --data-dir "$state_dir/etcd-data" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "pitaya-test=http://127.0.0.1:$etcd_peer" \
        --log-level error \
        </dev/null >"$state_dir/etcd.log" 2>&1 &
    echo $! >"$state_dir/etcd.pid"

    setsid "$nats_bin" -a 127.0.0.1 -p "$nats_port" \
        </dev/null >"$state_dir/nats.log" 2>&1 &
    echo $! >"$state_dir/nats.pid"

    if ! wait_until etcd "$(cat "$state_dir/etcd.pid")" "$state_dir/etcd.log" etcd_healthy "$etcd_port" ||
        ! wait_until nats-server "$(cat "$state_dir/nats.pid")" "$state_dir/nats.log" nats_ready "$nats_port"; then
        stop
        return 1
    fi

    cat >"$state_dir/env" <<EOF
export PITAYA_TEST_ETCD=http://127.0.0.1:$etcd_port
export PITAYA_TEST_NATS=nats://127.0.0.1:$nats_port
EOF
    log "etcd on 127.0.0.1:$etcd_port (pid $(cat "$state_dir/etcd.pid")), nats-server on 127.0.0.1:$nats_port (pid $(cat "$state_dir/nats.pid")); state in $state_dir"
    print_env
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) install ;;
    env) print_env ;;
    *)
        echo "usage: $0 start|stop|install|env" >&2
        exit 2
        ;;
esac
