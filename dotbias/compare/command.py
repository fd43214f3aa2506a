"""`dotbias compare CANDIDATE`: resolve the two variants, run the equivalence checks, the timing and
the memory measurement, print the answer and write compare.md, compare.json and compare.png as one
result set."""
from __future__ import annotations

import sys
import time

import torch

from dotbias.compare.checks import Examples, equivalence_rows
from dotbias.compare.presets import DEFAULT, THOROUGH
from dotbias.compare.plot import compare_plot
from dotbias.compare.speed import Budget, memory_pair, time_pair
from dotbias.compare.training import compare_setup, is_setup, parse_candidate
from dotbias.compare.verdict import Comparison, as_json, render
from dotbias.equivalence.contract import BASELINE, CONTRACT
from dotbias.io.files import check_writable
from dotbias.io.progress import enabled
from dotbias.io.resultset import ResultSet
from dotbias.models.plugins import load_variants
from dotbias.models.registry import get_variant
from dotbias.timing.groups import OPERATIONS
from dotbias.timing.stats import METHOD


_CLOCK = {"start": time.perf_counter()}       # reset when a command starts (see `run`)
HOW_TO_READ = (f"How to read it. Times: {METHOD}. Each operation's timing stops at its target "
               "half-width or when its time budget runs out, as its row says. Peak memory: the most "
               "bytes allocated at once during one call (after a warm-up call), measured from the "
               f"allocator. Equivalence: {CONTRACT}")


def say(message: str) -> None:
    """A status line on stderr, with the seconds since the command started, when progress shows."""
    if enabled():
        print(f"[{time.perf_counter() - _CLOCK['start']:4.0f} s] {message}", file=sys.stderr,
              flush=True)


def resolve(text: str, option: str) -> str:
    """The registered name of CANDIDATE or --baseline: a name, or a pkg.module:attr spec naming
    exactly one variant (registered like --variant)."""
    if ":" in text:
        names = load_variants([text], env=False, entry_points=False)
        if len(names) != 1:
            raise ValueError(f"{option} {text!r}: names {len(names)} variants ({', '.join(names)}); "
                             f"load it with --variant {text} and give one name as {option}")
        return names[0]
    try:
        get_variant(text)
    except ValueError as e:
        raise ValueError(f"{option}: {e}") from None
    return text


def settings_of(args) -> dict:
    preset = THOROUGH if args.thorough else DEFAULT
    examples = args.examples or preset["examples"]
    return {"thorough": args.thorough, "threads": args.threads,
            "examples": {"outputs": examples, "trajectories": max(1, examples // 5),
                         "inits": max(1, examples // 10)},
            "time_budget_s": preset["time_budget"] if args.time_budget is None else args.time_budget,
            "kernel_s": preset["kernel_s"], "max_processes": preset["processes"],
            "total_s": preset["total_s"],
            "operations": list(args.operations or OPERATIONS), "torch": torch.__version__}


def compare(candidate: str, baseline: str, s: dict, max_slowdown: float | None) -> Comparison:
    """Everything measured, in the order that fails fastest: equivalence, memory, then timing
    (only for an equivalent candidate: the speed of another model answers nothing)."""
    t0 = time.perf_counter()
    ex = s["examples"]
    eq = equivalence_rows(get_variant(candidate), get_variant(BASELINE),
                          Examples(ex["outputs"], ex["trajectories"], ex["inits"]), say)
    memory = memory_pair(candidate, baseline, s["operations"], say)
    budget = Budget(s["time_budget_s"], s["kernel_s"], None, s["max_processes"],
                    _CLOCK["start"] + s["total_s"])
    same = all(r.passed for r in eq) and not any(m.failure for m in memory)
    timed = time_pair(candidate, baseline, s["operations"], budget, s["threads"], say) if same else []
    s = s | {"wall_s": round(time.perf_counter() - t0, 1)}
    return Comparison(candidate, baseline, BASELINE, eq, timed, memory, max_slowdown, s)


def run(args) -> int:
    _CLOCK["start"] = time.perf_counter()
    setup = parse_candidate(args.candidate) if is_setup(args.candidate) else None   # VARIANT+IMPL
    candidate = setup.name if setup else resolve(args.candidate, "CANDIDATE")
    baseline = resolve(args.baseline or BASELINE, "--baseline")
    if candidate == baseline:
        raise ValueError(f"CANDIDATE and --baseline are both {candidate!r}: give two variants")
    check_writable(args.out, "compare")
    torch.set_num_threads(args.threads)
    s = settings_of(args)
    meta = {"command": " ".join(["dotbias", *getattr(args, "argv", [])]), "threads": args.threads}
    with ResultSet(args.out, "compare", meta=meta) as rs:
        c = (compare_setup(setup, baseline, s, args.max_slowdown, _CLOCK["start"], say) if setup
             else compare(candidate, baseline, s, args.max_slowdown))
        png = compare_plot(c)
        rs.write_text("compare.md", f"# dotbias compare: {candidate} vs {baseline}\n\n"
                      + render(c, full=True) + "\n\n" + HOW_TO_READ + "\n")
        rs.write_json("compare.json", as_json(c))
        rs.write_bytes("compare.png", png)
    print(render(c, full=False))
    print(f"wrote {rs.path}/ (compare.md, compare.json, compare.png)", file=sys.stderr)
    return c.exit_status()
