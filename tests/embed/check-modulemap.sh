#!/usr/bin/env bash
# platform/ios/module.modulemap makes mcpjob.h a clang module: put both in a
# folder as an app ships them, and import the module by name with clang's
# module support (what Swift's importer uses), calling one function of it.
set -u
command -v clang >/dev/null || { echo "SKIP check-modulemap: no clang"; exit 0; }
tmp=$(mktemp -d /tmp/mcpjob-modmap-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/Headers"
cp daemon/embed.h "$tmp/Headers/mcpjob.h"
cp platform/ios/module.modulemap "$tmp/Headers/module.modulemap"
cat > "$tmp/use.c" <<'C'
#pragma clang module import MCPJob
int use(void);
int use(void) {
	mcpjob_t h = 0;
	return mcpjob_engine_expire(h) == MCPJOB_E_HANDLE ? 0 : 1;
}
C
clang -std=c11 -Wall -Werror -fmodules -fmodules-cache-path="$tmp/cache" -I"$tmp/Headers" \
  -c -o "$tmp/use.o" "$tmp/use.c" || { echo "check-modulemap: clang cannot import MCPJob through platform/ios/module.modulemap" >&2; exit 1; }
echo "check-modulemap: module MCPJob (platform/ios/module.modulemap) imports mcpjob.h"
