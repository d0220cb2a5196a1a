#!/usr/bin/env bash
# Builds a release of commons into dist/ (or $DIST):
#
#   ./release.sh VERSION        e.g. ./release.sh 1.2.0
#
# For linux/amd64, linux/arm64, linux/arm GOARM=7 and linux/arm GOARM=6 it
# writes a static binary (CGO_ENABLED=0, -trimpath, stripped) with VERSION
# and the git commit embedded (`commons --version`), and a .deb made by nfpm
# (a tool in go.mod) from assets/deb/nfpm.yaml:
#
#   commons_VERSION_linux_amd64   commons_VERSION_amd64.deb         PCs, servers
#   commons_VERSION_linux_arm64   commons_VERSION_arm64.deb         Pi 3/4/5, Zero 2 W on 64-bit Raspberry Pi OS
#   commons_VERSION_linux_armv7   commons_VERSION_armhf.deb         Pi 2/3/4/5, Zero 2 W on 32-bit Raspberry Pi OS
#   commons_VERSION_linux_armv6   commons_VERSION_armhf-armv6.deb   Pi 1, Zero, Zero W (32-bit Raspberry Pi OS)
#
# plus SHA256SUMS. COMMIT overrides the commit (default: git rev-parse HEAD,
# with -dirty when the work tree has changes); SOURCE_DATE_EPOCH the file
# times in the packages (default: the commit's time), so that the same
# commit gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
	echo "usage: ./release.sh VERSION   (a version such as 1.2.0 or 1.2.0-rc1; output in \${DIST:-dist}/)" >&2
	exit 2
}
[ $# -eq 1 ] || usage
version=${1#v}
# Debian versions start with a digit; keep to what both Go and dpkg accept.
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+~][0-9A-Za-z.+~-]+)?$ ]]; then
	echo "release.sh: version $1 is not like 1.2.0 or 1.2.0-rc1" >&2
	exit 2
fi

dist=${DIST:-dist}
if [ -z "${COMMIT:-}" ]; then
	COMMIT=$(git rev-parse HEAD)
	if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
		COMMIT="$COMMIT-dirty"
	fi
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$dist"
ldflags="-s -w -X main.version=$version -X main.commit=$COMMIT"

# goarch:goarm:debian arch:binary suffix:deb suffix
targets=(
	"amd64::amd64:amd64:amd64"
	"arm64::arm64:arm64:arm64"
	"arm:7:armhf:armv7:armhf"
	"arm:6:armhf:armv6:armhf-armv6"
)
for t in "${targets[@]}"; do
	IFS=: read -r goarch goarm debarch binsuffix debsuffix <<<"$t"
	bin="$dist/commons_${version}_linux_$binsuffix"
	deb="$dist/commons_${version}_$debsuffix.deb"
	echo "release.sh: $bin" >&2
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bin" ./cmd/commons
	echo "release.sh: $deb" >&2
	COMMONS_VERSION=$version COMMONS_DEB_ARCH=$debarch COMMONS_BINARY=$bin \
		go tool nfpm pkg --config assets/deb/nfpm.yaml --packager deb --target "$deb" >/dev/null
done

(cd "$dist" && sha256sum "commons_${version}_"* >SHA256SUMS)
ls -l "$dist"
