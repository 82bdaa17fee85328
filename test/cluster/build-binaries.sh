#!/usr/bin/env bash
# Builds the test cluster's binaries from Go modules into a cache outside the clone,
# keyed by version, so the second run finds them and starts in seconds.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                              (go.etcd.io/etcd/server/v3)
#   kwok                                                              (sigs.k8s.io/kwok)
#   helm                                                              (helm.sh/helm/v3)
#   promtool                                                          (github.com/prometheus/prometheus)
#     (not part of the cluster: the alert rule tests evaluate the chart's rules with it)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# Prometheus' Go module versions are v0.<major><minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE="${UNDERSTUDY_CACHE:-$HOME/.cache/understudy}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
ONLY="${1:-all}"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build-binaries: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH; the test cluster is built from Go modules (Go 1.26+ needed)."
mkdir -p "$BIN" "$WORK"

# Upstream builds release binaries this way.
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath"
GO_BUILD=(go build -tags selinux,notest)

want() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }
have() { [ -x "$BIN/$1" ]; }

# One atomic rename per binary: an interrupted build never leaves a half-written file in the cache.
install_bin() { mv -f "$1" "$BIN/$2"; log "cached $BIN/$2"; }

build_kubernetes() {
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=()
  for n in "${names[@]}"; do have "$n-$KUBE_VERSION" || missing+=("$n"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local dir="$WORK/kubernetes-$KUBE_VERSION"
  mkdir -p "$dir"
  log "preparing a wrapper module for k8s.io/kubernetes $KUBE_VERSION in $dir"
  ( cd "$dir"
    go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" > mod.json || die "the Go module proxy did not serve k8s.io/kubernetes@$KUBE_VERSION"
    local upstream_mod
    upstream_mod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' mod.json)
    local godebug
    godebug=$(grep -E '^godebug ' "$upstream_mod" || true)
    {
      echo "module understudy.dev/testcluster/kubernetes"
      echo
      grep -E '^go ' "$upstream_mod"
      [ -n "$godebug" ] && echo "$godebug"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      # k8s.io/kubernetes points each staging module at ./staging; point them at the published versions instead.
      grep -E '=> \./staging' "$upstream_mod" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
    log "resolving modules (go mod tidy)"
    go mod tidy -e >tidy.log 2>&1 || { tail -20 tidy.log >&2; die "go mod tidy failed for k8s.io/kubernetes $KUBE_VERSION"; }
  )
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for n in "${missing[@]}"; do
    local pkg="k8s.io/kubernetes/cmd/$n"
    log "building $n $KUBE_VERSION (a cold build takes many minutes on 2 cores)"
    ( cd "$dir" && "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$n.tmp" "$pkg" ) || die "go build of $pkg failed"
    install_bin "$dir/$n.tmp" "$n-$KUBE_VERSION"
  done
}

build_simple() { # name version module package
  local name="$1" version="$2" module="$3" pkg="$4" ldflags="${5:-}"
  have "$name-$version" && return 0
  local dir="$WORK/$name-$version"
  mkdir -p "$dir"
  log "building $name $version from $module"
  ( cd "$dir"
    [ -f go.mod ] || go mod init "understudy.dev/testcluster/$name" >/dev/null 2>&1
    cat > tools.go <<GO
//go:build tools

package tools

import _ "$pkg"
GO
    go get "$module@$version" >get.log 2>&1 || { tail -20 get.log >&2; die "the Go module proxy did not serve $module@$version"; }
    go mod tidy -e >tidy.log 2>&1 || { tail -20 tidy.log >&2; die "go mod tidy failed for $module@$version"; }
    "${GO_BUILD[@]}" -ldflags "-s -w $ldflags" -o "$name.tmp" "$pkg"
  ) || die "go build of $pkg failed"
  install_bin "$dir/$name.tmp" "$name-$version"
}

want etcd && build_simple etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
want kwok && build_simple kwok "$KWOK_VERSION" sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
want kubernetes && build_kubernetes
want helm && build_simple helm "$HELM_VERSION" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
want promtool && build_simple promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus \
  github.com/prometheus/prometheus/cmd/promtool
log "done: binaries in $BIN"
