"""The fuzz's strategies (tests/test_fuzz.py): every option of every `dotbias` subcommand with good,
odd and bad values, u.data and u.item text, saved benchmark JSON, result-set and tox folders,
variant specs. Each draws `(what, bad)`: `bad` is True only for a value the command must refuse
before any work starts; odd values (accepted or refused, either is fine) carry no expectation.
Placeholders {ml} {out} {tmp} {file} {bench} are filled per case; drawn text never holds braces.
Variant specs come from a curated pool: a zero-argument callable in a spec is called."""
from __future__ import annotations

import json
import math
import re
import shutil

from hypothesis import strategies as st

RUN_ML = ["run", "--data", "{ml}", "--out", "{out}", "--epochs", "1", "--factors", "2", "--bs", "8"]
NAMES = ["emb", "cp", "einsum", "packed", "fastai", "bag", "torch_emb"]
OPERATIONS = ["forward", "forward_backward", "step", "epoch_lean", "epoch_fastai"]
GOOD_SPECS = ["dotbias.models.zoo:FUSED", "helpers.mutants:bug_init_std"]
BAD_SPECS = ["", ":", "zz_nomodule:X", "dotbias.models.zoo:ZZ_NOPE", "dotbias.models.zoo", "a:",
             ":b", "os:getcwd", "math:pi", "json:loads", "collections:OrderedDict", "string:digits",
             "dotbias.models.registry:BUILT_IN", "zz..x:y", "dotbias.models.zoo:OPT_IN.x"]
ODD_TEXT = ["", " ", "-", "--", "nan", "inf", "-inf", "1e3", "0x10", "1_0", "\uff15", "\u0663", "+-1",
            "1 2", "9" * 5000, "\x00", "é", "5%", "%", "1.5", "-0", "+5", " 7 ", "07", "1e-9"]


def _text(max_size: int = 12):
    return st.text(max_size=max_size).map(lambda s: s.replace("{", "(").replace("}", ")"))


def _int_ok(text: str, lo: int, hi: int) -> bool:
    t = text.strip()
    return bool(re.fullmatch(r"[+-]?[0-9]+", t)) and len(t) < 30 and lo <= int(t) <= hi


def _py_number_ok(kind, text: str, lo: float, hi: float) -> bool:
    try:
        value = kind(text)
    except ValueError:
        return False
    return lo <= value <= hi


def ints(lo: int, hi: int):
    """(text, bad) for an integer option of dotbias/options.py: plain ASCII digits in range."""
    values = st.one_of(st.integers(lo, hi).map(str), st.integers().map(str),
                       st.sampled_from(ODD_TEXT), _text())
    return values.map(lambda t: (t, not _int_ok(t, lo, hi)))


def py_numbers(kind, lo: float, hi: float):
    """compare's own numbers (Python's int()/float(): '1_0' and other digits are theirs to take)."""
    values = st.one_of(st.integers(int(lo), int(hi)).map(str), st.floats().map(repr),
                       st.sampled_from(ODD_TEXT), _text())
    return values.map(lambda t: (t, not _py_number_ok(kind, t, lo, hi)))


def pool(good: list[str], bad: list[str], text_bad: bool = True, odd: list[str] = ()):
    """(value, bad): good ones, listed bad ones, odd ones (no expectation), 'zz'-prefixed text (bad)."""
    return st.one_of(*([st.sampled_from(good).map(lambda v: (v, False))] if good else []),
                     *([st.sampled_from(bad).map(lambda v: (v, True))] if bad else []),
                     *([st.sampled_from(list(odd)).map(lambda v: (v, None))] if odd else []),
                     *([_text().map(lambda t: ("zz" + t, True))] if text_bad else []))


def devices():
    values = st.one_of(st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:\u0663", "CPU", "cpu ", "cuda:",
                                        "cuda:-1", "mps", "cuda:1x", "", "cuda:99"]), _text())
    return values.map(lambda t: (t, None if re.fullmatch(r"cuda(:[0-9]+)?", t) else t != "cpu"))


def variant_lists():
    def bad(text: str) -> bool:
        names = [n.strip() for n in text.split(",")]
        return len(names) < 2 or len(set(names)) < len(names) or any(n not in NAMES for n in names)
    lists = st.lists(st.sampled_from(NAMES + ["", "zz", " emb", "cp "]), min_size=0, max_size=4)
    return st.one_of(lists.map(",".join), _text()).map(lambda t: (t, bad(t)))


def paths(good: list[str], bad: list[str], text_bad: bool = True):
    """Paths; drawn text is a relative path that does not exist: bad for an input, odd for --out."""
    odd = ["{tmp}/sp ace", "{tmp}/\u00fcn\u00efcode", "{tmp}/a/b/c"]
    return st.one_of(pool(good, bad, text_bad=text_bad, odd=odd),
                     *([] if text_bad else [_text().map(lambda t: ("zz" + t, None))]))


OUT_BAD = ["{file}", "{file}/x", "/sys/dotbias-fuzz", "/proc/dotbias-fuzz", "{tmp}/a\x00b"]
COMMON = {"--out": paths(["{out}", "{tmp}/new"], OUT_BAD + [""], False), "--no-progress": None}
TRAINS = {"--threads": ints(1, 256), "--variant": pool(GOOD_SPECS, BAD_SPECS, False), "--compile": None}
OPTIONS = {
    "run": {**COMMON, **TRAINS,
            "--data": pool(["{ml}", "ml", "./ml", "{tmp}/ml/"], ["{tmp}/nowhere", "{file}", ""]),
            "--epochs": ints(1, 1000), "--factors": ints(1, 4096), "--bs": ints(1, 10**12),
            "--seed": ints(0, 2**32 - 1), "--device": devices(), "--variants": variant_lists(),
            "--quick": None, "--allow-out-of-range": None},
    "ablations": {**COMMON, **TRAINS, "--out": paths(["{out}", ""], OUT_BAD, False), "--quick": None},
    "check": {**COMMON, **TRAINS, "--out": paths(["{out}", ""], OUT_BAD, False),
              "--baseline": pool(["cp", "emb"], ["cp_", "CP"])},
    "report": {**COMMON, "--storage": paths(["{tmp}"], ["{file}", "{tmp}/none"]).map(   # unread with RUN.json
                   lambda v: (v[0], None)),
               "--versions": paths([], ["{tmp}/notox", "{file}", "{tmp}"])},
    "compare": {**COMMON, "--baseline": pool(["cp", "emb"], ["zz_none", "dotbias.models.zoo:ZZ"]),
                "--max-slowdown": _text().map(lambda t: (t, None)), "--thorough": None,
                "--operations": st.lists(st.sampled_from(OPERATIONS + ["", "jump"]), max_size=3).map(
                    lambda ops: (",".join(ops), not ops or any(o not in OPERATIONS for o in ops))),
                "--time-budget": py_numbers(float, 0, 86400), "--examples": py_numbers(int, 1, 100_000),
                "--threads": py_numbers(int, 1, 256), "--variant": pool(GOOD_SPECS, BAD_SPECS, False),
                "--compile": None},
}
JUNK = pool([], ["--zz", "zz", "--quick=1", "--out"], text_bad=False, odd=["--", "-h"])


@st.composite
def command_lines(draw):
    """(argv, bad) for one subcommand with some of its options, each good, odd or bad."""
    sub = draw(st.sampled_from(sorted(OPTIONS)))
    table = OPTIONS[sub]
    chosen = draw(st.lists(st.sampled_from(sorted(table)), max_size=5, unique=True))   # once each: last wins
    argv, verdicts = [sub], []
    for opt in chosen:
        if table[opt] is None:
            argv.append(opt)
            continue
        value, bad = draw(table[opt])
        argv += [f"{opt}={value}"] if draw(st.booleans()) else [opt, value]
        verdicts.append(bad)
    verdicts += _positionals(draw, sub, argv)
    if draw(st.integers(0, 9)) == 0:
        junk, bad = draw(JUNK)
        at = draw(st.integers(1, len(argv)))
        argv.insert(at, junk)
        # An option that takes a value swallows the token after it, a positional or a value drawn
        # as bad or good: what the line means then was not drawn (`report --out={out} {bench}
        # --out {tmp}/none.json` writes to none.json/, a CI failure of 2026-12-07), so it is odd.
        swallows = table.get(junk) is not None and at + 1 < len(argv) and not argv[at + 1].startswith("-")
        verdicts.append(None if swallows else bad)
    if draw(st.integers(0, 14)) == 0:               # an option left without its value
        argv.append(draw(st.sampled_from([o for o in sorted(table) if table[o] is not None])))
        verdicts.append(True)
    return argv, _decide(verdicts)


def _positionals(draw, sub: str, argv: list[str]) -> list[bool | None]:
    if sub == "report":
        runs = draw(st.lists(pool(["{bench}"], ["{tmp}/none.json", "{tmp}", "{file}"]), max_size=2))
        argv += [r for r, _ in runs]
        no_input = not runs and not any(a.startswith("--versions") for a in argv)
        return [bad for _, bad in runs] + [True if no_input else False]
    if sub == "compare":
        cand, bad = draw(pool(["emb", "einsum", "dotbias.models.zoo:FUSED"], ["zz_none", ":"], odd=["cp"]))
        argv.insert(1, cand)
        return [bad, None if any(a.startswith("--baseline") for a in argv) else False]
    return []


def _decide(verdicts: list) -> bool:
    """Bad when some value is bad and none is odd (an odd one may stop argparse first: -h)."""
    return any(v is True for v in verdicts) and not any(v is None for v in verdicts)


# -- files -------------------------------------------------------------------------------------------
GOOD_ROW = st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(1, 5), st.integers(0, 2**31))
BAD_FIELD = {0: ["0", "-1", "1_0", "\uff11", "x", "", "1.0", "99999999999999999999", "1e3"],
             1: ["0", "-3", "21", "999", "x", "", "\u0663", "2_0"],
             2: ["x", "nan", "inf", "-1", "7", "4_5", "\uff15", "", "1e400", "0x5", "5.5.5"],
             3: ["x", "1.5", "", "1_0", "\xe9"]}
ODD_FIELD = {0: [" 3", "03", "+4"], 1: ["07 ", "+2"], 2: ["4.0", "4.", ".5", "2e0", " 3 "], 3: ["007", "-5"]}


@st.composite
def u_data(draw):
    """(bytes, bad): 30+ good rows, some odd fields, maybe a bad line (bad field, columns, separator)."""
    rows = [list(map(str, r)) for r in draw(st.lists(GOOD_ROW, min_size=30, max_size=60))]
    for _ in range(draw(st.integers(0, 3))):
        row, col = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 3))
        rows[row][col] = draw(st.sampled_from(ODD_FIELD[col]))
    lines = ["\t".join(r) for r in rows]
    bad = draw(st.booleans())
    if bad:
        at, kind = draw(st.integers(0, len(lines))), draw(st.integers(0, 3))
        good = "\t".join(map(str, draw(GOOD_ROW)))
        line = {0: good.replace("\t", ",", 1), 1: good + "\tx", 2: good.rsplit("\t", 1)[0],
                3: None}[kind]
        if line is None:
            col = draw(st.integers(0, 3))
            fields = good.split("\t")
            fields[col] = draw(st.sampled_from(BAD_FIELD[col]))
            line = "\t".join(fields)
        lines.insert(at, line)
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\t \t"])))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + draw(st.sampled_from(["", end]))).encode("utf-8"), bad


@st.composite
def u_item(draw):
    """(bytes, bad): ids 1..20 with titles (latin-1), odd extras, maybe one corruption."""
    titles = draw(st.lists(st.sampled_from(["Toy Story (1995)", "Mis\u00e9rables (1995)", "",
                                            "A|B", "x" * 200]), min_size=20, max_size=20))
    lines = [f"{i + 1}|{t}|01-Jan-1995||http://x|0|1" for i, t in enumerate(titles)]
    lines += [f"{i}|Extra {i}" for i in range(21, 21 + draw(st.integers(0, 3)))]
    kind = draw(st.sampled_from(["none", "none", "id", "pipes", "twice", "control", "utf8", "utf16",
                                 "bom", "nul", "empty"]))
    at = draw(st.integers(0, len(lines) - 1))
    if kind == "id":
        lines[at] = draw(st.sampled_from(["0", "-2", "x", "", "1_0", "\uff11"])) + "|T (1999)"
    elif kind == "pipes":
        lines[at] = "no pipes here"
    elif kind == "twice":
        lines.append(lines[at])
    elif kind == "control":
        lines[at] += draw(st.sampled_from(["\x01", "\x92", "\x96", "\x7f"]))
    text = "\n".join(lines) + "\n"
    encoding = {"utf8": "utf-8", "utf16": "utf-16", "bom": "utf-8-sig"}.get(kind, "latin-1")
    data = b"" if kind == "empty" else text.encode(encoding, errors="replace")
    data = data.replace(b"\n", b"\x00\n", 1) if kind == "nul" else data
    bad = kind != "none" and not (kind == "utf8" and text.isascii())
    return data, bad


# -- saved benchmark JSON ------------------------------------------------------------------------------
KEYS = ["benchmarks", "machine_info", "version", "datetime", "commit_info", "stats", "extra_info",
        "name", "group", "fullname", "median", "mean", "min", "max", "data", "rounds", "iqr", "variant",
        "timing", "seconds", "threads", "operation", "size", "dtype", "device", "iterations"]
VALUES = st.one_of(st.sampled_from([None, "", "x", -1, 0, 1e308, -1e-308, [], {}, True, [1, "a"],
                                    math.nan, math.inf, -math.inf, 2**70]), st.integers(), st.floats(),
                   _text(), st.lists(st.floats(), max_size=3))


def _edit(doc, key, value, delete: bool):
    """Every occurrence of `key` in the document deleted or set to `value`."""
    if isinstance(doc, dict):
        out = {k: _edit(v, key, value, delete) for k, v in doc.items() if not (delete and k == key)}
        if not delete and key in doc:
            out[key] = value
        return out
    if isinstance(doc, list):
        return [_edit(v, key, value, delete) for v in doc]
    return doc


@st.composite
def bench_json(draw):
    """A function (the valid saved run as data) -> the bytes of a damaged or odd one."""
    edits = draw(st.lists(st.tuples(st.sampled_from(KEYS), VALUES, st.booleans()), min_size=1, max_size=3))
    cut = draw(st.one_of(st.none(), st.integers(0, 2000)))
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["utf-16", "latin-1"]))

    def damage(doc) -> bytes:
        for key, value, delete in edits:
            doc = _edit(doc, key, value, delete)
        text = json.dumps(doc)
        data = text.encode(encoding, errors="replace")
        return data if cut is None else data[:cut]
    return damage


# -- folders ----------------------------------------------------------------------------------------
STATES = ["file", "dir", "dangling", "to_file", "lock_dir", "stale_tmp", "keep"]


def _set_state(out, name: str, kind: str) -> None:
    """Put the result set `name` in --out (a complete set to start with) into state `kind`."""
    target, lock = out / name, out / f".{name}.lock"
    if kind in ("file", "dir", "dangling", "to_file"):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.is_symlink() or target.exists():
            target.unlink()
    if kind == "file":
        target.write_text("x")
    elif kind == "dir":
        target.mkdir()
        (target / "f").write_text("y")
    elif kind == "dangling":
        target.symlink_to(".gone")
    elif kind == "to_file":
        (out / "plain").write_text("z")
        target.symlink_to("plain")
    elif kind == "lock_dir":
        lock.unlink(missing_ok=True)
        lock.mkdir()
    elif kind == "stale_tmp":
        (out / f".{name}.1-2-3.tmp").mkdir()
        (out / f".{name}.link-9").symlink_to("x")


COMMANDS = {"run": RUN_ML[:1] + RUN_ML[1:3] + RUN_ML[5:], "check": ["check"],
            "ablations": ["ablations", "--quick"], "report": ["report", "{bench}"]}


@st.composite
def tox_tree(draw):
    """A `report --versions` folder: env folders holding good, damaged or odd bench/equivalence files."""
    envs = draw(st.lists(st.sampled_from(["torch24", "torch213", "x", ".hidden", "torch2.6"]), max_size=3,
                         unique=True))
    files = [(env, draw(st.sampled_from(["bench.json", "equivalence.json", "other.txt"])),
              draw(st.sampled_from([b"", b"{", b"[]", b"{}", b"null", b'{"torch": 1}', b"\xff\xfe"])))
             for env in envs]

    def maker(root):
        for env, fname, data in files:
            (root / "tox" / env).mkdir(parents=True, exist_ok=True)
            (root / "tox" / env / fname).write_bytes(data)
    return maker


@st.composite
def folders(draw):
    """(argv, prepare(box)): a command whose --out holds its set in an odd state, or a tox folder."""
    if draw(st.integers(0, 3)) == 0:
        make = draw(tox_tree())
        return ["report", "--versions", "{tmp}/tox", "--out", "{out}"], lambda box: make(box.root)
    name = draw(st.sampled_from(sorted(COMMANDS)))
    states = draw(st.lists(st.sampled_from(STATES), min_size=1, max_size=2, unique=True))
    where = draw(st.sampled_from(["{out}", "{tmp}/linked"]))

    def prepare(box):
        if where == "{tmp}/linked":
            (box.root / "linked").symlink_to("out")
        for state in states:
            _set_state(box.root / "out", name, state)
    return [*COMMANDS[name], "--out", where], prepare


def variant_specs():
    """(specs, through the environment?, argv of a command that loads them)."""
    spec = st.one_of(st.sampled_from(GOOD_SPECS + BAD_SPECS + ["dotbias.models.zoo:EINSUM"]),
                     _text().map(lambda t: "zz" + t), _text().map(lambda t: "dotbias.models.zoo:zz" + t))
    argv = st.sampled_from([["check", "--out", "{out}"], RUN_ML, ["ablations", "--quick", "--out", "{out}"],
                            ["compare", "emb", "--out", "{out}"]])
    return st.tuples(st.lists(spec, min_size=1, max_size=3), st.booleans(), argv)


def pytest_options():
    """(option, value, --benchmark-compare given?) for the option parsing of pytest tests / bench."""
    fraction = st.one_of(st.sampled_from(["5%", "0.05", "5", "0", "0%", "-1%", "1", "100%", "1e9%"]),
                         st.sampled_from(ODD_TEXT), _text(), st.floats().map(repr))
    spec = st.one_of(st.sampled_from(GOOD_SPECS + BAD_SPECS), _text().map(lambda t: "zz" + t))
    name = st.one_of(st.sampled_from(NAMES + ["", "nope", "CP"]), _text().map(lambda t: "zz" + t))
    return st.one_of(st.tuples(st.just("--fail-slower"), fraction, st.booleans()),
                     st.tuples(st.just("--variant"), spec, st.just(False)),
                     st.tuples(st.just("--baseline"), name, st.just(False)))
