"""`dotbias compare CANDIDATE`: resolve the two variants, run the equivalence checks, the timing and
the memory measurement, print the answer and write compare.md, compare.json and compare.png as one
result set, through `commands.run_command` like every other subcommand. The run's settings are a
`Settings` record and its progress clock lives on the `CompareRun` that runs it."""
from __future__ import annotations

import time

from dotbias import commands
from dotbias.compare.checks import equivalence_rows
from dotbias.compare.plot import compare_plot
from dotbias.compare.settings import Settings
from dotbias.compare.speed import Budget, memory_pair, time_pair
from dotbias.compare.training import compare_setup, is_setup, parse_candidate
from dotbias.compare.verdict import Comparison, as_json, render
from dotbias.equivalence.baseline import choose_baseline, resolve_name
from dotbias.equivalence.contract import CONTRACT
from dotbias.io.resultset import ResultSet
from dotbias.io.tables import SPEED_RULE
from dotbias.timing.stats import METHOD

HOW_TO_READ = (f"How to read it. Times: {METHOD}; {SPEED_RULE}. Each operation's timing stops at its target "
               "half-width or when its time budget runs out, as its row says. Peak memory: the most "
               "bytes allocated at once during one call (after a warm-up call), measured from the "
               f"allocator. Equivalence: {CONTRACT}")


class CompareRun:
    """One `dotbias compare` command: its settings, its clock (progress lines say the seconds
    since it started) and its steps, handed to `commands.run_command`."""

    def __init__(self, args, settings: Settings | None = None):
        self.args = args
        self.start = time.perf_counter()
        self.settings = settings or Settings.from_args(args)
        self.progress = commands.progress_of(args)
        self.registry = getattr(args, "registry", None)     # the run's; with the two (`names`)

    def say(self, message: str) -> None:
        """A status line on stderr (`Progress.log`), with the seconds since the command started."""
        self.progress.log(f"[{time.perf_counter() - self.start:4.0f} s] {message}")

    def names(self) -> tuple[str, str]:
        """CANDIDATE and --baseline resolved (`resolve_name`), before anything is written; the
        run's registry (`args.registry`) then holds both."""
        text, registry = self.args.candidate, self.args.registry
        if is_setup(text):                                              # VARIANT+IMPL
            candidate = parse_candidate(text, registry).name
        else:
            candidate, registry = resolve_name(text, "CANDIDATE", registry)
        baseline, self.registry = choose_baseline(self.args.baseline, registry)
        if candidate == baseline:
            raise ValueError(f"CANDIDATE and --baseline are both {candidate!r}: give two variants")
        return candidate, baseline

    def compare(self, candidate: str, baseline: str) -> Comparison:
        """Everything measured, in the order that fails fastest: equivalence, memory, then timing
        (only for an equivalent candidate: the speed of another model answers nothing)."""
        s, t0 = self.settings, time.perf_counter()
        reg = self.registry
        eq = equivalence_rows(reg.get_variant(candidate), reg.get_variant(baseline), s.examples, reg,
                              self.say)
        memory = memory_pair(candidate, baseline, list(s.operations), reg, self.say)
        budget = Budget(s.time_budget_s, s.kernel_s, None, s.max_processes, self.start + s.total_s)
        same = all(r.passed for r in eq) and not any(m.failure for m in memory)
        timed = (time_pair(candidate, baseline, list(s.operations), budget, s.threads, self.say,
                           reg.specs) if same else [])
        return Comparison(candidate, baseline, baseline, eq, timed, memory,
                          self.args.max_slowdown, s, round(time.perf_counter() - t0, 1))

    def work(self, rs: ResultSet, names: tuple[str, str]) -> tuple[str, int]:
        """Measure, then render every file before the set is swapped in; the screen's answer."""
        text = self.args.candidate
        setup = parse_candidate(text, self.registry) if is_setup(text) else None
        c = (compare_setup(setup, names[1], self.settings, self.args.max_slowdown, self.start,
                           self.say, self.registry) if setup else self.compare(*names))
        png = compare_plot(c)
        rs.write_text("compare.md", f"# dotbias compare: {c.candidate} vs {c.baseline}\n\n"
                      + render(c, full=True) + "\n\n" + HOW_TO_READ + "\n")
        rs.write_json("compare.json", as_json(c))
        rs.write_bytes("compare.png", png)
        return render(c, full=False), c.exit_status()


def run(args) -> int:
    """`dotbias compare` on the one command skeleton: --out checked, threads pinned, names
    resolved, then the result set written whole."""
    command = CompareRun(args)
    return commands.run_command(args, "compare", command.work, command.names)
