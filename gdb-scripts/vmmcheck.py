# vmmcheck: assertions for scripted gdb sessions (stock gdb 13, `source gdb-scripts/vmmcheck.py`).
#
# Every check prints one human line and one machine-readable line:
#   VMMCHECK {"check": "continue", "name": ..., "pass": false, "kind": "wrong-value",
#             "expected": {...}, "observed": {...}, "message": "..."}
# `vmmcheck exit` prints a summary line and quits gdb with status 0 (all passed) or 1.
# A failing check quits at once with status 1 by default (`vmmcheck on-fail` changes that),
# since a scripted session that already went wrong would only add confusing failures.
#
# `vmmcheck help` lists the commands; each command has `--help`.

import argparse
import json
import os
import re
import shlex
import signal
import threading

import gdb

RESULT_PREFIX = "VMMCHECK "
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Seconds gdb waits for each reply when the user has not set remotetimeout (gdb's default,
# 2, is less than a serve's start-up on a loaded machine).
ATTACH_REMOTE_TIMEOUT = 30


class _State:
    """Results of the session; kept on the gdb module so that re-sourcing keeps them."""

    def __init__(self):
        self.results = []
        self.on_fail = os.environ.get("VMMCHECK_ON_FAIL", "exit")
        self.timeout = float(os.environ.get("VMMCHECK_TIMEOUT", "60"))
        self.last_stop = None
        self.exit_code = None
        self.kind_override = None


if not hasattr(gdb, "_vmmcheck_state"):
    gdb._vmmcheck_state = _State()
STATE = gdb._vmmcheck_state


def _on_stop(event):
    STATE.last_stop = event


def _on_exit(event):
    STATE.exit_code = event.exit_code if hasattr(event, "exit_code") else -1
    STATE.last_stop = event


if not getattr(gdb, "_vmmcheck_events", False):
    gdb.events.stop.connect(lambda ev: _on_stop(ev))
    gdb.events.exited.connect(lambda ev: _on_exit(ev))
    gdb._vmmcheck_events = True


class CheckFailed(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as gdb errors instead of exiting gdb."""

    def error(self, message):
        raise gdb.GdbError("%s: %s" % (self.prog, message))

    def exit(self, status=0, message=None):
        if message:
            gdb.write(message)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


# ---------------------------------------------------------------------------- values

def parse_number(text):
    """An int from '12', '0x1f', '-3'; None when the text is not a plain number."""
    try:
        return int(str(text).strip(), 0)
    except ValueError:
        return None


def value_to_py(value):
    """A gdb.Value as an int when it is one (pointers included), else its printed form."""
    try:
        code = value.type.strip_typedefs().code
        if code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_CHAR,
                    gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_PTR):
            return int(value)
    except gdb.error:
        pass
    return str(value)


def values_equal(seen, expected_text):
    number = parse_number(expected_text)
    if number is not None and isinstance(seen, int):
        return seen == number
    return str(seen) == str(expected_text)


def show(value):
    if isinstance(value, int):
        return "%d (0x%x)" % (value, value & 0xFFFFFFFFFFFFFFFF) if value > 9 or value < 0 else str(value)
    return str(value)


def to_number(text):
    """A number from a literal or a gdb expression; a function or label gives its address."""
    number = parse_number(text)
    if number is not None:
        return number
    value = gdb.parse_and_eval(text)
    if value.type.strip_typedefs().code == gdb.TYPE_CODE_FUNC:
        value = value.address
    return int(value)


def evaluate(expression):
    return value_to_py(gdb.parse_and_eval(expression))


# ---------------------------------------------------------------------------- results

def record(check, name, passed, expected, observed, message, kind=None):
    if not passed and STATE.kind_override:
        kind = STATE.kind_override
    result = {
        "check": check,
        "name": name or check,
        "pass": bool(passed),
        "kind": None if passed else (kind or "failed"),
        "expected": expected,
        "observed": observed,
        "message": message,
    }
    STATE.results.append(result)
    gdb.write("vmmcheck: %s %s: %s\n" % ("PASS" if passed else "FAIL", result["name"], message))
    gdb.write(RESULT_PREFIX + json.dumps(result, sort_keys=True) + "\n")
    gdb.flush()
    if not passed:
        _handle_failure()
    return result


def _handle_failure():
    if STATE.on_fail == "exit":
        _quit(1)
    if STATE.on_fail == "error":
        raise gdb.GdbError("vmmcheck: check failed")


def summary():
    failed = [r["name"] for r in STATE.results if not r["pass"]]
    return {
        "check": "summary",
        "name": "summary",
        "pass": not failed and len(STATE.results) > 0,
        "total": len(STATE.results),
        "failed": failed,
    }


def print_summary():
    result = summary()
    gdb.write("vmmcheck: %s: %d checks, %d failed%s\n" % (
        "PASS" if result["pass"] else "FAIL", result["total"], len(result["failed"]),
        "" if result["total"] else " (no checks ran)"))
    gdb.write(RESULT_PREFIX + json.dumps(result, sort_keys=True) + "\n")
    gdb.flush()


def _quit(status):
    gdb.flush()
    # Detach rather than kill a remote VM; `quit` does the right thing per target.
    gdb.execute("quit %d" % status)


# ---------------------------------------------------------------------------- stops

def describe_location():
    """Where the selected thread is stopped: pc, function, file:line."""
    try:
        frame = gdb.selected_frame()
    except gdb.error:
        return {"pc": None, "function": None, "file": None, "line": None}
    sal = frame.find_sal()
    return {
        "pc": frame.pc(),
        "function": frame.name(),
        "file": sal.symtab.filename if sal.symtab else None,
        "line": sal.line if sal.symtab else None,
    }


def location_text(loc):
    if loc.get("pc") is None:
        return "no location"
    text = "0x%x" % loc["pc"]
    if loc.get("function"):
        text += " in %s" % loc["function"]
    if loc.get("file"):
        text += " at %s:%s" % (os.path.basename(loc["file"]), loc["line"])
    return text


WATCH_TYPES = {
    gdb.BP_WATCHPOINT: "watch",
    gdb.BP_HARDWARE_WATCHPOINT: "watch",
    gdb.BP_READ_WATCHPOINT: "rwatch",
    gdb.BP_ACCESS_WATCHPOINT: "awatch",
}


def find_breakpoint(spec):
    """A breakpoint by number, watch expression or location text."""
    number = parse_number(spec)
    for bp in gdb.breakpoints():
        if number is not None and bp.number == number:
            return bp
        if bp.expression == spec or bp.location == spec or bp.location == "*" + spec:
            return bp
    raise gdb.GdbError("vmmcheck: no breakpoint or watchpoint %r (see `info breakpoints`)" % spec)


def software_watch_failure(command, name, bp):
    """A check must never pass on a software watchpoint (gdb single-steps and compares: the
    debug registers, which the checks are about, play no part). Records the failure, or None."""
    if bp is None or bp.type != gdb.BP_WATCHPOINT:
        return None
    saved, STATE.kind_override = STATE.kind_override, None  # not the scenario's failure kind
    try:
        return record(command, name, False, {"watchpoint": "hardware"}, {"watchpoint": "software"},
                  "expected a hardware watchpoint; %s is a software watchpoint (gdb would single-step "
                  "and compare, the debug registers play no part)" % bp_text(bp), "software-watchpoint")
    finally:
        STATE.kind_override = saved


def bp_text(bp):
    what = bp.expression if bp.expression is not None else bp.location
    return "%s %d (%s)" % ("watchpoint" if bp.type in WATCH_TYPES else "breakpoint", bp.number, what)


def describe_stop(event):
    """The last stop as a plain dict: reason, breakpoints, signal, exit code, location."""
    if event is None:
        return {"reason": "none"}
    if isinstance(event, gdb.ExitedEvent):
        return {"reason": "exited", "exit_code": STATE.exit_code}
    stop = {"reason": "stop", "location": describe_location()}
    if isinstance(event, gdb.BreakpointEvent):
        stop["reason"] = "breakpoint"
        stop["breakpoints"] = [bp.number for bp in event.breakpoints]
    elif isinstance(event, gdb.SignalEvent):
        stop["reason"] = "signal"
        stop["signal"] = event.stop_signal
    return stop


def stop_text(stop):
    reason = stop["reason"]
    if reason == "exited":
        return "the program exited with code %s" % stop.get("exit_code")
    if reason == "none":
        return "no stop"
    where = location_text(stop.get("location", {}))
    if reason == "breakpoint":
        names = []
        for number in stop["breakpoints"]:
            bps = [bp for bp in gdb.breakpoints() if bp.number == number]
            names.append(bp_text(bps[0]) if bps else "breakpoint %d" % number)
        return "%s at %s" % (", ".join(names), where)
    if reason == "signal":
        return "signal %s at %s" % (stop["signal"], where)
    return "a stop (end of step) at %s" % where


class _Watchdog:
    """Interrupts a resume that takes longer than `seconds` (SIGINT = gdb's Ctrl-C)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.fired = False
        self.timers = []

    def _interrupt(self):
        self.fired = True
        os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self):
        if self.seconds > 0:
            # The second SIGINT makes gdb give up on a target that ignores the first.
            for delay in (self.seconds, self.seconds + 5):
                timer = threading.Timer(delay, self._interrupt)
                timer.daemon = True
                timer.start()
                self.timers.append(timer)
        return self

    def __exit__(self, *exc):
        for timer in self.timers:
            timer.cancel()
        return False


def resume(command, timeout):
    """Run a resuming gdb command; return (stop dict, gdb error text or None, timed out)."""
    STATE.last_stop = None
    error = None
    with _Watchdog(timeout) as dog:
        try:
            gdb.execute(command)
        except gdb.error as exc:
            error = str(exc)
        except KeyboardInterrupt:
            error = "interrupted"
    return describe_stop(STATE.last_stop), error, dog.fired


# ---------------------------------------------------------------------------- expectations

def watch_hit(bp, stop, old, new):
    """Whether the stop is a hit of bp. gdb may list a write watchpoint whose value did not
    change among the breakpoints of a stop at another breakpoint; that is not its hit."""
    if stop["reason"] != "breakpoint" or bp.number not in stop.get("breakpoints", []):
        return False
    if bp.type in (gdb.BP_WATCHPOINT, gdb.BP_HARDWARE_WATCHPOINT) and old is not None:
        return old != new
    return True


def watch_values_before(bp):
    if bp is None or bp.expression is None:
        return None
    try:
        return evaluate(bp.expression)
    except gdb.error:
        return None


def check_location(args, loc):
    """Problems with the stop location against --at/--pc/--function/--line."""
    problems = []
    expected = {}
    at = args.at
    if at:
        if at.startswith("*"):
            args.pc = at[1:]
        elif re.match(r"^(.+:)?\d+$", at):
            args.line = at
        else:
            args.function = at
    if args.pc:
        want = to_number(args.pc)
        expected["pc"] = want
        if loc.get("pc") != want:
            problems.append("pc 0x%x" % want)
    if args.function:
        expected["function"] = args.function
        if loc.get("function") != args.function:
            problems.append("function %s" % args.function)
    if args.line:
        file_part, _, line_part = args.line.rpartition(":")
        expected["line"] = args.line
        ok = loc.get("line") == int(line_part)
        if file_part and ok:
            ok = bool(loc.get("file")) and os.path.basename(loc["file"]) == os.path.basename(file_part)
        if not ok:
            problems.append("line %s" % args.line)
    return expected, problems


def continue_and_check(args, command="continue"):
    """The body of `vmmcheck continue`: resume, then compare the stop with the expectation."""
    watch = find_breakpoint(args.watch) if args.watch else None
    breakpoint = find_breakpoint(args.breakpoint) if args.breakpoint else None
    software = software_watch_failure(args.command, args.name, watch)
    if software is not None:
        return software
    old_before = watch_values_before(watch)
    stop, error, timed_out = resume(command, args.timeout)

    expected = {}
    observed = {"stop": stop}
    if error:
        observed["gdb_error"] = error
    problems = []
    kind = None

    if args.exited is not None:
        expected["exit_code"] = args.exited
        if stop["reason"] != "exited" or (args.exited != "any" and stop.get("exit_code") != parse_number(args.exited)):
            problems.append("the program to exit with code %s" % args.exited)
            kind = "wrong-stop"
    elif args.signal:
        expected["signal"] = args.signal
        if stop["reason"] != "signal" or stop.get("signal") != args.signal:
            problems.append("signal %s" % args.signal)
            kind = "wrong-stop"
    elif watch is not None or breakpoint is not None:
        target = watch or breakpoint
        expected["breakpoint"] = target.number
        if watch is not None:
            new_value = watch_values_before(watch)
            observed["old"], observed["new"] = old_before, new_value
            hit = watch_hit(watch, stop, old_before, new_value)
        else:
            hit = stop["reason"] == "breakpoint" and target.number in stop.get("breakpoints", [])
        if not hit:
            problems.append(bp_text(target))
            # The program ran to its end without the hit: the hit was missed.
            kind = "missed-hits" if stop["reason"] == "exited" else "wrong-stop"

    if watch is not None and not problems:
        if args.old is not None:
            expected["old"] = args.old
            if not values_equal(old_before, args.old):
                problems.append("old value %s" % args.old)
                kind = kind or "wrong-value"
        if args.new is not None or args.value is not None:
            want = args.new if args.new is not None else args.value
            expected["new" if args.new is not None else "value"] = want
            if not values_equal(new_value, want):
                problems.append("%s %s" % ("new value" if args.new is not None else "value", want))
                kind = kind or "wrong-value"

    if stop["reason"] not in ("exited", "none") and not problems:
        loc_expected, loc_problems = check_location(args, stop["location"])
        expected.update(loc_expected)
        if loc_problems:
            problems.extend(loc_problems)
            kind = "wrong-location"

    if not expected:
        expected["stop"] = "any"
        if stop["reason"] in ("exited", "none"):
            problems.append("a stop")
            kind = "wrong-stop"

    if timed_out:
        # The watched value changed while no stop came: the watchpoint missed that change.
        changed = watch is not None and observed.get("old") != observed.get("new")
        kind = "missed-hits" if changed else "timeout"
    elif error and not problems and stop["reason"] == "none":
        problems.append("a stop")
    if error and kind is None and problems:
        kind = "gdb-error"

    seen = stop_text(stop)
    if watch is not None and "old" in observed:
        seen += " with old=%s new=%s" % (show(observed["old"]), show(observed["new"]))
    if timed_out:
        seen = "no stop within %gs (interrupted: %s)" % (args.timeout, seen)
    if error:
        seen += " [gdb: %s]" % error
    if problems:
        message = "expected %s; saw %s" % (", ".join(problems), seen)
    else:
        message = seen
    return record(args.command, args.name, not problems, expected, observed, message, kind)


# ---------------------------------------------------------------------------- commands

def _add_location_options(parser):
    parser.add_argument("--at", help="location: *ADDR, [FILE:]LINE or FUNCTION")
    parser.add_argument("--pc", help="the stop's pc (number or gdb expression)")
    parser.add_argument("--function", help="the stop's function name")
    parser.add_argument("--line", help="the stop's [FILE:]LINE")


def _add_common(parser):
    parser.add_argument("--name", help="the check's name in the result line")
    parser.add_argument("--kind", help="the failure kind to report instead of the computed one")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before the resume is interrupted (default: vmmcheck timeout)")


class _Subcommand(gdb.Command):
    """Base: parse the arguments with argparse, run, turn Python errors into gdb errors."""

    name = ""
    parser = None

    def __init__(self):
        super().__init__("vmmcheck " + self.name, gdb.COMMAND_USER)

    def invoke(self, argument, from_tty):
        try:
            args = self.parser.parse_args(shlex.split(argument))
        except _HelpShown:
            return
        args.command = self.name
        if getattr(args, "timeout", "absent") is None:
            args.timeout = STATE.timeout
        STATE.kind_override = getattr(args, "kind", None)
        try:
            self.run(args)
        finally:
            STATE.kind_override = None

    def run(self, args):
        raise NotImplementedError


class VmmcheckPrefix(gdb.Command):
    """Assertions for scripted sessions. Subcommands:
  vmmcheck attach [--serve-args ARGS]     connect (VMMCHECK_TARGET: unset = :1234, `launch`, or a target)
  vmmcheck continue [expectations]        continue and check the stop (--watch/--old/--new/--value,
                                          --breakpoint, --at/--pc/--function/--line, --signal, --exited)
  vmmcheck hits WATCH N [--increment D]   continue through N hits of a watchpoint, report PCs and values
  vmmcheck stepi [--count N] [--pcs ...]  step N instructions, each must end as a plain step
  vmmcheck reg REG VALUE [--mask M]       compare a register ($dr6, $dr7, $rip, ...)
  vmmcheck expr EXPR VALUE                compare any gdb expression
  vmmcheck monitor CMD (--match RE | --no-match RE)   run `monitor CMD` and check its output
  vmmcheck vmmctl ARGS...                 run vmmctl --vm $VMMCHECK_VM_NAME ARGS (must succeed)
  vmmcheck on-fail exit|error|continue    what a failed check does (default: exit gdb with 1)
  vmmcheck timeout SECONDS                default resume timeout (default 60, env VMMCHECK_TIMEOUT)
  vmmcheck summary | vmmcheck exit        print the summary line / and quit with 0 (pass) or 1"""

    def __init__(self):
        super().__init__("vmmcheck", gdb.COMMAND_USER, prefix=True)

    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError("vmmcheck: unknown subcommand %r (try `help vmmcheck`)" % argument.split()[0])
        gdb.write(self.__doc__ + "\n")


class AttachCommand(_Subcommand):
    name = "attach"
    parser = _Parser(prog="vmmcheck attach", description="Connect gdb to the VM.")
    parser.add_argument("--serve-args", default="", help="extra `serve` options when launching")

    def run(self, args):
        target = os.environ.get("VMMCHECK_TARGET", ":1234")
        if target == "launch":
            program = gdb.current_progspace().filename
            if not program:
                raise gdb.GdbError("vmmcheck attach: load the guest ELF first (gdb guest.elf)")
            serve = [
                os.environ.get("VMMCHECK_NODE", "node"),
                os.path.join(REPO_ROOT, "bin", "vmm-gdbstub.js"),
                "serve", program, "--gdb", "stdio",
            ]
            serve += ["--name", vm_name()] if os.environ.get("VMMCHECK_VM_NAME") else []
            serve += shlex.split(args.serve_args)
            serve += shlex.split(os.environ.get("VMMCHECK_SERVE_ARGS", ""))
            target = "| " + " ".join(shlex.quote(part) for part in serve)
        # gdb resends a packet not answered within remotetimeout (2 s by default) and then
        # takes the late second answer as the reply to its next packet ("Remote replied
        # unexpectedly to 'vMustReplyEmpty'"): a stub that is still starting (node, a
        # loaded machine) needs longer. A value the user set is kept.
        if gdb.parameter("remotetimeout") == 2:
            gdb.execute("set remotetimeout %d" % ATTACH_REMOTE_TIMEOUT)
        gdb.write("vmmcheck: target remote %s\n" % target)
        gdb.execute("target remote " + target)


def vm_name():
    """The --name of the VM that `vmmcheck attach` launches and `vmmcheck vmmctl` addresses."""
    return os.environ.get("VMMCHECK_VM_NAME", "vmmcheck")


class VmmctlCommand(_Subcommand):
    name = "vmmctl"
    parser = _Parser(prog="vmmcheck vmmctl",
                     description="Run vmmctl --vm NAME ARGS (bhyvectl-style) on the VM; it must succeed. "
                                 "gdb's register cache is flushed after it, since the registers changed behind gdb.")
    parser.add_argument("--name", help="the check's name in the result line")

    def invoke(self, argument, from_tty):
        # Every argument but --name is vmmctl's, flags included.
        try:
            args, rest = self.parser.parse_known_args(shlex.split(argument))
        except _HelpShown:
            return
        args.args = rest
        self.run(args)

    def run(self, args):
        import subprocess
        command = [os.environ.get("VMMCHECK_NODE", "node"), os.path.join(REPO_ROOT, "bin", "vmmctl.js"),
                   "--vm", vm_name()] + args.args
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        gdb.write(done.stdout)
        gdb.execute("maint flush register-cache", to_string=True)
        text = " ".join(args.args)
        output = (done.stdout + done.stderr).strip().replace("\n", " | ")
        passed = done.returncode == 0
        message = ("vmmctl %s: %s" % (text, output or "ok") if passed else
                   "expected vmmctl %s to succeed; saw exit status %d: %s" % (text, done.returncode, output))
        record("vmmctl", args.name or "vmmctl " + text, passed, {"args": args.args, "status": 0},
               {"status": done.returncode, "output": output}, message, "vmmctl-failed")


class ContinueCommand(_Subcommand):
    name = "continue"
    parser = _Parser(prog="vmmcheck continue",
                     description="Continue until the next stop and check it.")
    parser.add_argument("--watch", help="the stop must be this watchpoint (number or expression)")
    parser.add_argument("--old", help="the watched value before the stop")
    parser.add_argument("--new", help="the watched value at the stop")
    parser.add_argument("--value", help="the watched value at the stop (rwatch/awatch)")
    parser.add_argument("--breakpoint", help="the stop must be this breakpoint (number or location)")
    parser.add_argument("--signal", help="the stop must be this signal (SIGINT, SIGTRAP, ...)")
    parser.add_argument("--exited", nargs="?", const="any", help="the program must exit (with this code)")
    _add_location_options(parser)
    _add_common(parser)

    def run(self, args):
        continue_and_check(args)


class HitsCommand(_Subcommand):
    name = "hits"
    parser = _Parser(prog="vmmcheck hits",
                     description="Continue through N hits of a watchpoint or breakpoint; report PCs and values.")
    parser.add_argument("watch", help="watchpoint/breakpoint number or expression")
    parser.add_argument("count", type=int)
    parser.add_argument("--track", help="an expression to follow instead of the watched one (for breakpoints)")
    parser.add_argument("--increment", help="each hit's new value must be the old value plus this")
    parser.add_argument("--values", help="comma-separated expected new values, one per hit")
    _add_common(parser)

    def run(self, args):
        bp = find_breakpoint(args.watch)
        if software_watch_failure("hits", args.name, bp) is not None:
            return
        is_watch = bp.type in WATCH_TYPES

        def tracked():
            if args.track:
                try:
                    return evaluate(args.track)
                except gdb.error:
                    return None
            return watch_values_before(bp) if is_watch else None
        increment = parse_number(args.increment) if args.increment is not None else None
        expected_values = args.values.split(",") if args.values else None
        pcs, values, problem, kind = [], [], None, None
        stop = None
        for index in range(args.count):
            old = watch_values_before(bp) if is_watch else None
            old_tracked = tracked()
            stop, error, timed_out = resume("continue", args.timeout)
            new = watch_values_before(bp) if is_watch else None
            hit = watch_hit(bp, stop, old, new)
            old, new = old_tracked, tracked()
            if not hit:
                # A timeout with the tracked value changed is a missed hit too.
                kind = "timeout" if timed_out and old == new else "missed-hits"
                seen = stop_text(stop)
                if timed_out:
                    seen = "no stop within %gs (interrupted: %s)" % (args.timeout, seen)
                problem = "hit %d of %d: expected %s; saw %s%s" % (
                    index + 1, args.count, bp_text(bp), seen, " [gdb: %s]" % error if error else "")
                break
            pcs.append(stop["location"]["pc"])
            values.append([old, new])
            if increment is not None and isinstance(old, int) and isinstance(new, int) and new != old + increment:
                kind = "missed-hits"
                problem = "hit %d of %d: expected %s -> %s; saw %s -> %s at %s" % (
                    index + 1, args.count, show(old), show(old + increment), show(old), show(new),
                    location_text(stop["location"]))
                break
            if expected_values and index < len(expected_values) and not values_equal(new, expected_values[index]):
                kind = "wrong-value"
                problem = "hit %d of %d: expected new value %s; saw %s at %s" % (
                    index + 1, args.count, expected_values[index], show(new), location_text(stop["location"]))
                break
        observed = {"count": len(pcs), "pcs": pcs, "values": values}
        expected = {"count": args.count, "increment": increment, "values": expected_values}
        if problem:
            message = problem + " (%d good hits)" % len(pcs)
        else:
            message = "%d hits of %s at %s" % (len(pcs), bp_text(bp), ", ".join("0x%x" % pc for pc in sorted(set(pcs))))
        record("hits", args.name, problem is None, expected, observed, message, kind)


class StepiCommand(_Subcommand):
    name = "stepi"
    parser = _Parser(prog="vmmcheck stepi",
                     description="Step instructions; each must end as a plain step (no breakpoint, signal or exit).")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--pcs", help="comma-separated expected pcs after each step (prefix allowed)")
    parser.add_argument("--until", help="stop stepping once the pc equals this expression (--count = maximum)")
    _add_common(parser)

    def run(self, args):
        want_pcs = [to_number(p) for p in args.pcs.split(",")] if args.pcs else []
        until = to_number(args.until) if args.until else None
        pcs, problem, kind = [], None, None
        for index in range(args.count):
            stop, error, timed_out = resume("stepi", args.timeout)
            if stop["reason"] != "stop":
                kind = "timeout" if timed_out else "wrong-stop"
                problem = "step %d: expected a plain step; saw %s%s" % (
                    index + 1, stop_text(stop), " [gdb: %s]" % error if error else "")
                break
            pc = stop["location"]["pc"]
            pcs.append(pc)
            if index < len(want_pcs) and pc != want_pcs[index]:
                kind = "wrong-location"
                problem = "step %d: expected pc 0x%x; saw 0x%x" % (index + 1, want_pcs[index], pc)
                break
            if until is not None and pc == until:
                break
        if problem is None and until is not None and (not pcs or pcs[-1] != until):
            kind = "wrong-location"
            problem = "expected to reach 0x%x within %d steps; last pc %s" % (
                until, args.count, "0x%x" % pcs[-1] if pcs else "none")
        observed = {"count": len(pcs), "pcs": pcs}
        expected = {"count": args.count, "pcs": want_pcs, "until": until}
        message = problem or "%d steps, pcs %s" % (len(pcs), " ".join("0x%x" % pc for pc in pcs[:8]) +
                                                    (" ..." if len(pcs) > 8 else ""))
        record("stepi", args.name, problem is None, expected, observed, message, kind)


class RegCommand(_Subcommand):
    name = "reg"
    parser = _Parser(prog="vmmcheck reg", description="Compare a register with an expected value.")
    parser.add_argument("register", help="$dr6, dr7, $rip, ...")
    parser.add_argument("expected", help="number or gdb expression (e.g. &counter)")
    parser.add_argument("--mask", help="compare only these bits")
    parser.add_argument("--name")
    parser.add_argument("--kind", help="the failure kind to report (default register-mismatch)")

    def run(self, args):
        register = args.register if args.register.startswith("$") else "$" + args.register
        try:
            seen = int(gdb.parse_and_eval(register)) & 0xFFFFFFFFFFFFFFFF
        except gdb.error as exc:
            record("reg", args.name or "reg " + register, False, {"register": register, "value": args.expected},
                   {"error": str(exc)}, "expected %s = %s; gdb cannot read it: %s" % (register, args.expected, exc),
                   "gdb-error")
            return
        want = to_number(args.expected)
        want &= 0xFFFFFFFFFFFFFFFF
        mask = parse_number(args.mask) if args.mask else 0xFFFFFFFFFFFFFFFF
        passed = (seen & mask) == (want & mask)
        masked = "" if args.mask is None else " under mask 0x%x" % mask
        if passed:
            message = "%s = 0x%x%s" % (register, seen, masked)
        else:
            message = "expected %s = 0x%x%s; saw 0x%x (differing bits 0x%x)" % (
                register, want, masked, seen, (seen ^ want) & mask)
        record("reg", args.name or "reg " + register, passed,
               {"register": register, "value": want, "mask": mask}, {"value": seen}, message,
               "register-mismatch")


class ExprCommand(_Subcommand):
    name = "expr"
    parser = _Parser(prog="vmmcheck expr", description="Compare a gdb expression with an expected value.")
    parser.add_argument("expression")
    parser.add_argument("expected")
    parser.add_argument("--name")
    parser.add_argument("--kind", help="the failure kind to report (default wrong-value)")

    def run(self, args):
        try:
            seen = evaluate(args.expression)
        except gdb.error as exc:
            record("expr", args.name or "expr " + args.expression, False,
                   {"expression": args.expression, "value": args.expected}, {"error": str(exc)},
                   "expected %s = %s; gdb cannot evaluate it: %s" % (args.expression, args.expected, exc), "gdb-error")
            return
        passed = values_equal(seen, args.expected)
        message = ("%s = %s" % (args.expression, show(seen)) if passed else
                   "expected %s = %s; saw %s" % (args.expression, args.expected, show(seen)))
        record("expr", args.name or "expr " + args.expression, passed,
               {"expression": args.expression, "value": args.expected}, {"value": seen}, message,
               "wrong-value")


class MonitorCommand(_Subcommand):
    name = "monitor"
    parser = _Parser(prog="vmmcheck monitor", description="Run `monitor CMD` and check its output.")
    parser.add_argument("cmd", nargs="+")
    parser.add_argument("--match", help="the output must match this regular expression")
    parser.add_argument("--no-match", help="the output must not match this regular expression")
    parser.add_argument("--kind", help="the failure kind to report (default monitor-mismatch)")
    parser.add_argument("--name")

    def run(self, args):
        command = " ".join(args.cmd)
        try:
            output = gdb.execute("monitor " + command, to_string=True)
        except gdb.error as exc:
            record("monitor", args.name or "monitor " + command, False, {"command": command},
                   {"error": str(exc)}, "monitor %s failed: %s" % (command, exc), "gdb-error")
            return
        gdb.write(output)
        problems = []
        if args.match and not re.search(args.match, output, re.M):
            problems.append("output matching /%s/" % args.match)
        if args.no_match and re.search(args.no_match, output, re.M):
            problems.append("no output matching /%s/" % args.no_match)
        lines = [line for line in output.splitlines() if line.strip()]
        excerpt = " | ".join(lines[:6])
        message = ("expected %s; saw: %s" % (" and ".join(problems), excerpt) if problems
                   else "monitor %s: %s" % (command, excerpt))
        record("monitor", args.name or "monitor " + command, not problems,
               {"command": command, "match": args.match, "no_match": args.no_match},
               {"output": output}, message, "monitor-mismatch")


class OnFailCommand(_Subcommand):
    name = "on-fail"
    parser = _Parser(prog="vmmcheck on-fail", description="What a failed check does.")
    parser.add_argument("policy", choices=["exit", "error", "continue"])

    def run(self, args):
        STATE.on_fail = args.policy


class TimeoutCommand(_Subcommand):
    name = "timeout"
    parser = _Parser(prog="vmmcheck timeout", description="Default seconds before a resume is interrupted (0 = never).")
    parser.add_argument("seconds", type=float)

    def run(self, args):
        STATE.timeout = args.seconds


class SummaryCommand(_Subcommand):
    name = "summary"
    parser = _Parser(prog="vmmcheck summary", description="Print the summary result line.")

    def run(self, args):
        print_summary()


class ExitCommand(_Subcommand):
    name = "exit"
    parser = _Parser(prog="vmmcheck exit",
                     description="Print the summary and quit gdb: 0 if every check passed, 1 if not (or none ran).")

    def run(self, args):
        print_summary()
        _quit(0 if summary()["pass"] else 1)


class LintCommand(_Subcommand):
    name = "lint"
    parser = _Parser(prog="vmmcheck lint",
                     description="Check the arguments of every vmmcheck line of a script, without running it.")
    parser.add_argument("script")

    def run(self, args):
        parsers = {cls.name: cls.parser for cls in _COMMANDS if cls.parser is not None}
        problems = []
        with open(args.script) as handle:
            for number, line in enumerate(handle, 1):
                words = line.split(None, 2)
                if len(words) < 2 or words[0] != "vmmcheck":
                    continue
                where = "%s:%d" % (args.script, number)
                if words[1] not in parsers:
                    problems.append("%s: unknown subcommand %s" % (where, words[1]))
                    continue
                try:
                    tokens = shlex.split(words[2] if len(words) > 2 else "")
                    if words[1] == "vmmctl":
                        parsers[words[1]].parse_known_args(tokens)
                    else:
                        parsers[words[1]].parse_args(tokens)
                except (gdb.GdbError, ValueError) as exc:
                    problems.append("%s: %s" % (where, exc))
        for problem in problems:
            gdb.write("vmmcheck lint: %s\n" % problem)
        if problems:
            raise gdb.GdbError("vmmcheck lint: %d problem(s) in %s" % (len(problems), args.script))
        gdb.write("vmmcheck lint: %s ok\n" % args.script)


_COMMANDS = (AttachCommand, VmmctlCommand, ContinueCommand, HitsCommand, StepiCommand, RegCommand, ExprCommand,
             MonitorCommand, OnFailCommand, TimeoutCommand, SummaryCommand, ExitCommand, LintCommand)

VmmcheckPrefix()
for _command in _COMMANDS:
    _command()
