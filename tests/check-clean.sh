#!/bin/sh
# tests/check-clean.sh before|after FILE - make check must leave the
# checkout as it found it: no tracked file changed, no untracked file that
# is not ignored. `before` records the state (status and content of every
# changed or untracked file) into FILE, `after` fails naming what a test
# run changed. Outside a git checkout (a release tarball) it does nothing.
set -eu
mode=$1 file=$2
top=$(git rev-parse --show-toplevel 2>/dev/null) || { echo "check-clean: not a git checkout, skipped"; exit 0; }
cd "$top"

snapshot() {
	git status --porcelain=v1 --untracked-files=all
	# Content too: a file dirty before and changed again keeps its status line.
	git status --porcelain=v1 -z --untracked-files=all | tr '\0' '\n' |
		sed -n 's/^...//p' | while IFS= read -r f; do
			[ -f "$f" ] && printf '%s %s\n' "$(sha256sum < "$f" | cut -c1-16)" "$f"
		done
}

case $mode in
before)
	mkdir -p "$(dirname "$file")"
	snapshot > "$file"
	;;
after)
	now=$(mktemp)
	trap 'rm -f "$now"' EXIT
	snapshot > "$now"
	if ! cmp -s "$file" "$now"; then
		echo "check-clean: the test run changed the checkout (tracked files changed or"
		echo "untracked files appeared that .gitignore does not cover):"
		diff "$file" "$now" | sed -n 's/^> /  /p'
		exit 1
	fi
	echo "check-clean: the checkout is as the tests found it"
	;;
*)
	echo "usage: check-clean.sh before|after FILE" >&2
	exit 2
	;;
esac
