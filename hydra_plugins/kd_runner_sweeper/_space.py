"""Hydra's sweep syntax as Optuna distributions, so a preset's `hydra.sweeper.params` and
the command line share one grammar:

    choice(1, 2, 4) or 1,2,4     CategoricalDistribution of the values
    interval(0.1, 1.0)           FloatDistribution (IntDistribution when both ends are ints,
                                 e.g. int(interval(1, 8)))
    tag(log, interval(a, b))     the same on a log scale
    range(a, b[, step])          IntDistribution from a to b inclusive, in steps (Float when any
                                 of them is a float); shuffle(range(...)) a categorical one
    anything else                a fixed override, passed to every trial as written

A key given twice (in params and on the command line) takes the later one: the command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


@dataclass
class SearchSpace:
    """What a trial samples (key -> distribution) and what every trial gets as given."""
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)  # key (with any +/++ prefix) -> value text
    deletions: list[str] = field(default_factory=list)  # ~key overrides, passed on as written

    def overrides(self, sampled: dict) -> tuple[str, ...]:
        """One trial's command-line overrides: its sampled values, then the fixed ones."""
        return (*(f"{k}={v}" for k, v in sampled.items()), *(f"{k}={v}" for k, v in self.fixed.items()),
                *self.deletions)


def search_space(params, arguments: list[str]) -> SearchSpace:
    """The space of `hydra.sweeper.params` (a mapping key -> sweep text) and the command
    line's overrides, parsed by Hydra's own override grammar."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(lines):
        if override.is_delete():
            space.deletions.append(override.input_line)
            continue
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        if override.is_sweep_override():
            space.distributions[key] = distribution(override)
        else:
            space.fixed[key] = override.get_value_element_as_str()
    return space


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (see the module docstring)."""
    value = override.value()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(float(value.start), float(value.stop), step=float(value.step))
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ValueError(f"{override.input_line}: not a sweep Optuna can sample; use choice, interval or range")
