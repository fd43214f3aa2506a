"""One meaning per quantity: every percentage option reads the same text the same way, every screen
words the same ratio the same way ("faster by" = 1 - ratio, "Nx" beyond 2x) and formats bytes the
same way; the first call outside the rounds is "compilation" only for a compiled variant."""
from __future__ import annotations

import json
import types

import pytest

from dotbias.cli import build_parser
from dotbias.compare.speed import Memory, Timed
from dotbias.compare.verdict import Comparison, operations_table, verdict_line
from dotbias.options import UsageError
from dotbias.pytest_bench.options import fail_slower, instructions_threshold
from dotbias.report.markdown import render_markdown, verdict, verdict_lines
from dotbias.report.saved_run import Change
from dotbias.report.summary import load_run, read_benchmark, summarise, summarise_group
from dotbias.timing.groups import DEFAULT_SIZES, Group
from dotbias.timing.stats import Ratio
from helpers.reports import time_op_info
from helpers.synthetic_timing import paired


def max_slowdown(text: str) -> float:
    """`dotbias compare --max-slowdown TEXT` as the command line reads it."""
    return build_parser().parse_args(["compare", "emb", f"--max-slowdown={text}"]).max_slowdown


def fail_slower_of(text: str) -> float:
    """`pytest bench --fail-slower TEXT` as the plugin reads it."""
    return fail_slower(types.SimpleNamespace(fail_slower=text, benchmark_compare=True))


def instructions_threshold_of(text: str) -> float:
    """`pytest bench --instructions-threshold TEXT` as the plugin reads it."""
    return instructions_threshold(types.SimpleNamespace(instructions_threshold=text))


READERS = {"--max-slowdown": (max_slowdown, UsageError), "--fail-slower": (fail_slower_of, pytest.UsageError),
           "--instructions-threshold": (instructions_threshold_of, pytest.UsageError)}


@pytest.mark.parametrize("option", list(READERS))
@pytest.mark.parametrize("text, value", [
    ("5%", 0.05), ("5", 0.05), (" 5 % ", 0.05), ("12.5%", 0.125), ("0.5%", 0.005), ("0", 0.0),
    ("0%", 0.0), ("1", 0.01), ("150%", 1.5), ("1000", 10.0),
    ("0.05", None), ("0.5", None), (".99", None), ("fast", None), ("-1%", None), ("nan", None),
    ("inf", None), ("1001%", None), ("", None)])
def test_every_percentage_option_reads_the_same_text_the_same_way(option, text, value):
    read, error = READERS[option]
    if value is not None:
        assert read(text) == pytest.approx(value)
        return
    with pytest.raises(error) as e:
        read(text)
    message = str(e.value)
    assert message.startswith(f"{option}: ") and repr(text) in message and "\n" not in message
    if text in ("0.05", "0.5", ".99"):
        assert "could be a fraction or a percentage" in message, message


def test_each_percentage_option_states_the_rule_in_its_help():
    import argparse

    from dotbias.pytest_bench import plugin
    compare = build_parser()._subparsers._group_actions[0].choices["compare"].format_help()
    parser = argparse.ArgumentParser()
    group = types.SimpleNamespace(addoption=parser.add_argument)
    plugins_parser = types.SimpleNamespace(getgroup=lambda *a: group, addoption=parser.add_argument)
    plugin.pytest_addoption(plugins_parser)
    bench = " ".join(parser.format_help().split())
    assert bench.count("5% and 5 both mean five percent") == 4, bench      # two gates, two targets
    assert "0.05, is refused" in " ".join(compare.split()), compare


RATIOS = [0.81, 0.473, 0.5, 0.95, 1.03, 1.2346, 1.9, 2.114, 3.0]


def _ratio(value: float) -> Ratio:
    return Ratio("mine", "cp", value, value * 0.98, value * 1.02, 6, 600, "t", se=0.005)


@pytest.mark.parametrize("value", RATIOS)
def test_report_md_and_dotbias_compare_word_the_same_ratio_the_same_way(value, tmp_path):
    r = _ratio(value)
    timed = Timed("forward", r, value * 1e-4, 1e-4, 0.01, "target", 6, 1.0)
    compare = verdict_line(Comparison("mine", "cp", "cp", [], [timed], []))
    report = verdict(r)
    assert f"({report})" in compare, (report, compare)
    if value < 1:
        faster = f"faster by {1 - value:.1%}" if value >= 0.5 else f"{1 / value:.2f}x faster"
        assert report == f"mine {faster}"
    else:
        faster = f"faster by {1 - 1 / value:.1%}" if value <= 2 else f"{value:.2f}x faster"
        assert report == f"cp {faster}"
    change = Change("g", "mine", "cp", value, 1.0, value, r.low, r.high)
    if value <= 2 and value >= 0.5:
        word = "faster" if value < 1 else "slower"
        assert change.words().startswith(f"{word} by {abs(1 - value):.1%} [")
    else:
        assert change.words().startswith(f"{max(value, 1 / value):.2f}x ")


def test_bag_against_cp_at_2_11_reads_as_cp_2_11x_faster():
    assert verdict(Ratio("bag", "cp", 2.114, 2.0, 2.2, 6, 600, "t", se=0.01)) == "cp 2.11x faster"


def test_bytes_read_the_same_in_the_report_and_in_dotbias_compare():
    group = Group("forward", "cpu", DEFAULT_SIZES[0], "float32")
    benches = []
    for v, n in (("cp", 3 * 2**20), ("emb", 5 * 2**20)):
        num, _ = paired(1.0, seed=len(benches), processes=3, rounds=20)
        benches.append({"name": v, "stats": {"median": 1e-4}, "extra_info": {
            "group": group.as_dict(), "variant": v, "baseline": "cp", "memory": {"peak_bytes": n},
            "timing": {"seconds": num, "iterations": [1] * 3}}})
    report = "\n".join(verdict_lines(summarise_group([read_benchmark(b, b["name"]) for b in benches])))
    memory = [Memory("forward", 5 * 2**20, 3 * 2**20)]
    compare = operations_table(Comparison("emb", "cp", "cp", [], [], memory))
    for shown in ("5.00 MiB", "3.00 MiB"):
        assert shown in report and shown in compare, (report, compare)


def _first_call_benches(compiled: bool | None) -> list[dict]:
    group = Group("forward", "cpu", DEFAULT_SIZES[0], "float32")
    out = []
    for v in ("cp", "mine"):
        num, _ = paired(1.0, seed=len(out), processes=2, rounds=20)
        info = {"group": group.as_dict(), "variant": v, "baseline": "cp",
                "timing": {"seconds": num, "iterations": [1] * 2, "first_call_s": [0.5, 0.4]}}
        if compiled is not None and v == "mine":
            info["compiled"] = compiled
        out.append({"name": v, "stats": {"median": 1e-4}, "extra_info": info})
    return out


@pytest.mark.parametrize("compiled, word", [(True, "compilation"), (False, "warm-up"), (None, "warm-up")])
def test_a_slow_first_call_is_compilation_only_for_a_compiled_variant(compiled, word):
    text = "\n".join(verdict_lines(summarise_group([read_benchmark(b, b["name"])
                                                     for b in _first_call_benches(compiled)])))
    assert f"mine first call 500 ms ({word}, outside the rounds)" in text, text
    other = "warm-up" if word == "compilation" else "compilation"
    assert f"mine first call 500 ms ({other}" not in text


@pytest.mark.parametrize("variant, compiled", [("emb", False), ("cp_compiled", True)])
def test_pytest_bench_records_which_variants_are_compiled(variant, compiled, registry):
    assert time_op_info(variant, registry)["compiled"] is compiled


def test_an_older_run_learns_compilation_from_its_variant_names(tmp_path):
    benches = _first_call_benches(None)
    for b in benches:
        b["extra_info"]["variant"] += "_compiled"
        b["extra_info"]["baseline"] = "cp_compiled"
        b["extra_info"]["format"] = 2
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": benches}))
    text = render_markdown(summarise([load_run(path)]))
    assert "mine_compiled first call 500 ms (compilation, outside the rounds)" in text, text
