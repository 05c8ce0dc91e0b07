#!/usr/bin/env bash
# make install puts the library where an app's build finds it: an app that
# includes <mcpjob.h> and links with `pkg-config --libs mcpjob` builds
# against the installed tree (DESTDIR) and runs.
set -u
B=${B:-build}
tmp=$(mktemp -d /tmp/mcpjob-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }
make --no-print-directory -s install-lib DESTDIR="$tmp/root" PREFIX=/usr >/dev/null || fail "make install-lib failed"
root=$tmp/root
for f in usr/include/mcpjob.h usr/lib/libmcpjob.so.0 usr/lib/libmcpjob.so usr/lib/libmcpjob.a \
         usr/lib/pkgconfig/mcpjob.pc; do
  [ -e "$root/$f" ] || fail "$f was not installed"
done
cat > "$tmp/app.c" <<'C'
#include <mcpjob.h>
#include <stdio.h>
#include <string.h>
int main(void) {
	mcpjob_t h;
	char *err = NULL;
	int rc = mcpjob_engine_open_json("{\"jobs\": []}", getenv("STATE"), &h, &err);
	if (rc != MCPJOB_OK) { fprintf(stderr, "%s\n", err); return 1; }
	printf("%s %d\n", mcpjob_version(), mcpjob_engine_close(h));
	return mcpjob_engine_close(h) == MCPJOB_E_HANDLE ? 0 : 1;
}
C
sed -i '1i #include <stdlib.h>' "$tmp/app.c"
cflags=$(PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root/usr/lib/pkgconfig:$(pkg-config --variable pc_path pkg-config) pkg-config --cflags mcpjob) || fail "pkg-config mcpjob failed"
libs=$(PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root/usr/lib/pkgconfig:$(pkg-config --variable pc_path pkg-config) pkg-config --libs mcpjob)
san=
[ "${SANITIZE:-}" = 1 ] && san="-fsanitize=address,undefined"
cc -std=c11 -Wall -Werror $san $cflags -o "$tmp/app" "$tmp/app.c" $libs || fail "an app does not build against the installed header and library"
out=$(STATE=$tmp/state LD_LIBRARY_PATH=$root/usr/lib "$tmp/app") || fail "the app failed: $out"
[ "$(LD_LIBRARY_PATH=$root/usr/lib ldd "$tmp/app" | grep -c "$root/usr/lib/libmcpjob.so.0")" = 1 ] || fail "the app did not load the installed libmcpjob.so.0"
echo "check-install: an app builds with pkg-config mcpjob against the installed tree and runs ($out)"
