#!/usr/bin/env bash
# `npm run image`: builds the project's image from the Dockerfile without a Docker engine.
#
# The base image is made here, not pulled: a Debian root filesystem from Debian's packages
# (mmdebstrap) with Node.js from the npm registry's node-linux-<arch> package (the build of Node
# that the project's node@24 devDependency installs) and npm from the npm registry. It is cached,
# keyed by those versions, in buildah's storage under ~/.cache/understudy/image, so the Dockerfile
# then builds with pulling turned off (buildah build --pull=never) and its steps are reused from
# the same storage while their inputs are unchanged.
#
# Leaves: the image localhost/understudy:<version> in that storage, and the same image as an OCI
# layout in ~/.cache/understudy/image/oci (tag <version>), which skopeo can copy to a registry and
# umoci unpacks into a bundle that runc runs (test/integration/image.test.ts).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${UNDERSTUDY_CACHE:-$HOME/.cache/understudy}/image"
DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"
NPM_VERSION="${NPM_VERSION:-11.21.2}"
# The Node.js of the node devDependency, as package-lock.json pins it.
NODE_VERSION="${NODE_VERSION:-$(sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\(.*\)".*/\1/p' package-lock.json)}"
VERSION="$(sed -n 's/^  "version": "\(.*\)".*/\1/p' package.json)"
IMAGE="localhost/understudy:$VERSION"

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }

[ -n "$NODE_VERSION" ] || die "package-lock.json pins no node_modules/node version"
[ -n "$VERSION" ] || die "package.json has no version"
for tool in buildah mmdebstrap npm; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not installed (on Debian: apt-get install buildah mmdebstrap; npm comes with Node.js)"
done
case "$(uname -m)" in
  x86_64) NODE_ARCH=x64 ;;
  aarch64) NODE_ARCH=arm64 ;;
  *) die "no node-linux package for $(uname -m)" ;;
esac

# One storage for the base, the build's cached steps and the image, kept apart from the machine's
# default storage; its run state (locks, mounts) lives under /run, which a reboot clears.
STORAGE=(--root "$CACHE/storage" --runroot "/run/understudy/image-storage-$(printf %s "$CACHE" | md5sum | cut -c1-8)"
  --storage-driver overlay)
bah() { buildah "${STORAGE[@]}" "$@"; }
mkdir -p "$CACHE/downloads"

BASE="localhost/understudy-base:$DEBIAN_SUITE-node$NODE_VERSION-npm$NPM_VERSION"

build_base() {
  if bah inspect --type image "$BASE" >/dev/null 2>&1; then
    log "base $BASE (cached)"
    return
  fi
  log "making the base $BASE"
  local node_tgz="$CACHE/downloads/node-linux-$NODE_ARCH-$NODE_VERSION.tgz"
  local npm_tgz="$CACHE/downloads/npm-$NPM_VERSION.tgz"
  # npm pack checks each tarball against the registry's integrity hash.
  [ -s "$node_tgz" ] || (cd "$CACHE/downloads" && npm pack --silent "node-linux-$NODE_ARCH@$NODE_VERSION" >/dev/null)
  [ -s "$npm_tgz" ] || (cd "$CACHE/downloads" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)

  local rootfs="$CACHE/downloads/rootfs-$DEBIAN_SUITE.tar.partial"
  # A minimal Debian as in the slim images: no manuals, documentation (but copyrights) or locales.
  # Node goes to /usr/local/bin, npm to /usr/local/lib/node_modules, as in the official images.
  mmdebstrap --variant=minbase --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="tar -xzf '$node_tgz' -C \"\$1/usr/local\" --strip-components=1 package/bin/node" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$npm_tgz' -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" node --version && chroot "$1" npm --version' \
    "$DEBIAN_SUITE" "$rootfs" >"$CACHE/mmdebstrap.log" 2>&1 ||
    { tail -20 "$CACHE/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $CACHE/mmdebstrap.log)"; }

  local ctr
  ctr=$(bah from --pull=never scratch)
  bah add "$ctr" "$rootfs" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd node --label "org.opencontainers.image.description=Debian $DEBIAN_SUITE, Node.js $NODE_VERSION, npm $NPM_VERSION" "$ctr"
  bah commit --quiet --rm "$ctr" "$BASE" >/dev/null
  rm -f "$rootfs"
  log "base $BASE made"
}

build_image() {
  log "building $IMAGE from the Dockerfile (pulling turned off)"
  # The build's npm ci reaches the npm registry as this machine's npm does: through its network
  # (--network=host) and trusting the CA bundle it is set to, if any (a TLS-inspecting proxy's),
  # handed over as a secret that no layer keeps.
  local trust=() cafile
  cafile="${NODE_EXTRA_CA_CERTS:-$(npm config get cafile)}"
  if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -s "$cafile" ]; then
    trust=(--secret "id=npm-ca,src=$cafile" --build-arg NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca)
  fi
  bah build --pull=never --layers --network=host "${trust[@]}" \
    --build-arg "BASE_IMAGE=$BASE" \
    --tag "$IMAGE" --file Dockerfile . >"$CACHE/build.log" 2>&1 ||
    { tail -30 "$CACHE/build.log" >&2; die "the image build failed (log: $CACHE/build.log)"; }
}

export_layout() {
  local id
  id=$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE")
  if [ -f "$CACHE/oci.image-id" ] && [ "$(cat "$CACHE/oci.image-id")" = "$id" ] && [ -d "$CACHE/oci" ]; then
    log "image ${id:0:12} unchanged; OCI layout: $CACHE/oci (tag $VERSION)"
    return
  fi
  # A fresh layout each time, so blobs of earlier builds do not pile up in it.
  rm -rf "$CACHE/oci.partial" "$CACHE/oci.image-id"
  bah push --quiet "$IMAGE" "oci:$CACHE/oci.partial:$VERSION" >/dev/null
  rm -rf "$CACHE/oci"
  mv "$CACHE/oci.partial" "$CACHE/oci"
  echo "$id" >"$CACHE/oci.image-id"
  log "built image ${id:0:12}; OCI layout: $CACHE/oci (tag $VERSION)"
}

build_base
build_image
export_layout
