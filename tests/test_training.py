"""Training loops: return shape, reproducibility, that both actually learn, and training setups
(a variant with an optimizer implementation): named, run by both loops and timed where they train."""
from __future__ import annotations

import math

import pytest
import torch

from dotbias import BUILT_IN, Registry
from dotbias.data.fitting import evaluate, fit_fastai, fit_lean
from dotbias.data.ratings import collab_dls, synthetic_ratings, tensors_from_dls
from dotbias.models.optimizers import BOOK_IMPL, BUILT_IN_IMPLS, Training, parse_setups
from dotbias.models.training import lean_optimizer, mse_flat, one_cycle, train_step
from dotbias.timing.groups import Group, Size
from dotbias.timing.operations import make_op, setups_for
from dotbias.timing.workers import WorkSpec
from helpers.properties import trains


@pytest.fixture(scope="module")
def small():
    syn = synthetic_ratings(60, 80, 2000, seed=0)
    dls = collab_dls(syn.ratings, bs=32, seed=0)
    return dls, tensors_from_dls(dls)


CP = BUILT_IN["cp"]
IMPLS = BUILT_IN_IMPLS


@pytest.fixture(scope="module")
def book_lean(small):
    """The book's lean training of cp (2 epochs, seed 1), once for every implementation's test."""
    _, data = small
    return fit_lean(make(CP, data), data, epochs=2, bs=32, seed=1)


@pytest.fixture(scope="module")
def book_fastai(small):
    """The book's fastai training of cp (1 epoch, seed 3), once for every implementation's test."""
    dls, data = small
    return fit_fastai(make(CP, data), dls, epochs=1, seed=3)


def make(variant, data, seed=0):
    torch.manual_seed(seed)
    return variant.make(data.n_users, data.n_items, 8)


@pytest.mark.each_variant("name")
def test_fit_lean_learns_and_is_seeded(small, name, registry):
    _, data = small
    before = evaluate(make(registry.variants[name], data), data)
    a = fit_lean(make(registry.variants[name], data), data, epochs=2, bs=32, seed=1)
    b = fit_lean(make(registry.variants[name], data), data, epochs=2, bs=32, seed=1)
    assert [e.epoch for e in a.epochs] == [0, 1]
    assert [e.valid_loss for e in a.epochs] == [e.valid_loss for e in b.epochs]
    assert a.final_valid_loss < before
    assert all(e.seconds > 0 and math.isfinite(e.train_loss) for e in a.epochs)


@pytest.mark.each_variant("name")
def test_fit_fastai_learns_and_is_seeded(small, name, registry):
    dls, data = small
    before = evaluate(make(registry.variants[name], data), data)
    model = make(registry.variants[name], data)
    a = fit_fastai(model, dls, epochs=1, seed=3)        # two epochs: the schedule test below
    b = fit_fastai(make(registry.variants[name], data), dls, epochs=1, seed=3)
    assert len(a.epochs) == 1
    assert [e.valid_loss for e in a.epochs] == [e.valid_loss for e in b.epochs]
    assert a.final_valid_loss < before
    # fastai's valid loss is the mean over the valid set, the same as the lean loop's evaluate
    assert a.final_valid_loss == pytest.approx(evaluate(model, data), rel=1e-5)


def test_lean_follows_fit_one_cycles_schedule_step_for_step(small):
    """The lean loop's claim, made precise: the lr and beta1 of every one of its steps equal those
    fastai's ParamScheduler set during `fit_one_cycle` (read back from the recorder). A schedule
    built with torch's OneCycleLR (final lr lr/(25*1e5) instead of lr/1e5, peak one step late) or
    with the wrong pct_start fails here."""
    dls, data = small
    fa = fit_fastai(make(CP, data), dls, epochs=2, seed=0)
    lean = fit_lean(make(CP, data), data, epochs=2, bs=32, seed=0)
    assert len(fa.hypers) == len(lean.hypers) == 2 * (len(data.y_train) // 32)
    torch.testing.assert_close(torch.tensor(lean.hypers, dtype=torch.float64),
                               torch.tensor(fa.hypers, dtype=torch.float64), rtol=0, atol=0)
    lrs = [h[0] for h in lean.hypers]
    assert lrs.index(max(lrs)) == round(0.25 * len(lrs)) and max(lrs) == pytest.approx(5e-3, rel=1e-3)
    assert lrs[0] == pytest.approx(5e-3 / 25) and lrs[-1] < 5e-3 / 1e3


def test_lean_optimizer_is_fastais_adam(small):
    """Same arithmetic: fit_lean's optimizer (`lean_optimizer`) and fastai's Adam as fit_one_cycle
    builds it (wd 0.1), fed the same gradients with the same changing lr and beta1, stay equal to
    float32 rounding. Coupled (L2) weight decay, torch's default eps 1e-8 or beta2 0.999 fail this."""
    from fastai.optimizer import Adam

    gen = torch.Generator().manual_seed(0)
    p_fa = torch.randn(50, 8, generator=gen, requires_grad=True)
    p_torch = p_fa.detach().clone().requires_grad_(True)
    fa = Adam([p_fa], lr=1e-3, wd=0.1)          # fastai's defaults: eps 1e-5, sqr_mom 0.99, true wd
    opt = lean_optimizer([p_torch], 1e-3, 0.1)
    for lr, mom in one_cycle(5e-2, 20):
        grad = torch.randn(50, 8, generator=gen)
        fa.set_hyper("lr", lr)
        fa.set_hyper("mom", mom)
        opt.param_groups[0]["lr"], opt.param_groups[0]["betas"] = lr, (mom, 0.99)
        p_fa.grad, p_torch.grad = grad.clone(), grad.clone()
        fa.step()
        opt.step()
    torch.testing.assert_close(p_torch.detach(), p_fa.detach(), rtol=1e-5, atol=1e-7)


def test_fit_lean_rejects_a_batch_larger_than_the_data(small):
    _, data = small
    with pytest.raises(ValueError, match="bs=100000 is larger than the"):
        fit_lean(make(CP, data), data, epochs=1, bs=100_000)


# --- training setups: a variant with one optimizer implementation (models/optimizers.py) --------

def test_a_training_setup_is_named_variant_plus_implementation():
    parse = lambda spec: Training.parse(spec, IMPLS)        # noqa: E731
    setup = parse(" cp+fused ")
    assert (setup.variant, setup.impl, setup.name) == ("cp", "fused", "cp+fused")
    assert parse("cp") == Training("cp", BOOK_IMPL) and parse("cp").name == "cp"
    assert parse(f"cp+{BOOK_IMPL}").name == "cp"       # the book's setup has one name
    assert [s.name for s in parse_setups("emb+fastai, cp+foreach,", IMPLS)] == ["emb+fastai", "cp+foreach"]
    with pytest.raises(ValueError, match=r"unknown optimizer implementation 'fusd'; expected one of torch"):
        parse("cp+fusd")
    with pytest.raises(ValueError, match=r"training setup 'cp\+': expected VARIANT, VARIANT\+IMPL or "
                                         r"VARIANT\+IMPL\+LOADER"):
        parse("cp+")


@pytest.mark.parametrize("impl", [pytest.param(i, marks=pytest.mark.slow) if IMPLS[i].compiles
                                  else i for i in IMPLS])
def test_fit_lean_with_every_implementation_is_the_books_training(small, impl, book_lean):
    """Same seed, same batches, same schedule: the losses of every implementation agree with the
    book's optimizer to float32 rounding (a wrong one, e.g. coupled decay, moves them by far more)."""
    _, data = small
    book = book_lean
    other = fit_lean(make(CP, data), data, epochs=2, bs=32, seed=1, impl=IMPLS[impl])
    assert [e.valid_loss for e in other.epochs] == pytest.approx([e.valid_loss for e in book.epochs],
                                                                 rel=1e-5)


@pytest.mark.parametrize("impl", [i for i in IMPLS if IMPLS[i].in_fastai])
def test_fit_fastai_runs_each_implementation_as_its_opt_func(small, impl, book_fastai):
    dls, data = small
    book = book_fastai
    other = fit_fastai(make(CP, data), dls, epochs=1, seed=3, impl=IMPLS[impl])
    assert other.hypers == book.hypers          # the scheduler reached the optimizer the same way
    assert other.final_valid_loss == pytest.approx(book.final_valid_loss, rel=1e-5)


def test_fit_fastai_refuses_an_implementation_its_learner_cannot_run(small):
    dls, data = small
    no = [i for i in IMPLS if not IMPLS[i].in_fastai]
    assert no == ["compiled", "compiled_step", "row_step"]
    for impl in no:
        with pytest.raises(ValueError, match=f"'{impl}' does not run in fastai's Learner"):
            fit_fastai(make(CP, data), dls, epochs=1, impl=IMPLS[impl])


def _aten_ops(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


def test_the_step_operation_steps_with_the_setups_implementation(registry):
    """`step` of cp+fused runs torch's fused kernel, the book's setup the for-loop (no fused, no
    foreach kernel): a setup that silently fell back to the book's optimizer fails here."""
    group = Group("step", "cpu", Size("tiny", 20, 30, 4, 8), "float32")
    fused, book, foreach = (make_op(group, name, registry) for name in ("cp+fused", "cp", "cp+foreach"))
    for fn in (fused, book, foreach):
        fn()
    assert "aten::_fused_adamw_" in _aten_ops(fused)
    assert not any("fused_adamw" in op or "_foreach" in op for op in _aten_ops(book))
    assert any(op.startswith("aten::_foreach") for op in _aten_ops(foreach))


def test_setups_are_timed_only_where_an_optimizer_runs():
    tiny, reg = Size("tiny", 20, 30, 4, 8), Registry()
    setups = parse_setups("cp+fused,cp+compiled", reg.impls)
    assert setups_for(Group("forward", "cpu", tiny, "float32"), setups, reg) == ()
    assert setups_for(Group("step", "cpu", tiny, "float32"), setups, reg) == ("cp+fused", "cp+compiled")
    assert setups_for(Group("epoch_fastai", "cpu", tiny, "float32"), setups, reg) == ("cp+fused",)
    with pytest.raises(ValueError, match="forward_backward runs no optimizer; setups are timed in step"):
        make_op(Group("forward_backward", "cpu", tiny, "float32"), "cp+fused", reg)
    for name in ("cp", "cp+torch"):         # the book's setup is the variant, in every group
        make_op(Group("forward", "cpu", tiny, "float32"), name, reg)()


def test_a_setup_whose_implementation_cannot_train_the_layout_is_left_out_saying_why(baseline):
    """row_step takes the four canonical tensors on the CPU in float32/float64: a two-table
    layout, float16 and a CUDA group are refused in one line, and `setups_for` leaves them out
    (caught: a bench worker crashing on them, or a setup silently timed with another layout)."""
    tiny = Size("tiny", 20, 30, 4, 8)
    reg = Registry()
    setups = parse_setups(f"packed+row_step,{baseline.name}+row_step", reg.impls)
    assert setups_for(Group("step", "cpu", tiny, "float32"), setups, reg) == (
        (f"{baseline.name}+row_step",) if trains("row_step", baseline, reg) else ())
    assert setups_for(Group("step", "cpu", tiny, "float16"), setups, reg) == ()
    assert setups_for(Group("step", "cuda", tiny, "float32"), setups, reg) == ()
    with pytest.raises(ValueError, match=r"'packed\+row_step': row_step trains a model whose "
                                         r"parameters are the four canonical tensors"):
        make_op(Group("step", "cpu", tiny, "float32"), "packed+row_step", reg)


def test_a_worker_process_times_the_setups_beside_the_variants(tiny_workers):
    """conftest.py's tiny real worker run (forward and step, cp+fused): the setup only in step."""
    spec, result, _ = tiny_workers
    forward, step = spec.groups
    assert spec.setups == ("cp+fused",) and WorkSpec.from_json(spec.to_json()) == spec
    assert set(result[forward.label].seconds) == set(spec.variants) | {"cp_copy"}
    assert set(result[step.label].seconds) == set(spec.variants) | {"cp_copy", "cp+fused"}


def test_dotbias_compare_takes_a_setup_and_holds_it_to_the_training_trajectories(registry):
    """`dotbias compare cp+IMPL`: a correct implementation passes the one-cycle training row, a
    wrong one (coupled weight decay) fails it naming the setup; a setup is timed only where an
    optimizer runs, and a pkg.module:attr spec is still a variant."""
    from dotbias.compare.checks import Examples
    from dotbias.compare.training import is_setup, parse_candidate, setup_operations, setup_rows
    from helpers.mutants import OPTIMIZER_BUGS
    assert is_setup("cp+fused") and not is_setup("cp") and not is_setup("pkg.mod:A+B")
    fused, whole = parse_candidate("cp+fused", registry), parse_candidate("cp+compiled_step", registry)
    assert setup_operations(["forward", "step", "epoch_fastai"], fused, registry) == ["step", "epoch_fastai"]
    assert setup_operations(["forward", "step", "epoch_fastai"], whole, registry) == ["step"]
    with pytest.raises(ValueError, match="'cp\\+fused' is timed in step, epoch_lean, epoch_fastai;"):
        setup_operations(["forward"], fused, registry)
    with pytest.raises(ValueError, match="'cp\\+compiled_step' is timed in step, epoch_lean;"):
        setup_operations(["forward"], whole, registry)
    with pytest.raises(ValueError, match="'packed\\+row_step': row_step trains a model whose"):
        setup_operations(["step"], parse_candidate("packed+row_step", registry), registry)
    with pytest.raises(ValueError, match="CANDIDATE 'nope\\+fused': unknown variant 'nope'"):
        parse_candidate("nope+fused", registry)
    [ok] = setup_rows(parse_candidate("cp+fused", registry), "cp", Examples(1, 2, 1), registry)
    assert ok.passed and ok.cases >= 2 and 0 < ok.worst < 1, ok
    coupled = next(b for b in OPTIMIZER_BUGS if b.name == "bug_coupled_wd")
    buggy = registry.with_impls(coupled)
    [bad] = setup_rows(parse_candidate("cp+bug_coupled_wd", buggy), "cp", Examples(1, 2, 1), buggy)
    assert not bad.passed and bad.failure.startswith("cp+bug_coupled_wd vs cp ("), bad.failure


class RecordingWholeStep:
    """A stepper that runs the whole step itself, recording what `train_step` hands it."""
    whole_step = True

    def __init__(self):
        self.calls = []

    def train(self, model, x, y, loss_fn):
        self.calls.append((model, x, y, loss_fn))
        return torch.tensor(1.5, requires_grad=True) * 1


def test_train_step_hands_a_whole_step_the_model_and_batch_and_runs_no_backward_itself():
    model = CP.make(5, 6, 3)
    x, y = torch.tensor([[0, 1], [4, 5]]), torch.tensor([1.0, 2.0])
    opt = RecordingWholeStep()
    loss = train_step(model, opt, x, y)
    assert [c[0] for c in opt.calls] == [model] and opt.calls[0][3] is mse_flat
    assert loss.item() == 1.5 and not loss.requires_grad
    assert all(p.grad is None for p in model.parameters())      # no backward of its own


def test_a_whole_step_refuses_a_model_it_was_not_made_for():
    from dotbias.models.whole_step import WholeStep
    a, b = CP.make(5, 6, 3), CP.make(5, 6, 3)
    step = WholeStep(list(a.parameters()), 1e-3, 0.1)
    with pytest.raises(ValueError, match="not the ones it was made for"):
        step.train(b, torch.tensor([[0, 1]]), torch.tensor([1.0]), mse_flat)


@pytest.mark.slow
@pytest.mark.each_variant("name")
def test_the_compiled_whole_step_trains_every_variant_the_same(name, baseline, registry):
    """compiled_step holds any variant's forward: 3 one-cycle steps within the contract."""
    from dotbias.equivalence.strategies import Case
    from dotbias.equivalence.trajectories import check_training
    case = Case(40, 50, 8, 32, "duplicates", torch.float32, "cpu", 7)
    steps = check_training(Training(name, "compiled_step"), case.params(),
                           [case.batch(s) for s in range(3)], case.y_range, baseline=baseline,
                           registry=registry)
    bad = [c.message for s in steps for c in s if not c.passed]
    assert not bad, bad[0]
