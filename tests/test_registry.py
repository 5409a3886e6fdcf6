"""One registry per kind: every list of names (the CLI's choices, resume, the
estimator's checks, checkpoints) is derived from it."""

import numpy as np
import pytest

import bpnet
from bpnet.cli.parsing import build_parser
from bpnet.cli.train import train_main
from bpnet.nn.activations import ACTIVATIONS
from bpnet.nn.initializers import INITIALIZERS
from bpnet.nn.layers import LAYERS
from bpnet.nn.losses import LOSSES
from bpnet.nn.registry import Registry
from bpnet.train.checkpoint import optimizer_config, optimizer_from_config, restore
from bpnet.train.fullbatch import SOLVERS
from bpnet.train.optimizers import OPTIMIZERS, SCHEDULES


# --- the Registry itself ------------------------------------------------------
def _registry():
    reg = Registry("widget")

    @reg.register("plain", aliases=("simple",), help="a plain widget")
    class Plain:
        def __init__(self, size=1, fancy=False):
            self.size, self.fancy = size, fancy

    @reg.register("other", variants={"fancy": {"fancy": True}})
    class Other(Plain):
        """Another widget.

        More text.
        """

    return reg, Plain, Other


def test_names_list_variants_after_their_class_and_aliases_last():
    reg, Plain, Other = _registry()
    assert reg.names() == ["plain", "other", "fancy"]
    assert reg.names(aliases=True) == ["plain", "other", "fancy", "simple"]
    assert reg.help("plain") == "a plain widget"
    assert reg.help("other") == "Another widget"  # docstring's first line
    assert reg.help("fancy") == "Another widget (fancy=True)"


def test_every_spelling_resolves_to_the_class():
    reg, Plain, Other = _registry()
    assert reg.get("simple") is Plain and reg.get("fancy") is Other
    assert reg.get("Other") is Other  # class names, as old files wrote them
    assert reg.name_of(Other) == "other" and reg.name_of(Plain(2)) == "plain"
    assert reg.name_of(int) is None


def test_a_variant_presets_arguments_that_explicit_ones_override():
    reg, _, Other = _registry()
    assert reg.create("fancy", size=3).fancy is True
    assert reg.create("fancy", fancy=False).fancy is False
    assert reg.create("other").fancy is False
    assert reg.preset("fancy") == {"fancy": True} and reg.preset("other") == {}
    assert reg.name_for({"type": "other", "fancy": True}) == "fancy"
    assert reg.name_for({"type": "Other", "fancy": False}) == "other"


def test_unknown_names_and_bad_configs_are_clear_errors():
    reg, Plain, _ = _registry()
    with pytest.raises(ValueError, match=r"widget: expected one of \['plain', "):
        reg.get("gadget")
    with pytest.raises(ValueError, match="widget: expected one of .*got None"):
        reg.create(None)
    with pytest.raises(ValueError, match="expected a dict with a 'type' key"):
        reg.from_config({"size": 2})
    with pytest.raises(ValueError, match="does not fit Plain"):
        reg.from_config({"type": "plain", "colour": "red"})
    with pytest.raises(ValueError, match="'simple' is registered twice"):
        reg.register("simple")(Plain)


# --- the CLI's choices are the registries' names ------------------------------
def _choices(dest):
    action = {a.dest: a for a in build_parser()._actions}[dest]
    return list(action.choices)


def test_cli_choices_equal_the_registries_names():
    assert _choices("optimizer") == [*OPTIMIZERS.names(), *SOLVERS.names()]
    assert _choices("activation") == ACTIVATIONS.names()
    assert _choices("loss") == LOSSES.names()
    assert _choices("init") == INITIALIZERS.names()
    assert _choices("schedule") == ["none", *SCHEDULES.names()]
    # the kinds the flags and messages rely on are there
    assert {"sgd", "momentum", "nesterov", "adam"} <= set(OPTIMIZERS.names())
    assert SOLVERS.names() == ["cg", "tnc", "lbfgs"]


def test_the_estimator_accepts_every_registered_activation_and_solver():
    from bpnet.sklearn import params

    assert set(params.STOCHASTIC_SOLVERS) == set(OPTIMIZERS.names())
    assert set(params.FULL_BATCH_SOLVERS) == set(SOLVERS.names())
    for name in ACTIVATIONS.names(aliases=True):
        assert params.HIDDEN_ACTIVATIONS[name] is ACTIVATIONS.get(name)
    assert params.HIDDEN_ACTIVATIONS["identity"] is None


def test_the_estimator_builds_every_registered_optimizer():
    from bpnet.sklearn.params import make_optimizer

    for name in OPTIMIZERS.names():
        clf = bpnet.MLPClassifier(
            solver=name, learning_rate_init=0.02, epsilon=1e-6, momentum=0.7
        )
        opt = make_optimizer(clf.set_params(nesterovs_momentum=False))
        assert opt.base_lr == 0.02
        if name != "sgd":  # scikit-learn's sgd is SGD with momentum
            assert OPTIMIZERS.name_for(opt.get_config()) == name
        for arg, value in (("eps", 1e-6), ("momentum", 0.7)):
            if arg in opt.get_config():
                assert getattr(opt, arg) == value
    # the estimator's setting applies where the solver's name does not fix it
    nesterov = bpnet.MLPClassifier(solver="nesterov", nesterovs_momentum=False)
    assert make_optimizer(nesterov).nesterov is True
    assert make_optimizer(bpnet.MLPClassifier(solver="momentum")).nesterov is True


# --- every kind describes itself and is rebuilt from that ---------------------
@pytest.mark.parametrize(
    "registry", [LOSSES, INITIALIZERS, SOLVERS, SCHEDULES, OPTIMIZERS, LAYERS]
)
def test_every_registered_class_round_trips_through_its_config(registry):
    samples = {
        "CosineDecay": {"epochs": 5},
        "Dense": {"n_in": 3, "n_out": 2},
        "Conv2D": {"filters": 2, "kernel_size": (3, 2), "stride": 2, "padding": 1},
        "MaxPool2D": {"pool_size": 2},
        "AvgPool2D": {"pool_size": (3, 2), "stride": 1},
        "Reshape": {"shape": (1, 2, 3)},
    }
    for name in registry.names():
        cls = registry.get(name)
        obj = registry.create(name, **samples.get(cls.__name__, {}))
        config = obj.get_config()
        assert registry.canonical(config["type"]) == registry.canonical(name)
        assert registry.from_config(config).get_config() == config


def test_losses_and_initializers_keep_their_other_spellings():
    assert type(bpnet.nn.losses.get_loss("SoftmaxCrossEntropy")).__name__ == (
        "SoftmaxCrossEntropy"
    )
    assert LOSSES.canonical("mean_squared_error") == "mse"
    assert INITIALIZERS.canonical("xavier") == "glorot"


def test_checkpoints_written_with_class_names_still_load():
    old = {
        "type": "Momentum",
        "lr": 0.05,
        "schedule": {"type": "StepDecay", "step_size": 2, "gamma": 0.3},
        "momentum": 0.8,
        "nesterov": True,
    }
    opt = optimizer_from_config(old)
    assert type(opt).__name__ == "Momentum" and opt.nesterov and opt.momentum == 0.8
    assert opt.schedule(1.0, 2) == pytest.approx(0.3)
    assert optimizer_config(opt)["type"] == "momentum"


# --- resume works for every registered optimizer ------------------------------
def _blobs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(90, 5)).astype(np.float32), rng.integers(0, 3, 90)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_fit_resumes_every_registered_optimizer_exactly(tmp_path, backend, name):
    """Stopped after 2 epochs and resumed from the checkpoint: the same losses
    and weights as 4 epochs straight, the optimizer's own state included."""
    X, y = _blobs()

    def run(epochs, **kw):
        net = bpnet.Sequential(
            [bpnet.Dense(5, 8), bpnet.Tanh(), bpnet.Dense(8, 3)], device=backend, seed=1
        )
        opt = OPTIMIZERS.create(name, lr=0.01, schedule=bpnet.StepDecay(1, 0.9))
        return net, net.fit(X, y, epochs=epochs, optimizer=opt, batch_size=16, **kw)

    full, h_full = run(4)
    assert h_full.loss[-1] < h_full.loss[0]
    run(2, checkpoint=tmp_path / "ck.npz")
    net, h = bpnet.resume(tmp_path / "ck.npz", X, y, device=backend, epochs=4)
    assert h.loss == h_full.loss
    for a, b in zip(full.parameters(), net.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_a_checkpoint_keeps_every_optimizers_settings_and_state(tmp_path, name):
    X, y = _blobs()
    net = bpnet.Sequential([bpnet.Dense(5, 3)], dtype="float64", seed=2)
    opt = OPTIMIZERS.create(name, lr=0.02, schedule=bpnet.CosineDecay(4, 0.001))
    net.fit(X, y, epochs=2, optimizer=opt, batch_size=16, checkpoint=tmp_path / "c")
    config = bpnet.io.load_checkpoint(tmp_path / "c.npz")[2]["optimizer"]
    assert config == opt.get_config() and OPTIMIZERS.name_for(config) == name
    again = optimizer_from_config(config)
    assert type(again) is type(opt) and again.get_config() == config
    fresh = bpnet.Sequential([bpnet.Dense(5, 3)], dtype="float64")
    restore(tmp_path / "c.npz", fresh, again)
    assert again.t == opt.t == 12 and again.lr == opt.lr
    assert again.state.keys() == opt.state.keys()
    for key in opt.state:
        for a, b in zip(again.state[key], opt.state[key]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_bpnet_train_resumes_every_registered_optimizer(tmp_path, name):
    args = ["--optimizer", name, "--hidden", "8", "--batch-size", "128", "--quiet"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert train_main([*args, "--epochs", "2", "--out", str(straight)]) == 0
    assert train_main([*args, "--epochs", "1", "--out", str(broken)]) == 0
    ck = broken / "checkpoint.npz"
    assert train_main(["--resume", str(ck), "--epochs", "2", "--quiet"]) == 0
    assert bpnet.io.load_checkpoint(ck)[2]["optimizer"]["type"] == (
        OPTIMIZERS.canonical(name)
    )
    a, b = bpnet.load(straight / "model.npz"), bpnet.load(broken / "model.npz")
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_bpnet_exports_every_registered_optimizer():
    import bpnet.train.optimizers as package

    for name in OPTIMIZERS.names():
        cls = OPTIMIZERS.get(name)
        assert getattr(bpnet, cls.__name__) is cls and cls.__name__ in bpnet.__all__
        assert getattr(package, cls.__name__) is cls and cls.__name__ in package.__all__
        assert (
            cls.__module__ == f"bpnet.train.optimizers.{cls.__module__.split('.')[-1]}"
        )
