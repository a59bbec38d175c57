#!/usr/bin/python3
"""Reads `go test -json` on stdin and prints what a plain `go test` would:
each package's ok/FAIL line, the full output of every failed test and of
every build failure. Then it lists every skipped test with its reason.

With --no-skips a skipped test fails the run: as root nothing may skip,
since the only skips are testenv.RequireRoot's, for unprivileged users.

Exit status: 1 if a test, a package or a build failed, or (with
--no-skips) a test skipped; 0 otherwise.
"""

import json
import sys


def main():
    no_skips = "--no-skips" in sys.argv[1:]
    out = {}  # (package, test) -> output lines, until the test ends
    skipped = []  # (package, test, reason)
    failed = False
    for line in sys.stdin:
        try:
            ev = json.loads(line)
        except ValueError:
            # Not JSON: something go test printed itself (a toolchain
            # message); pass it on.
            sys.stdout.write(line)
            continue
        action, pkg, test = ev.get("Action"), ev.get("Package", ""), ev.get("Test")
        if action == "build-output":
            sys.stdout.write(ev.get("Output", ""))
            continue
        if action == "build-fail":
            failed = True
            continue
        key = (pkg, test)
        if action == "output":
            if test is None:
                # Package lines: "ok  pkg 1.2s", "FAIL", panics outside a test.
                text = ev.get("Output", "")
                if not text.startswith(("PASS\n", "=== ", "--- PASS", "--- SKIP")) and text.strip():
                    sys.stdout.write(text)
            else:
                out.setdefault(key, []).append(ev.get("Output", ""))
            continue
        if action == "fail":
            failed = True
            if test is not None:
                sys.stdout.write("".join(out.get(key, [])))
        elif action == "skip" and test is not None:
            lines = [l.strip() for l in out.get(key, [])
                     if l.strip() and not l.lstrip().startswith(("=== ", "--- SKIP"))]
            skipped.append((pkg, test, lines[-1] if lines else "(no reason given)"))
        if action in ("pass", "fail", "skip") and test is not None:
            out.pop(key, None)
    sys.stdout.flush()
    if skipped:
        print("\n%d test(s) skipped:" % len(skipped))
        for pkg, test, reason in skipped:
            print("  %s %s: %s" % (pkg, test, reason))
        if no_skips:
            print("as root no test may skip (testenv.RequireRoot skips only for other users); "
                  "the tests above did not run")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
