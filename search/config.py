"""Search configuration: dataclasses mirrored by `configs/default.toml` (read with tomllib).

A run directory keeps a snapshot of the resolved configuration (`config.toml`), so that
`optsearch resume` continues with exactly the settings the run started with.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field

from optsearch.evaluator.rungs import RUNG_KINDS
from optsearch.primitives.pool import POOLS
from optsearch.search.warm_start import parse_factors

# Target mode's warm start: the target's step size is unknown, so the lr sweep spans both
# sides of the initial program's (1/32 .. 32), not the proxy suites' upper side only.
TARGET_INIT_LR_FACTORS = "0.03125,0.0625,0.125,0.25,0.5,1,2,4,8,16,32"


class ConfigError(ValueError):
    """A configuration the user must fix (the CLI prints it as one line)."""


@dataclass
class SearchConfig:
    # Paper: P=1000, T=2 over ~10^5 evaluations. A 15-minute, 2-core CPU budget buys ~500-1000
    # evaluations, so the population is smaller and selection stronger (T/P = 1/8 vs 1/500):
    # the population still turns over ~10 times and a good child is picked up quickly.
    population_size: int = 64
    tournament_size: int = 8
    budget: int = 800  # backend evaluations (cache hits are free and not counted)
    seed: int = 0
    init: str = "adamw"  # a program file, a reference name, or "random"
    random_init_statements: int = 6  # statements per random initial program
    # Warm start at these multiples of the initial program's step size (search.warm_start);
    # the population starts as P copies of the best. "1" is the paper's warm start; the
    # default spans AdamW's lr constant 5e-4 .. 3.2e-2 (best on the default suite: 1.6e-2).
    init_lr_factors: str = "0.5,1,2,4,8,16,32"
    islands: int = 1  # independent populations (no migration), asked round-robin
    # Restart an island once its best has not improved for this many evaluations (0 = never):
    # from "best" (population refilled with its best program) or "initial" (init again).
    restart_plateau: int = 300
    restart_from: str = "best"
    # Guard against a search that only finds cached programs: stop after this many proposals
    # per budgeted evaluation.
    max_proposals_per_eval: int = 100
    # Constant fitting (search.constants): every `refine_every` evaluations the best program's
    # live constants are fitted by Nelder-Mead in at most `refine_evaluations` evaluations,
    # which count in the budget, and the fitted program is proposed as its child (op
    # "refine"). 0 = off. Target mode only: an imitation costs milliseconds, a proxy suite
    # seconds. Off by default: measured, it did not help (docs/TARGET.md).
    refine_every: int = 0
    refine_evaluations: int = 200


@dataclass
class MutationConfig:
    insert_weight: float = 1.0
    delete_weight: float = 1.0
    modify_weight: float = 1.0
    # Swap a statement's function, keeping the arguments that fit (not one of the paper's
    # operators; 0 gives the paper's three). See search/mutation.py for why.
    replace_weight: float = 1.0
    max_statements: int = 20  # inserts are not proposed at this length (AdamW has 9)
    max_tries: int = 1000  # attempts per child before giving up on a parent
    # Constants in [0.5, 1) may also be modified as c -> 1 - (1 - c) * 2^N(0,1) (interp weights
    # keep their memory scale sensible); False gives the paper's three modify kinds only.
    ema_jitter: bool = True
    # An insert into a new variable rewires one later read to it (search/mutation.py). Off:
    # the new value is unread, so such an insert never yields a child; on recovered Lion less
    # often (measured: docs/research/2026-12-07-splice-and-wider-panel.md).
    splice: bool = False
    # The functions inserts and replacements draw from (primitives.pool.POOLS): "default" (the
    # whole table) or "paper" (the Lion paper's pool: no per-tensor mean).
    pool: str = "default"


@dataclass
class EvaluationConfig:
    backend: str = "ray"  # "ray" (local instance or --address cluster) or "serial" (in process)
    workers: int = 0  # evaluations in flight; 0 = one per CPU core
    address: str = ""  # Ray cluster address; empty starts a local instance
    # GPUs per Ray worker; a fraction lets workers share a GPU (0.25: four per GPU). Above 0
    # the evaluations run on the worker's CUDA device; 0 keeps them on CPU.
    gpus_per_worker: float = 0.0
    suite: str = "default"
    seeds: int = 4  # seeds 0..seeds-1 per task
    # Target mode: fitness = imitation of this optimizer (a program file, a reference name or
    # an optimizer class such as torch.optim.NAdam) instead of the proxy tasks; it runs in
    # process, so backend, workers, address, suite and seeds do not apply. "" = off.
    target: str = ""
    # Target mode: steps of the recorded gradient stream. Longer streams separate long
    # memories (an EMA with beta 0.99 from an undecayed sum) at a proportional cost.
    target_steps: int = 100
    # N > 1: score each candidate at its best of N step sizes (evaluator.lr_sweep), and store
    # it with the chosen step folded into its lr constant. 1 = the program's own step.
    lr_sweep: int = 1
    # Optional cross-run evaluator.FitnessCache file. Off by default: cache hits cost no
    # budget, so a shared cache makes a run's course depend on what earlier runs evaluated.
    shared_cache: str = ""
    # Progressive hurdles (search.hurdles): a child is first trained for rung_fraction of each
    # task's steps; only if its rung score reaches the hurdle_quantile of its island's
    # population's rung scores is it trained in full. A stopped child has no fitness and never
    # joins the population.
    hurdles: bool = False
    rung_fraction: float = 0.125
    # What the rung trains (evaluator.rungs): "compressed", every step of a schedule cut to
    # rung_fraction of the steps; "tail", the last rung_fraction of the full schedule's steps
    # from an AdamW checkpoint. Compressed stays the default: the tail ranked the best
    # children no better, at a lower screening gain (docs/HURDLES.md).
    rung_kind: str = "compressed"
    hurdle_quantile: float = 0.5
    # A stall guard: after this many children in a row stopped on an island, the next child
    # whose rung finished goes on to full evaluation whatever its score (0 = never). Stopped
    # children do not age the population, so without it a converged population that stops
    # every child never changes again.
    hurdle_patience: int = 0
    fake_delay_s: float = 0.0  # testing only: seconds per evaluation of the fake backend


@dataclass
class Config:
    search: SearchConfig = field(default_factory=SearchConfig)
    mutation: MutationConfig = field(default_factory=MutationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def validate(self) -> Config:
        s, m, e = self.search, self.mutation, self.evaluation
        _require(s.population_size >= 1, "search.population_size must be >= 1")
        _require(s.tournament_size >= 1, "search.tournament_size must be >= 1")
        _require(s.budget >= 0, "search.budget must be >= 0")
        _require(s.islands >= 1, "search.islands must be >= 1")
        try:
            parse_factors(s.init_lr_factors)
        except ValueError as exc:
            raise ConfigError(f"config: search.init_lr_factors: {exc}") from None
        _require(s.restart_plateau >= 0, "search.restart_plateau must be >= 0")
        _require(s.restart_from in ("best", "initial"),
                 "search.restart_from must be 'best' or 'initial'")
        _require(s.max_proposals_per_eval >= 1, "search.max_proposals_per_eval must be >= 1")
        _require(s.refine_every >= 0 and s.refine_evaluations >= 2,
                 "search.refine_every must be >= 0 and search.refine_evaluations >= 2")
        _require(not s.refine_every or e.target,
                 "search.refine_every needs target mode (evaluation.target): constant fitting "
                 "evaluates in process, and a proxy-suite evaluation costs seconds")
        weights = (m.insert_weight, m.delete_weight, m.modify_weight, m.replace_weight)
        _require(all(w >= 0 and math.isfinite(w) for w in weights) and sum(weights) > 0,
                 "mutation weights must be finite, >= 0 and not all 0")
        _require(m.max_statements >= 1 and m.max_tries >= 1,
                 "mutation.max_statements and mutation.max_tries must be >= 1")
        _require(m.pool in POOLS, f"mutation.pool must be one of {', '.join(POOLS)}")
        _require(e.workers >= 0 and e.seeds >= 1,
                 "evaluation.workers must be >= 0 (0 = one per core) and seeds >= 1")
        _require(0.0 < e.rung_fraction < 1.0, "evaluation.rung_fraction must be in (0, 1)")
        _require(e.rung_kind in RUNG_KINDS,
                 f"evaluation.rung_kind must be one of {', '.join(RUNG_KINDS)}")
        _require(not (e.target and e.hurdles),
                 "evaluation.hurdles does not apply in target mode (evaluations cost milliseconds)")
        _require(0.0 <= e.hurdle_quantile <= 1.0,
                 "evaluation.hurdle_quantile must be in [0, 1]")
        _require(e.hurdle_patience >= 0, "evaluation.hurdle_patience must be >= 0 (0 = never)")
        _require(e.lr_sweep >= 1, "evaluation.lr_sweep must be >= 1 (1 = no sweep)")
        _require(e.target_steps >= 10, "evaluation.target_steps must be >= 10")
        _require(e.lr_sweep == 1 or e.seeds >= 2,
                 "evaluation.lr_sweep > 1 needs seeds >= 2 (one half chooses, one reports)")
        _require(math.isfinite(e.gpus_per_worker) and e.gpus_per_worker >= 0,
                 "evaluation.gpus_per_worker must be >= 0 (0 = CPU workers)")
        _require(e.gpus_per_worker == 0 or e.backend == "ray",
                 "evaluation.gpus_per_worker needs the ray backend")
        return self

    def with_overrides(self, **values) -> Config:
        """A validated copy with some keys replaced, named without their section (every key
        name is unique across sections): `config.with_overrides(budget=40, backend="serial")`.
        A value of None leaves the key as it is (an option the user did not give)."""
        sections = {name: dataclasses.replace(getattr(self, name))
                    for name in ("search", "mutation", "evaluation")}
        fields = {f.name: (name, f) for name, section in sections.items()
                  for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(f"config: unknown key '{key}'")
            if value is not None:
                name, f = fields[key]
                setattr(sections[name], key, _coerce(value, f.type, f"{name}.{key}"))
        return Config(**sections).validate()


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"config: {message}")


def from_dict(data: dict) -> Config:
    """Build a Config from parsed TOML; unknown sections or keys are errors (typos matter)."""
    config = Config()
    for section, values in data.items():
        target = getattr(config, section, None)
        if target is None or not isinstance(values, dict):
            raise ConfigError(f"config: unknown section [{section}]")
        known = {f.name: f for f in dataclasses.fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"config: unknown key '{key}' in [{section}]")
            setattr(target, key, _coerce(value, known[key].type, f"{section}.{key}"))
    return config.validate()


def _coerce(value, type_name: str, where: str):
    kind = {"int": int, "float": float, "str": str, "bool": bool}[type_name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"config: {where} must be {type_name}, got {value!r}")
    return value


def load(path: str | None) -> Config:
    if path is None:
        return Config().validate()
    try:
        with open(path, "rb") as fh:
            return from_dict(tomllib.load(fh))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def to_toml(config: Config) -> str:
    """The resolved configuration as TOML (the run directory's snapshot)."""
    lines = []
    for section in dataclasses.fields(config):
        lines.append(f"[{section.name}]")
        for key, value in dataclasses.asdict(getattr(config, section.name)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)
