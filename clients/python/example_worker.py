"""An activity worker in Python: runs `charge` for Stent.

    python3 clients/python/example_worker.py --url http://127.0.0.1:8233 --effects charges.txt

charge(order, amount) appends one line per charge to the side-effect file (--effects
or STENT_EXAMPLE_EFFECTS) and returns {"charged": amount, "key": ...}; an amount of 0
or less is declined (not retried). For tests, STENT_EXAMPLE_STARTED names a file that
gets a line when an attempt starts, and STENT_EXAMPLE_BLOCK a number of seconds the
attempt then waits (heartbeating) before it charges.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stent_client import ActivityFailed, ActivityWorker, Client  # noqa: E402


def make_charge(effects):
    def charge(ctx, order, amount):
        if amount <= 0:
            raise ActivityFailed("nothing to charge (%s)" % amount, non_retryable=True, type="CardDeclined")
        started = os.environ.get("STENT_EXAMPLE_STARTED")
        if started:
            with open(started, "a") as f:
                f.write("%s attempt=%d\n" % (ctx.idempotency_key, ctx.attempt))
        block = float(os.environ.get("STENT_EXAMPLE_BLOCK", "0"))
        until = time.monotonic() + block
        while time.monotonic() < until:
            if ctx.cancelled.is_set():
                raise ActivityFailed("cancelled before charging")
            ctx.heartbeat({"waiting": round(until - time.monotonic(), 1)})
            time.sleep(0.2)
        # The side effect. A real payment API would get ctx.idempotency_key, so that an
        # attempt retried after a crash between this call and its completion never
        # charges twice.
        with open(effects, "a") as f:
            f.write("charged %s %s key=%s attempt=%d\n" % (order, amount, ctx.idempotency_key, ctx.attempt))
            f.flush()
            os.fsync(f.fileno())
        return {"charged": amount, "key": ctx.idempotency_key}

    return charge


def main():
    p = argparse.ArgumentParser(description="Run the charge activity for a stent serve.")
    p.add_argument("--url", default=os.environ.get("STENT_URL", "http://127.0.0.1:8233"), help="the API's base URL")
    p.add_argument("--token", default=os.environ.get("STENT_API_TOKEN"), help="bearer token (or STENT_API_TOKEN)")
    p.add_argument("--effects", default=os.environ.get("STENT_EXAMPLE_EFFECTS", "charges.txt"),
                   help="file that gets a line per charge (or STENT_EXAMPLE_EFFECTS)")
    p.add_argument("--queue", default=None, help="take tasks of this queue only")
    args = p.parse_args()
    worker = ActivityWorker(Client(args.url, token=args.token), {"charge": make_charge(args.effects)}, queue=args.queue)
    print("example worker: polling %s for charge" % args.url, file=sys.stderr, flush=True)
    worker.run()


if __name__ == "__main__":
    main()
