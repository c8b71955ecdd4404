# Shared by scripts/container-test and scripts/compose-test: podman with no
# image registry. Base images are Debian bookworm trees made with
# debootstrap from the apt mirror and imported with `podman import`; cfmint's
# image is built from the Dockerfile with the host's Rust toolchain and crate
# cache mounted read-only, so the build needs no network.
#
# Expects $root (the checkout). Sets $work, $sudo, CONTAINERS_CONF.

work=$root/target/container
mkdir -p "$work"

say() { echo "==> $*"; }
fail() { echo "$(basename "$0"): $*" >&2; exit 1; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# install_missing COMMAND:PACKAGE...
install_missing() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] \
      || [ -e "${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
install_missing podman:podman debootstrap:debootstrap runc:runc
# Where podman networks with netavark (Debian 13), its firewall rules go
# through nftables and container names resolve through aardvark-dns; neither
# comes with podman when recommends are left out.
if [ -x /usr/lib/podman/netavark ]; then
  install_missing nft:nftables /usr/lib/podman/aardvark-dns:aardvark-dns
fi
export PATH="$PATH:/usr/sbin:/sbin"

cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# documented_commands HEADING: the first ```sh block after the docs/deploy.md
# heading matching the awk pattern HEADING, as the reader copies it.
documented_commands() {
  awk -v heading="$1" '$0 ~ heading {on=1} on && /^```sh/ {inside=1; next} inside && /^```/ {exit} inside' \
    "$root/docs/deploy.md"
}

# make_base NAME PACKAGES [podman import --change ...]
make_base() {
  local name=$1 packages=$2
  shift 2
  if podman image exists "$name"; then
    say "base image $name (cached)"
    return
  fi
  say "base image $name: debootstrap bookworm from $mirror"
  local tree="$work/rootfs-${name##*/}"
  tree=${tree%%:*}
  $sudo rm -rf "$tree"
  $sudo debootstrap --variant=minbase --include="$packages" bookworm "$tree" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap failed, see $work/debootstrap.log"
  $sudo rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/var/cache/apt/* "$tree"/var/lib/apt/lists/*
  $sudo tar -C "$tree" -c . | podman import "$@" - "$name" >/dev/null
  $sudo rm -rf "$tree"
}

runtime_image=localhost/cfmint-base-runtime:bookworm
builder_image=localhost/cfmint-base-builder:bookworm
image=localhost/cfmint:container-test

# build_cfmint_image: the Dockerfile, built offline, tagged $image.
build_cfmint_image() {
  make_base "$runtime_image" libssl3,ca-certificates
  make_base "$builder_image" gcc,libc6-dev,pkg-config,libssl-dev,ca-certificates \
    --change "ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV CARGO_HOME=/usr/local/cargo" \
    --change "ENV CARGO_NET_OFFLINE=true"
  local toolchain registry started
  toolchain=$(rustc --print sysroot)
  registry=${CARGO_HOME:-$HOME/.cargo}/registry
  say "fetching crates into the host cache for an offline build"
  cargo fetch --locked >/dev/null
  say "podman build (Rust $(rustc --version | cut -d' ' -f2) from the host, offline)"
  started=$(date +%s)
  podman build --quiet --format docker \
    --build-arg BUILDER_IMAGE="$builder_image" \
    --build-arg RUNTIME_IMAGE="$runtime_image" \
    --volume "$toolchain:/usr/local/rust:ro" \
    --volume "$registry:/usr/local/cargo/registry:ro" \
    --tag "$image" "$root" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "podman build failed"; }
  say "built in $(($(date +%s) - started))s: $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) image"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
