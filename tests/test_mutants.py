"""Mutation self-test: the suite's properties, run against each plausible bug of
tests/helpers/mutants.py, must fail, naming the bug's pair; against each correct-but-different variant
they must pass; the same for training setups: each optimizer bug (a hand-written AdamW with one
bug) must fail the one-cycle training property naming its setup, each correct implementation pass
it. The score is printed in pytest's terminal summary."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import Phase, given, settings

from dotbias.models.optimizers import BOOK_IMPL, BUILT_IN_IMPLS
from helpers.mutants import BUGS, CORRECT, CORRECT_OPTIMIZERS, HAND_ADAMW, OPTIMIZER_BUGS, setup_of
from helpers.properties import (
    equivalence_property,
    init_property,
    training_property,
    trains,
    trajectory_property,
)
from helpers.strategies import (
    cases,
    duplicate_cases,
    half_dtypes,
    init_sizes,
    optimizers,
    seeds,
    small_cases,
    step_counts,
)

# Bounded runs: no example database (a failure must not be replayed into the real properties'
# runs), no shrinking (the first failure is enough), at most EXAMPLES each, and the same examples
# every run (derandomize): the score is a fixed calibration of the suite, not a fresh draw. EXAMPLES
# is the default profile's count, so the score calibrates what `pytest tests` runs.
EXAMPLES = settings.get_profile("ci").max_examples
BOUNDED = settings(database=None, max_examples=EXAMPLES, phases=[Phase.explicit, Phase.generate],
                   report_multiple_bugs=False, derandomize=True)


def suite_properties(variants, base, registry):
    """The suite's properties restricted to `variants` (against `base`; `registry`: the run's, for
    the init a variant inherits), cheapest first."""
    return [
        ("init", given(init_sizes, seeds)(lambda s, seed: init_property(s, seed, variants,
                                                                         registry=registry))),
        ("equivalence", given(cases())(lambda c: equivalence_property(c, variants, baseline=base))),
        ("half precision", given(cases(half_dtypes))(
            lambda c: equivalence_property(c, variants, baseline=base))),
        ("duplicates", given(duplicate_cases)(
            lambda c: equivalence_property(c, variants, baseline=base))),
        ("trajectories", given(small_cases, optimizers, step_counts)(
            lambda c, o, k: trajectory_property(c, o, k, variants, baseline=base))),
    ]


def first_failure(variants, base, registry) -> tuple[str, BaseException] | None:
    """(property, error) of the first property that fails on any of `variants`, or None."""
    for name, prop in suite_properties(variants, base, registry):
        try:
            BOUNDED(prop)()
        except (AssertionError, BaseExceptionGroup) as e:       # hypothesis may group failures
            return name, e
        except Exception as e:          # the property crashed on the bug: caught all the same
            return name, e
    return None


def rejected(variants, failure) -> dict[str, object]:
    """name -> `failure([v])` of each of `variants` that fails alone. One run over all of them
    shares each example's float64 reference and baseline run; only when it fails is each run
    alone, so every verdict is the one a run of that variant alone gives."""
    if failure(variants) is None:
        return {}
    return {v.name: found for v in variants if (found := failure([v])) is not None}


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_the_suite_catches_each_catalogued_bug(bug, record_property, baseline, registry):
    found = first_failure([bug], baseline, registry)
    record_property("mutation", ("caught", found is not None))      # conftest.py's summary line
    assert found is not None, f"{bug.name} ({bug.description}) passed every property"
    name, error = found
    text = str(error) if not isinstance(error, BaseExceptionGroup) else str(error.exceptions[0])
    if name != "init":
        assert f"{bug.name} vs {baseline.name} (" in text, text[:500]
    else:
        assert bug.name in text, text[:500]


def test_the_suite_accepts_each_correct_but_different_variant(record_property, baseline, registry):
    """Every correct variant (`CORRECT`) passes every property; each counts in the score."""
    out = rejected(CORRECT, lambda vs: first_failure(vs, baseline, registry))
    for variant in CORRECT:
        record_property("mutation", ("accepted", variant.name not in out))
    assert not out, "rejected: " + "; ".join(f"{n} by the {p} property: {e}" for n, (p, e) in out.items())


def training_failure(setups, base, registry) -> BaseException | None:
    """The error of the training property on `setups` (the baseline's variant trained by
    implementations of `registry`: the run's, or one made from it with the implementation under
    test, so a bug never outlives its test)."""
    prop = given(small_cases, step_counts)(lambda c, k: training_property(c, k, setups, baseline=base,
                                                                          registry=registry))
    try:
        BOUNDED(prop)()
    except (AssertionError, BaseExceptionGroup) as e:
        return e
    except Exception as e:          # the property crashed on the bug: caught all the same
        return e
    return None


@pytest.mark.parametrize("impl", OPTIMIZER_BUGS, ids=[b.name for b in OPTIMIZER_BUGS])
def test_the_training_property_catches_each_optimizer_bug(impl, record_property, baseline, registry):
    setup = setup_of(impl, baseline.name)
    error = training_failure([setup], baseline, registry.with_impls(impl))
    record_property("mutation", ("caught", error is not None))      # conftest.py's summary line
    assert error is not None, f"{impl.name} ({impl.description}) passed the training property"
    text = str(error) if not isinstance(error, BaseExceptionGroup) else str(error.exceptions[0])
    assert f"{setup.name} vs {baseline.name} (" in text, text[:500]


EAGER_OPTIMIZERS = [n for n in [*CORRECT_OPTIMIZERS, HAND_ADAMW.name]
                    if not (n in BUILT_IN_IMPLS and BUILT_IN_IMPLS[n].compiles)]
COMPILING_OPTIMIZERS = [n for n in CORRECT_OPTIMIZERS if n not in EAGER_OPTIMIZERS]


def test_the_training_property_accepts_each_correct_eager_implementation(record_property, baseline,
                                                                         registry):
    """Every correct implementation that compiles nothing passes the training property; each
    counts in the score (the compiling ones: the slow test below)."""
    run = registry.with_impls(HAND_ADAMW)
    setups = [setup_of(n, baseline.name) for n in EAGER_OPTIMIZERS if trains(n, baseline, run)]
    out = rejected(setups, lambda some: training_failure(some, baseline, run))
    for setup in setups:
        record_property("mutation", ("accepted", setup.name not in out))
    assert not out, "rejected: " + "; ".join(f"{n}: {e}" for n, e in out.items())


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPILING_OPTIMIZERS)
def test_the_training_property_accepts_each_correct_compiling_implementation(name, record_property,
                                                                             baseline, registry):
    error = training_failure([setup_of(name, baseline.name)], baseline, registry)
    record_property("mutation", ("accepted", error is None))
    assert error is None, f"{name} rejected by the training property: {error}"


def test_the_catalogue_covers_ten_kinds_and_three_correct_variants():
    assert len(BUGS) >= 10 and len({b.build for b in BUGS}) == len(BUGS)
    assert len(CORRECT) >= 3
    # every built-in implementation but the book's (and its twin, forloop) is in the score
    assert len(OPTIMIZER_BUGS) == 4
    assert set(CORRECT_OPTIMIZERS) == set(BUILT_IN_IMPLS) - {BOOK_IMPL, "forloop"}


def test_a_joint_run_that_fails_is_put_on_the_variants_that_fail_alone():
    """`rejected`: a failure of the joint run names only the variants that fail alone (caught: a
    joint failure counted against every variant, or against none)."""
    calls = []

    def failure(variants):
        calls.append([v.name for v in variants])
        return "boom" if any(v.name == "b" for v in variants) else None
    a, b, c = (SimpleNamespace(name=n) for n in "abc")
    assert rejected([a, b, c], failure) == {"b": "boom"}
    assert calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    calls.clear()
    assert rejected([a, c], failure) == {} and calls == [["a", "c"]]
