"""What a race test may accept: every correct outcome, and nothing else.

Two requests on one volume race through the API's conditional UPDATE: exactly one may win.
The loser answers 400 (the winner's transitional state refused it) or 404 (the winner already
deleted the volume). A second 202 is a double win, unless the first winner's operation could
have ended before the second request was decided: then the two did not overlap and both
winning is right. `hold_flows` holds the first step of every flow the races use for `HOLD`
seconds, so an operation lasts at least that long after its request was sent; a second win
answered sooner than that after the first win's request was sent is a real double win.
"""

import concurrent.futures
import threading
import time

HOLD = 0.5

HELD_STEPS = (
    "delete_volume.check_deleting",
    "extend_volume.check_extending",
    "create_snapshot.check_still_creating",
    "migrate_volume.check_migrating",
)

LOSING_CODES = (400, 404)


def hold_flows(stack, seconds=HOLD):
    stack.override("delay_points", ["%s:%s" % (step, seconds) for step in HELD_STEPS],
                   group="debug")


def release_flows(stack):
    stack.override("delay_points", [], group="debug")


def race(*calls):
    """Run every call, a (function, *args) tuple, at once (a barrier releases them together);
    return, in call order, (monotonic time it was sent, time it was answered, its response)."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        function, *args = call
        barrier.wait()
        sent_at = time.monotonic()
        resp = function(*args)
        return sent_at, time.monotonic(), resp

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_one_wins(outcomes, hold=None):
    """Exactly one 202 among overlapping requests, every other answer a refusal
    (LOSING_CODES), none a server error. With `hold` (seconds a winner's operation lasts at
    least), two 202s are accepted when one was answered at least that long after the other
    was sent (they need not have overlapped); without it, a second 202 is always a double
    win."""
    codes = [resp.status_code for _, _, resp in outcomes]
    assert all(code == 202 or code in LOSING_CODES for code in codes), codes
    winners = [(sent, answered) for sent, answered, resp in outcomes if resp.status_code == 202]
    assert winners, "no request won: %s" % codes
    for i, (sent_a, answered_a) in enumerate(winners):
        for sent_b, answered_b in winners[i + 1:]:
            apart = max(answered_b - sent_a, answered_a - sent_b)
            assert hold is not None and apart >= hold, \
                "double win: %s (answered %.3f s apart)" % (codes, apart)
    return codes
