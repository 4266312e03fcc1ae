"""``python -m commpress.distributed worker JOBS.json``: one rank of a launched run (see ``_worker``)."""

import sys

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "worker":
        print("usage: python -m commpress.distributed worker JOBS.json  (started by commpress.distributed.launch)",
              file=sys.stderr)
        sys.exit(2)
    from commpress.distributed._worker import entry

    entry(sys.argv[2])
