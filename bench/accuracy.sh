#!/usr/bin/env bash
# Measure how well layerscope finds what only the build needed, on real
# single-stage / multi-stage pairs of six stacks and three stress pairs
# (issue 18). Run by hand, never from the tests: the first run builds twenty
# images (about 45 minutes on a busy 2-core machine); later runs reuse them.
#
#   bench/accuracy.sh                          # build what is missing, measure all stacks
#   bench/accuracy.sh --stacks "go rust"       # some stacks only
#   LAYERSCOPE=/path/to/layerscope bench/accuracy.sh --label after
#
# Options (environment variables in brackets):
#   --stacks "S ..."  python node java rust go cpp builder python-rec pyvenv
#                     (default: all) [STACKS]
#   --label NAME      names the results directory and the table heading [LABEL, default "run"]
#   --out DIR         where results go [OUT, default target/accuracy/LABEL]
#   --no-build        measure only; a missing image is an error [NO_BUILD=1]
#   --rebuild         rebuild every pair even if it is up to date [REBUILD=1]
#   -h                this help
# Other environment variables:
#   LAYERSCOPE   the binary under test (default target/release/layerscope of this tree)
#   BASE_IMAGE   the Debian base every pair builds FROM (default acc-base:bookworm,
#                made by bench/accuracy/make-base.sh when missing)
#   CA_BUNDLE    CA bundle given to the builds for PyPI and npm (default
#                /etc/ssl/certs/ca-certificates.crt: the TLS proxy here is trusted only by the host)
#
# Per stack it builds acc-STACK-single and acc-STACK-multi from
# bench/accuracy/stacks/STACK (the Go stack also acc-go-scratch, its FROM
# scratch twin). A stack with a Dockerfile.base first gets acc-STACK-base,
# the image its pair builds FROM (the builder stack: a buildpack-deps-like
# base). An image is rebuilt only when its build context or the images it
# builds FROM changed (a label carries their digest). Then bench/accuracy/measure.py
# computes the ground truth from the images themselves (dpkg databases and
# file lists read out of `docker export`), runs layerscope on both images
# and prints one row per stack; docs/accuracy.md says how each number is made.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
all_stacks="python node java rust go cpp builder python-rec pyvenv"
stacks=${STACKS:-$all_stacks}
label=${LABEL:-run}
out=${OUT:-}
no_build=${NO_BUILD:-}
rebuild=${REBUILD:-}
base=${BASE_IMAGE:-acc-base:bookworm}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
while [ $# -gt 0 ]; do
  case "$1" in
    --stacks) stacks=${2:?--stacks needs a list}; shift 2 ;;
    --label) label=${2:?--label needs a name}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) no_build=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "accuracy.sh: unknown argument: $1 (see -h)" >&2; exit 2 ;;
  esac
done
out=${out:-$repo/target/accuracy/$label}
layerscope=${LAYERSCOPE:-$repo/target/release/layerscope}
for s in $stacks; do
  [ -d "$here/accuracy/stacks/$s" ] || { echo "accuracy.sh: no stack '$s' (have: $all_stacks)" >&2; exit 2; }
done
[ -x "$layerscope" ] || { echo "accuracy.sh: no layerscope binary at $layerscope (cargo build --release, or set LAYERSCOPE)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "accuracy.sh: python3 is needed" >&2; exit 2; }
docker version -f '{{.Server.Version}}' >/dev/null 2>&1 || { echo "accuracy.sh: no Docker engine answers" >&2; exit 2; }
mkdir -p "$out"

if [ -z "$no_build" ]; then
  "$here/accuracy/make-base.sh" "$base"
fi
docker image inspect "$base" >/dev/null 2>&1 || { echo "accuracy.sh: base image $base is missing" >&2; exit 2; }

# build IMAGE STACK DOCKERFILE [FROM-IMAGE...]: build unless the image carries
# this context's digest. FROM-IMAGEs beyond the base enter the digest too.
build() {
  local image=$1 stack=$2 dockerfile=$3 ctx digest have start secs
  shift 3
  local from=("$base" "$@")
  ctx=$(mktemp -d "${TMPDIR:-/tmp}/acc-ctx.XXXXXX")
  cp -r "$here/accuracy/stacks/$stack/." "$ctx/"
  cp "$ca" "$ctx/host-ca.crt"
  # The digest covers this Dockerfile, the stack's other files (not its other
  # Dockerfiles) and the ids of the images it builds FROM; not the CA bundle.
  digest=$( (cd "$here/accuracy/stacks/$stack" && \
             find . -type f \( -name "$dockerfile" -o ! -name 'Dockerfile*' \) -print0 | sort -z | xargs -0 sha256sum; \
             docker image inspect -f '{{.Id}}' "${from[@]}") | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{index .Config.Labels "layerscope.accuracy.context"}}' "$image" 2>/dev/null || true)
  if [ -z "$rebuild" ] && [ "$have" = "$digest" ]; then
    echo "  $image: up to date"
    rm -rf "$ctx"
    return 0
  fi
  if [ -n "$no_build" ]; then
    echo "accuracy.sh: $image is missing or out of date and --no-build was given" >&2
    rm -rf "$ctx"
    return 1
  fi
  start=$(date +%s)
  if ! DOCKER_BUILDKIT=0 docker build -q --label "layerscope.accuracy.context=$digest" \
      -t "$image" -f "$ctx/$dockerfile" "$ctx" >"$out/build-$image.log" 2>&1; then
    tail -n 30 "$out/build-$image.log" >&2
    echo "accuracy.sh: building $image failed (log $out/build-$image.log)" >&2
    rm -rf "$ctx"
    return 1
  fi
  secs=$(( $(date +%s) - start ))
  # One line per image: the latest build's seconds.
  { grep -v "^$image	" "$out/build-times.tsv" 2>/dev/null || true; printf '%s\t%s\n' "$image" "$secs"; } >"$out/build-times.tmp"
  mv "$out/build-times.tmp" "$out/build-times.tsv"
  echo "  $image: built in ${secs}s"
  rm -rf "$ctx"
}

echo "images (base $base):"
for s in $stacks; do
  extra=()
  if [ -f "$here/accuracy/stacks/$s/Dockerfile.base" ]; then
    build "acc-$s-base" "$s" Dockerfile.base
    extra=("acc-$s-base")
  fi
  build "acc-$s-single" "$s" Dockerfile.single "${extra[@]}"
  build "acc-$s-multi" "$s" Dockerfile.multi "${extra[@]}"
  if [ -f "$here/accuracy/stacks/$s/Dockerfile.scratch" ]; then
    build "acc-$s-scratch" "$s" Dockerfile.scratch
  fi
done

echo "measuring with $layerscope ($("$layerscope" --version 2>/dev/null || echo unknown version)); load: $(uptime | sed 's/.*load average/load average/')"
args=()
for s in $stacks; do args+=("$s"); done
python3 "$here/accuracy/measure.py" --layerscope "$layerscope" --out "$out" --label "$label" "${args[@]}"
