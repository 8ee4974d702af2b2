# Shared helpers of the bench/* scripts (sourced, not run).
#
# Every benchmark prints its human-readable output and, for each figure, one machine-readable
# line that bench/run collects into its table:
#   RESULT<TAB>figure<TAB>value<TAB>unit<TAB>baseline<TAB>ratio<TAB>target<TAB>met
# `baseline` and `ratio` are "-" for a figure measured against a fixed target only.
#
# Env read here: BUILD_DIR (default <repo>/build-bench, configured Release when new),
# JOBS (2), RUNS (3), QUICK (0; 1 shrinks every size so the whole table takes minutes).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$BENCH_ROOT/build-bench}
RUNS=${RUNS:-3}
QUICK=${QUICK:-0}

# bench_build TARGET...: configures $BUILD (Release) when it has no cache yet, builds the
# targets. An existing build directory keeps its own build type.
bench_build() {
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$BENCH_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$BUILD" -j"${JOBS:-2}" --target "$@" >/dev/null
}

# median: the median of the numbers on stdin, one a line (mean of the middle two when even).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]
        else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR: floating-point arithmetic (awk), e.g. calc "3 / 7".
calc() { awk "BEGIN { printf \"%.6g\n\", $1 }"; }

# is_true EXPR: exit status 0 when the awk condition holds, e.g. is_true "1.2 <= 1.5".
is_true() { awk "BEGIN { exit !($1) }"; }

# result FIGURE VALUE UNIT BASELINE RATIO TARGET MET
result() {
    printf 'RESULT\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"
}

# yesno EXPR: "yes" when the awk condition holds, else "no".
yesno() { if is_true "$1"; then echo yes; else echo no; fi; }

# now: wall-clock seconds with microseconds, without forking.
now() { echo "${EPOCHREALTIME/,/.}"; }

# timestamp_lines: copies stdin to stdout, each line prefixed with the time it was read.
# Used on the fake proxy's stdout, so "received by the proxy" is timed where it happens
# instead of by polling a file.
timestamp_lines() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "${EPOCHREALTIME/,/.}" "$line"
    done
}

# wait_for_count FILE PATTERN COUNT TIMEOUT_S: waits until FILE holds COUNT lines matching
# the extended regex PATTERN; exit status 1 on timeout.
wait_for_count() {
    local file=$1 pattern=$2 count=$3 limit=$(($4 * 100)) i=0
    while [ "$(grep -cE -- "$pattern" "$file" 2>/dev/null || true)" -lt "$count" ]; do
        i=$((i + 1))
        [ "$i" -gt "$limit" ] && return 1
        sleep 0.01
    done
    return 0
}

# kill_wait PID: SIGTERM, then SIGKILL after 5 s, and reaps it.
kill_wait() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
