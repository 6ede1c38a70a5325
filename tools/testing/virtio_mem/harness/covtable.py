#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print a line-coverage table from gcov's .gcov files (stdlib only).

    covtable.py DIR FILE.c...

For each FILE.c, reads DIR/FILE.c.gcov and counts executable lines
(count or '#####') and executed ones. Exit status 0.
"""
import os
import sys


def cover(path):
    run = total = 0
    missed = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(":", 2)
            if len(parts) < 3:
                continue
            count = parts[0].strip()
            lineno = parts[1].strip()
            if count == "-" or lineno == "0":
                continue
            total += 1
            if count in ("#####", "====="):
                missed.append(int(lineno))
            else:
                run += 1
    return run, total, missed


def ranges(lines):
    out = []
    for n in lines:
        if out and out[-1][1] + 1 == n:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def main():
    d = sys.argv[1]
    print(f"{'file':<24} {'lines':>6} {'run':>6} {'cover':>7}  not run")
    for name in sys.argv[2:]:
        path = os.path.join(d, name + ".gcov")
        if not os.path.exists(path):
            print(f"{name:<24} no {name}.gcov")
            continue
        run, total, missed = cover(path)
        pct = 100.0 * run / total if total else 0.0
        print(f"{name:<24} {total:>6} {run:>6} {pct:>6.1f}%  {ranges(missed)}")


if __name__ == "__main__":
    main()
