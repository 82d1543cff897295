"""A measure: program -> (mean, standard error) of its fitness, what simplification's
ablations are judged by. One rule for every fitness (proxy suite or imitation of a target)."""

from __future__ import annotations

import math

from optsearch.evaluator.noise import mean_stderr


def fitness_measure(fitness_of, name: str):
    """measure(program) -> (mean, stderr) from `fitness_of(program) -> Fitness`.

    A failed program measures -inf: no ablation is accepted because it broke the rule. One
    seed gives no noise estimate; it counts as noise-free (lose nothing) rather than NaN,
    which would reject every ablation. `measure.name` names the suite in the trace."""
    def measure(program):
        fitness = fitness_of(program)
        if not fitness.ok:
            return (-math.inf, 0.0)
        mean, err = mean_stderr(fitness)
        return (mean, 0.0 if math.isnan(err) else err)
    measure.name = name
    return measure


def suite_measure(suite, seeds):
    """The measure on a proxy suite (a name or an evaluator.suites.Suite) over `seeds`."""
    from optsearch.evaluator.evaluate import evaluate  # torch and the tasks load only here

    seeds = tuple(seeds)
    return fitness_measure(lambda program: evaluate(program, suite, seeds),
                           getattr(suite, "name", suite))


def imitation_measure(stream, name: str = "imitation"):
    """The measure of how closely a program imitates the target recorded in `stream`."""
    from optsearch.evaluator.imitation import imitation_fitness

    return fitness_measure(lambda program: imitation_fitness(program, stream), name)
