"""python3 -m memlimit.run PROG.py [ARGS...] | -m MODULE [ARGS...]: run an unmodified program
attached to memrun. Trim and collect are answered with gc.collect() and malloc_trim(0), which is
what a Python program that registered nothing can give back."""
import gc
import runpy
import sys

import memlimit


def _collect(level, goal):
    gc.collect()
    memlimit.malloc_trim()
    return 0        # what it gave back is what resident memory fell by, measured by the client


def main(argv):
    if not argv or argv[0] in ("-h", "--help") or (argv[0] == "-m" and len(argv) < 2):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    # a trim answered by the collector too: unmodified programs have no cache to name
    memlimit.register_cache("gc", _collect)
    try:
        memlimit.init()
    except OSError as e:
        print("memlimit: %s; running without it" % e, file=sys.stderr)
    if argv[0] == "-m":
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
