"""The seed lottery: ``training.seeds`` trains once per seed and keeps one model.

Two runs of one recipe that differ only in their seed can differ by several points of dev macro-F1, and by
far more with a few rows per label. With ``training.seeds: [13, 14, 15]`` the trainer makes one run per seed,
each a complete run of its own in ``<output_dir>/seeds/seed-<n>/`` (it resumes after a kill like any run, and
a finished one is not trained again), every one from the same initial weights (``training.init_seed``: the
first seed's), so that only the batch order and dropout differ, and then keeps one model
(``training.seed_selection``):

* ``best`` (the default): the run with the best dev score (``training.selection_metric``). With a dev split of
  a few rows per label this picks a lucky run as much as a good one, but it only ever keeps one of the runs: at
  worst the worst of them, where the soup below fell under all of them;
* ``soup``: the uniform average of the runs' weights (a "model soup", Wortsman et al., 2022): where runs
  fine-tuned from one start stay in one basin of the loss, their average is as good as the better runs, at one
  model's inference cost and with no choice made on dev. Measured here: at 8 rows per label (Mawqif) the soups
  matched the runs (0.436 against 0.433); on the whole Mawqif split the soup fell below every run (0.557 against
  0.560-0.599; ``BENCHMARKS.md``). That is why ``best`` is the default.

The kept model is then calibrated, evaluated and described exactly as a single run's
(:meth:`~aranews.training.trainer.Trainer.finish_combined`); ``metrics.json`` says which seeds ran, each run's
dev score and what was kept (``recipe.seeds``). Each run's model stays in its folder; its resume state is
removed once it has finished (the optimiser's state is twice the model's size).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aranews.inference.config import ClassifierConfig
from aranews.training.checkpoint import CHECKPOINT_DIR, run_fingerprint

if TYPE_CHECKING:
    from aranews.training.trainer import Trainer, TrainResult

__all__ = ["average_weights", "seed_config", "train_seeds"]

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"


def seed_config(config: Any, seed: int) -> Any:
    """The experiment of one seed's run: that seed, the first seed's initial weights, its own folder, and none
    of the once-per-experiment extras (the report and the baseline are made for the kept model only). Nor the
    choice of the kept model: a run is the same whatever is kept from the lottery, so changing
    ``seed_selection`` afterwards reuses the finished runs instead of training them again."""
    tcfg = config.training
    sub = copy.deepcopy(config)
    sub.training.seed, sub.training.init_seed, sub.training.seeds = seed, tcfg.seeds[0], None
    sub.training.seed_selection = type(tcfg).seed_selection  # the dataclass default: one run keeps nothing
    sub.training.output_dir = str(Path(tcfg.output_dir) / "seeds" / f"seed-{seed}")
    sub.training.report = sub.training.baseline = False
    return sub


def _finished(output_dir: Path, config: Any) -> dict[str, Any] | None:
    """The metrics of a finished run of exactly this experiment in ``output_dir``, else ``None``."""
    path = output_dir / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text(encoding="utf-8"))
    same = run_fingerprint(metrics.get("config") or {}) == run_fingerprint(config.to_dict())
    return metrics if same and metrics.get("completed") else None


def average_weights(model_dirs: list[Path], out_dir: Path) -> None:
    """Write to ``out_dir`` the uniform average of the models' weights (safetensors; floating-point tensors
    averaged in float64, others taken from the first model), with the first model's tokenizer and config, its
    calibration, thresholds and dev rates removed: they belong to that model, and are fitted again."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model_dirs[0] / WEIGHTS), framework="pt") as first:
        metadata, keys = first.metadata(), list(first.keys())
    sums: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for directory in model_dirs:
        with safe_open(str(directory / WEIGHTS), framework="pt") as weights:
            if sorted(weights.keys()) != sorted(keys):
                raise ValueError(f"{directory / WEIGHTS}: its tensors are not those of {model_dirs[0] / WEIGHTS}")
            for key in keys:
                tensor = weights.get_tensor(key)
                if not tensor.is_floating_point():
                    sums.setdefault(key, tensor)
                    continue
                dtypes[key] = tensor.dtype
                sums[key] = tensor.double() if key not in sums else sums[key] + tensor.double()
    averaged = {k: (v / len(model_dirs)).to(dtypes[k]) if k in dtypes else v for k, v in sums.items()}
    shutil.copytree(model_dirs[0], out_dir, ignore=shutil.ignore_patterns(WEIGHTS, "README.md"))
    save_file(averaged, str(out_dir / WEIGHTS), metadata=metadata)
    config = ClassifierConfig.load(out_dir)
    for task in config.tasks:
        task.temperature = task.bias = task.dev_rates = None
        task.thresholds = task.kind.default_thresholds(len(task.labels))
    config.save(out_dir)


def _run_figures(run: dict[str, Any], score: float) -> dict[str, Any]:
    metrics = run["metrics"]
    return {
        "seed": run["seed"],
        "dev_score": round(score, 4),
        "best_epoch": metrics["best_epoch"],
        "train_seconds": metrics.get("train_seconds"),
    }


def train_seeds(trainer: Trainer, stop_after_epochs: int | None = None) -> TrainResult:
    """Train one run per ``training.seeds`` and keep the soup or the best of them (see the module's doc).

    Args:
        trainer: the experiment's trainer (its ``training.seeds`` set).
        stop_after_epochs: passed to each run; a run it stops ends the call there (as a kill would), with that
            run's result and nothing kept yet: a later call resumes it.
    """
    from aranews.training.trainer import Trainer

    config = trainer.config
    tcfg = config.training
    runs: list[dict[str, Any]] = []
    for seed in tcfg.seeds:
        sub = seed_config(config, seed)
        out = Path(sub.training.output_dir)
        metrics = _finished(out, sub) if tcfg.resume else None
        if metrics is None:
            logger.info("seed lottery: training seed %d of %s in %s", seed, tcfg.seeds, out)
            result = Trainer(sub).train(stop_after_epochs)
            metrics = result.metrics
            if not metrics.get("completed"):
                return result
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
        runs.append({"seed": seed, "dir": out, "metrics": metrics})
    scores = [float(r["metrics"]["best_dev_score"]) for r in runs]
    summary: dict[str, Any] = {
        "selection": tcfg.seed_selection,
        "init_seed": tcfg.seeds[0],
        "runs": [_run_figures(r, s) for r, s in zip(runs, scores)],
        "dev_score_mean": round(float(np.mean(scores)), 4),
        "dev_score_range": [round(min(scores), 4), round(max(scores), 4)],
    }
    best = runs[int(np.argmax(scores))]
    recipe = {**(best["metrics"].get("recipe") or {}), "seeds": summary}
    if tcfg.seed_selection == "best":
        summary["kept"] = f"seed {best['seed']} (best dev {tcfg.selection_metric})"
        logger.info(
            "seed lottery: kept seed %d, dev %s %.4f of %s", best["seed"], tcfg.selection_metric, max(scores), scores
        )
        return trainer.finish_combined(best["dir"] / "model", recipe, best["metrics"]["epochs"])
    summary["kept"] = f"the uniform average of {len(runs)} runs' weights (soup)"
    with tempfile.TemporaryDirectory(dir=Path(tcfg.output_dir)) as tmp:
        souped = Path(tmp) / "soup"
        average_weights([r["dir"] / "model" for r in runs], souped)
        result = trainer.finish_combined(souped, recipe, [])
    logger.info(
        "seed lottery: soup of %d runs, dev %s %.4f (runs: %s)",
        len(runs), tcfg.selection_metric, result.metrics["best_dev_score"], scores,
    )  # fmt: skip
    return result
