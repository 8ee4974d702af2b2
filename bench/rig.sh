# The real daemon against bin/fake-proxy and bin/fake-github on loopback, for bench/e2e,
# bench/idle and bench/startup (sourced after bench/lib.sh).
#
#   rig_init                  temp dir $RIG (removed on exit), binaries built
#   rig_release REPO TAG KIB  a tar.gz release asset of about KIB KiB (random data, so
#                             compressed size ~ KIB) at $RIG/releases/REPO/TAG/app-VER.tar.gz
#   rig_start_fakes           fake-github and fake-proxy (stdin on fd 3, stdout timestamped
#                             per line into $RIG/proxy.out as "<epoch seconds> <json>")
#   rig_config N [HEARTBEAT]  $RIG/agent.json with tarball components c0..c(N-1), repo
#                             bench/c<i>, install_dir $RIG/opt/c<i>, no health command
#   rig_start_agent           starts the daemon, sets AGENT_PID and AGENT_T0 (start time)
#   rig_stop_agent            SIGTERM and reap
#   rig_install_all N TAG     brings c0..c(N-1) to TAG through the daemon itself (setup)
#   rig_stop_github           stops fake-github

rig_init() {
    bench_build raspi-release-agent rra_plugin_tarball fake-proxy fake-github
    AGENT_BIN=$BUILD/bin/raspi-release-agent
    FAKE_PROXY=$BUILD/bin/fake-proxy
    FAKE_GITHUB=$BUILD/bin/fake-github
    RIG=$(mktemp -d /tmp/rra-bench-rig.XXXXXX)
    chmod 755 "$RIG"
    mkdir -p "$RIG/releases" "$RIG/opt"
    RIG_PIDS=()
    AGENT_PID=
    trap rig_cleanup EXIT
}

rig_cleanup() {
    [ -n "${RIG_KEEP_LOG:-}" ] && cp "$RIG/agent.log" "$RIG_KEEP_LOG" 2>/dev/null
    [ -n "${AGENT_PID:-}" ] && kill_wait "$AGENT_PID"
    exec 3>&- 2>/dev/null || true
    local p
    for p in "${RIG_PIDS[@]:-}"; do [ -n "$p" ] && kill_wait "$p"; done
    rm -rf "$RIG"
}

rig_release() {
    local repo=$1 tag=$2 kib=$3 v=${2#v}
    local src=$RIG/src/$repo/$tag dir=$RIG/releases/$repo/$tag
    mkdir -p "$src/bin" "$src/data" "$dir"
    printf '#!/bin/sh\necho "%s %s"\n' "$repo" "$tag" > "$src/bin/app"
    chmod 755 "$src/bin/app"
    echo "$tag" > "$src/VERSION"
    local i per=$(( (kib + 7) / 8 ))
    for i in 1 2 3 4 5 6 7 8; do
        head -c "$((per * 1024))" /dev/urandom > "$src/data/blob$i"
    done
    tar -C "$src" -czf "$dir/app-$v.tar.gz" .
    rm -rf "$src"
}

rig_start_fakes() {
    "$FAKE_GITHUB" --root "$RIG/releases" > "$RIG/github.out" 2> "$RIG/github.err" &
    GITHUB_PID=$!
    RIG_PIDS+=($!)
    mkfifo "$RIG/proxy.in"
    "$FAKE_PROXY" < "$RIG/proxy.in" > >(timestamp_lines > "$RIG/proxy.out") 2> "$RIG/proxy.err" &
    RIG_PIDS+=($!)
    exec 3> "$RIG/proxy.in"
    wait_for_count "$RIG/github.out" '^[0-9]' 1 10 || { echo "fake-github did not start" >&2; return 1; }
    wait_for_count "$RIG/proxy.out" '^[0-9.]+ [0-9]+$' 1 10 || { echo "fake-proxy did not start" >&2; return 1; }
    GPORT=$(head -n1 "$RIG/github.out")
    PPORT=$(head -n1 "$RIG/proxy.out" | cut -d' ' -f2)
}

# rig_stop_github: stops fake-github (bench/idle: nothing to fetch, and it shares library
# pages with the agent, which would lower the agent's PSS).
rig_stop_github() {
    kill_wait "$GITHUB_PID"
}

rig_config() {
    local n=$1 heartbeat=${2:-30} i sep=
    {
        printf '{\n  "agent": {"id": "bench-pi", "work_dir": "%s/work", "runtime_dir": "%s/run",\n' "$RIG" "$RIG"
        printf '            "components_dir": "%s/components.d", "plugin_dir": "%s/lib/raspi-release-agent/plugins"},\n' "$RIG" "$BUILD"
        printf '  "proxy": {"url": "ws://127.0.0.1:%s", "reconnect_initial_ms": 100, "heartbeat_s": %s},\n' "$PPORT" "$heartbeat"
        printf '  "github": {"api_url": "http://127.0.0.1:%s", "backoff_initial_s": 1, "backoff_max_s": 2},\n' "$GPORT"
        printf '  "components": [\n'
        for ((i = 0; i < n; i++)); do
            printf '%s    {"name": "c%d", "type": "tarball", "repo": "bench/c%d", "asset": "app-{version}.tar.gz",\n' "$sep" "$i" "$i"
            printf '     "verify_timeout_s": 10, "settings": {"install_dir": "%s/opt/c%d"}}' "$RIG" "$i"
            sep=$',\n'
        done
        printf '\n  ]\n}\n'
    } > "$RIG/agent.json"
    "$AGENT_BIN" --check-config --config="$RIG/agent.json" > "$RIG/check.out" 2>&1 ||
        { cat "$RIG/check.out" >&2; return 1; }
}

rig_start_agent() {
    AGENT_T0=$(now)
    "$AGENT_BIN" --config="$RIG/agent.json" 2>> "$RIG/agent.log" &
    AGENT_PID=$!
}

rig_stop_agent() {
    kill_wait "$AGENT_PID"
    AGENT_PID=
}

# count PATTERN: lines of proxy.out matching PATTERN so far.
rig_count() { grep -cE -- "$1" "$RIG/proxy.out" 2>/dev/null || true; }

rig_install_all() {
    local n=$1 tag=$2 i before
    for ((i = 0; i < n; i++)); do
        echo "sync c$i bench/c$i $tag" >&3
    done
    before=$(rig_count '"event":"apply_succeeded"')
    rig_start_agent
    if ! wait_for_count "$RIG/proxy.out" '"event":"apply_succeeded"' "$((before + n))" 300; then
        echo "setup: the agent did not install $n components" >&2
        tail -n 20 "$RIG/agent.log" >&2
        return 1
    fi
    rig_stop_agent
    for ((i = 0; i < n; i++)); do
        [ "$(readlink "$RIG/opt/c$i/current")" = "releases/$tag" ] ||
            { echo "setup: c$i is not on $tag" >&2; return 1; }
    done
}
