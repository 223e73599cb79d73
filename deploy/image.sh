#!/usr/bin/env bash
# Build (and with --push, publish) the connector image that the Helm chart
# runs by default. Run from anywhere inside the repository:
#
#   deploy/image.sh                 # docker build only
#   deploy/image.sh --push          # build, push, print the digest to pin
#   IMAGE=registry.example.com/team/sequence-kafka-connector deploy/image.sh --push
#   deploy/image.sh --dry-run --push   # print the commands, run nothing
#
# The tag is the package version from pyproject.toml. The chart's default tag
# is its appVersion, so the script refuses to run when the two differ: a chart
# install then pulls exactly what this script pushed. Pin the printed digest
# with `--set image.digest=sha256:...` for an immutable reference.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image=${IMAGE:-ghcr.io/sequence-kafka-connector/sequence-kafka-connector}
push=false
dry_run=false
for arg in "$@"; do
  case "$arg" in
    --push) push=true ;;
    --dry-run) dry_run=true ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "image.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$root/pyproject.toml")
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' \
  "$root/helm/sequence-kafka-connector/Chart.yaml")
if [[ "$version" != "$app_version" ]]; then
  echo "image.sh: pyproject.toml version $version != Chart.yaml appVersion $app_version;" \
    "bump them together so the chart's default tag is the image this builds" >&2
  exit 1
fi
ref="$image:$version"

run() {
  echo "$*"
  if [[ "$dry_run" == false ]]; then "$@"; fi
}

run docker build -f "$root/deploy/Dockerfile" --build-arg "VERSION=$version" -t "$ref" "$root"
if [[ "$push" == true ]]; then
  run docker push "$ref"
  if [[ "$dry_run" == false ]]; then
    # RepoDigests is filled in by the push: the digest to pin in image.digest
    docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref"
  fi
fi
