"""One `pytest bench` session's dotbias state: the worker rounds of every selected group (timed once,
at the first benchmark), floors, instruction counts, the run compared with, and the verdict lines."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dotbias.models.registry import Registry
from dotbias.pytest_bench import adapter
from dotbias.pytest_bench.floors_and_notes import FloorsAndNotes
from dotbias.pytest_bench.measured import benchmark_record
from dotbias.pytest_bench.stopped import METHOD, TABLE_NOTE, stopped_lines
from dotbias.report.benchmark_json import Benchmark
from dotbias.report.markdown import verdict_lines
from dotbias.report.saved_run import (
    changes,
    different_baselines,
    instruction_minima,
    other_speed,
    resolve,
    slower_than,
)
from dotbias.report.summary import load_run, row_order, summarise, summarise_group
from dotbias.timing import instruction_counts as ins
from dotbias.timing.adaptive import GroupTiming, Plan, failure, time_adaptively
from dotbias.timing.groups import KERNELS, SIZES, Group
from dotbias.timing.instruction_counts import gate
from dotbias.timing.memory import op_peak_bytes
from dotbias.timing.operations import op_notes
from dotbias.timing.worker_server import Workers
from dotbias.timing.workers import WorkSpec, aa_name


class Session:
    def __init__(self, config, base: str, registry: Registry, fail_slower: float | None = None,
                 instructions_threshold: float = ins.THRESHOLD, plan: Plan | None = None):
        self.config = config
        self.base = base                    # the chosen baseline: timed, copied (--aa), recorded
        self.registry = registry            # the run's variants, implementations, specs
        self.fail_slower = fail_slower      # the time gate: allowed slowdown of a ratio, or None
        self.instructions_threshold = instructions_threshold     # the instruction-count gate
        self.notes: list[str] = []          # printed after collection
        self.lines: list[str] = []          # printed at the end ("dotbias verdict")
        self.plan = plan or Plan()          # when the adaptive timing stops
        self.rounds: dict[str, GroupTiming] | None = None
        self.beside = FloorsAndNotes(base, registry)    # floors and contract notes, each made once
        self.counts: dict[str, dict[str, ins.Counts]] = {}
        self.measured: dict[tuple[str, str], Benchmark] = {}   # the report's record of each item
        self.compared: Path | None = None
        self.setups: list = []              # --training: parsed `Training`s, timed where they train
        # forked from servers that import ahead (timing.worker_server)
        self.workers = Workers()

    def opt(self, name: str):
        return self.config.getoption(name)

    def _say(self, text: str) -> None:
        """A progress line now, even from inside a test (pytest's capture suspended for it)."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None or capman is None:
            print(text, file=sys.stderr)
            return
        with capman.global_and_fixture_disabled():
            tr.write_line(text)

    # --- the saved run to compare with ---------------------------------------------------------
    def resolve_compare(self, items) -> None:

        benchmark_session = adapter.benchmark_session(self.config)
        if (benchmark_session is None or not benchmark_session.compare or benchmark_session.disabled
                or not items):
            return
        explicit = benchmark_session.compare is not True
        storage = benchmark_session.storage
        candidates = list(storage.query(benchmark_session.compare) if explicit else storage.query())
        try:
            self.compared = resolve(candidates, {it.nodeid for it in items}, explicit, self.base)
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        benchmark_session.compare = str(self.compared)
        benchmark_session.handle_loading()

    # --- timing in worker processes ------------------------------------------------------------
    def _time_all(self, pysession) -> None:

        selected: dict[Group, list[str]] = {}       # each group, in order, and what -k kept of it
        for it in pysession.items:
            if (g := group_of(it)) is not None:
                selected.setdefault(g, []).append(it.callspec.params["variant"])
        groups = tuple(selected)
        spec = WorkSpec(groups, tuple(self.registry.variants), self.base, self.opt("aa"),
                        self.opt("interleave_s"), self.opt("epoch_rounds"), self.opt("threads"),
                        plugins=self.registry.specs,
                        setups=tuple(s.name for s in self.setups),
                        selected=tuple((g.label, tuple(names)) for g, names in selected.items()))
        plan = self.plan
        how = (f"in {plan.max_processes} fresh processes" if plan.fixed else "in fresh processes until "
               f"each interval reaches its target or {plan.budget(groups):.0f} s pass")
        self._say(f"\ntiming {len(groups)} groups {how}, one after the other ...")
        self.rounds = time_adaptively(spec, plan, progress=self._say, run=self.workers.run,
                                      uses=self.workers.uses)
        failed = failure(t.stopped for t in self.rounds.values())
        if failed:      # a worker failed: one line naming it, no half-timed table
            pytest.exit(f"dotbias: {failed}", returncode=1)

    def measure(self, pysession, group: Group, variant: str) -> dict:
        """What this (group, variant) stores in extra_info: rounds per process, why the timing
        stopped, A/A, and for kernel groups the peak memory of one call, the floors and the counts."""

        if self.rounds is None:
            self._time_all(pysession)
        timed = self.rounds[group.label]
        info = {"timing": {"seconds": timed.seconds(variant),
                           "iterations": [r.iterations[variant] for r in timed.rounds],
                           "first_call_s": [r.first_call_s[variant] for r in timed.rounds],
                           "compiles_in_rounds": [r.compiles_in_rounds[variant] for r in timed.rounds],
                           "stopped": timed.stopped, "target": timed.target}}
        if timed.servers:
            info["timing"]["servers"] = list(timed.servers)
        if notes := op_notes(group, variant, self.registry):
            info["notes"] = notes
        contract = self.beside.contract(group, variant) if variant != self.base else None
        if contract is not None:
            info["contract"] = contract.as_dict()
        aa = timed.seconds(aa_name(variant)) if self.opt("aa") and variant == self.base else []
        if aa:
            info["aa"] = {"seconds": aa}
        peak = floor_ = counts = None
        if group.operation in KERNELS:      # an epoch's peak is its step's; profiling a whole epoch
            peak = op_peak_bytes(group, variant, self.registry)                        # costs seconds
            info["memory"] = {"peak_bytes": peak}
            if not self.registry.compiles(variant):     # compiled kernels are not aten ops: no floor to count
                floor_ = self.beside.floor(group, variant)
                info["floor"] = floor_.as_dict()
            if self.opt("instructions") and group.device == "cpu":
                counts = self._instructions(pysession, group).get(variant)
                if counts is not None:
                    info["instructions"] = counts.as_dict()
        self.measured[(group.label, variant)] = benchmark_record(
            group, variant, self.base, timed, compiled=self.registry.compiles(variant), aa=aa,
            notes=notes or (), peak_bytes=peak, floor=floor_, instructions=counts, contract=contract)
        return info

    def _instructions(self, pysession, group: Group) -> dict:
        """Every variant's counts for `group`; at the first call, every selected CPU kernel group
        is counted in one valgrind process (its start-up is most of the cost)."""

        if group.label in self.counts:
            return self.counts[group.label]
        reason = ins.unsupported()
        if reason:
            if reason not in self.notes:
                self.notes.append(reason)
                self._say(reason)
            self.counts[group.label] = {}
            return {}
        groups = [g for g in dict.fromkeys(group_of(it) for it in pysession.items)
                  if g and g.device == "cpu" and g.operation in KERNELS and g.label not in self.counts]
        calls, threads = self.opt("instructions_calls"), self.opt("threads")
        eager = [v for v in self.registry.variants if not self.registry.compiles(v)]
        if len(eager) < len(self.registry.variants):    # dynamo, inductor under valgrind: tens of minutes
            self.notes.append("instruction counts leave out compiled variants (their compilation "
                              "under callgrind would take tens of minutes)")
        jobs = [(g, v) for g in groups for v in eager]
        self._say(f"\ncounting instructions: {len(groups)} groups x {len(eager)} variants, "
                  f"3 repeats each, in one callgrind process ...")
        try:
            raw = ins.collect_all(jobs, calls, 3, threads, plugins=self.registry.specs)
        except (OSError, RuntimeError) as e:    # valgrind failed: say so in one line, go on
            line = f"instruction counts failed, skipped: {str(e).strip().splitlines()[-1][:200]}"
            self.notes.append(line)
            self._say(line)
            raw, groups = {}, []
            self.counts.update({g.label: {} for g in dict.fromkeys(g for g, _ in jobs)})
        for g in groups:
            base = raw[(g.label, self.base)]
            n = ins.calls_for(g, calls)
            self.counts[g.label] = {v: ins.counts(raw[(g.label, v)], n,
                                                  None if v == self.base else base)
                                    for v in eager}
        return self.counts[group.label]

    # --- the end: verdicts, changes, the instruction gate --------------------------------------
    def finish(self) -> bool:
        """Stop the worker server; fill `lines`; True when the instruction-count gate failed."""
        self.workers.close()
        rows = self._rows()
        if not rows:
            return False

        self.lines = list(self.notes) + [METHOD, TABLE_NOTE] + self._stopped() + [
            ln for r in rows for ln in verdict_lines(r)]
        return self._compare(rows)

    def _stopped(self) -> list[str]:
        return stopped_lines(self.rounds or {})

    def _rows(self) -> list:
        """A summary row per group, from the records `measure` kept for the benchmarks that ran."""
        benchmark_session = adapter.benchmark_session(self.config)
        groups: dict[str, list[Benchmark]] = {}
        for b in (benchmark_session.benchmarks if benchmark_session else []):
            record = self.measured.get((b.group, b.extra_info.get("variant")))
            if b.has_error or record is None or b.stats is None:
                continue
            groups.setdefault(b.group, []).append(
                replace(record, name=b.name, fullname=b.fullname, median=b.stats.median))
        rows = [summarise_group(benches, torch=torch.__version__) for benches in groups.values()]
        return sorted(rows, key=row_order)

    def _compare(self, rows) -> bool:
        """Changes against the saved run, the instruction gate and the time gate; True: one failed."""
        if self.compared is None:
            return False

        before = list(summarise([load_run(self.compared)]).rows)
        aa = max((r.aa.half_width for r in rows if r.aa is not None), default=0.0)
        found, mixed = changes(rows, before), different_baselines(rows, before)
        self.lines += [f"compared with {self.compared}:"] + mixed + other_speed(rows, before)
        self.lines += [c.line(aa) for c in found]
        costlier = gate(instruction_minima(rows), instruction_minima(before),
                        self.instructions_threshold)
        self.lines += costlier
        slower: list[str] = []
        if self.fail_slower is not None and mixed:      # a gate that cannot compare does not pass
            slower = [f"--fail-slower {self.fail_slower * 100:g}%: FAILED: nothing to compare "
                      "against a saved run judged against another baseline"]
            self.lines += slower
        elif self.fail_slower is not None:
            slower, verdict = slower_than(found, self.fail_slower, aa)
            self.lines += slower + [verdict]
        return bool(costlier or slower)


def group_of(item) -> Group | None:
    """The benchmark group an item times (operation from the test's name: test_step -> step)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "time_op" not in getattr(item, "fixturenames", ()) or not {"device", "size", "dtype"} <= set(params):
        return None
    return Group(item.originalname.removeprefix("test_"), params["device"], SIZES[params["size"]],
                 params["dtype"])
