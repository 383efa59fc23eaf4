"""The paper's comparative study, reproduced with one command.

``python -m landslide_tf.experiments paper --data DIR --out OUT`` runs the protocol of
Hegde et al. 2025 defined in ``experiments/paper.json``:

1. stage 1: {unet, resunet, unetpp} x {bce, focal, dice, wce};
2. stage 2: per base, the loss with the best mean mIoU on the test split (the paper's
   choice) or, with ``--select-on val``, on the validation split;
3. stage 3: unetpp_spatial, unetpp_ctx, unetpp_spatial_ctx with the loss picked for U-Net++.

All runs share one split (``OUT/split/``). Outputs: ``table1/2/3.md`` and ``.csv`` with the
paper's figures and the differences, ``fig4_loss_curves.png``, ``fig5_predictions.png``,
``fig6_gradcam.png``, ``README.md`` (environment, split, wall time per run), ``runs.csv``.
Rerunning with the same ``--out`` skips finished runs and resumes interrupted ones.

Modules: ``study`` (study JSON loader), ``runs`` (run records), ``runner`` (training,
resume, parallel processes), ``tables`` (selection and tables), ``figures``, ``core``
(``run_study``), ``report`` (``StudyOutcome`` and the writers of its tables, figures and
README), ``reference`` (the paper's numbers).

No TensorFlow is imported until a run or figure needs it.
"""

from landslide_tf.experiments.reference import PAPER_TABLE1, PAPER_TABLE3
from landslide_tf.experiments.runs import RunResult, RunSpec
from landslide_tf.experiments.study import Study, available_studies, load_study
from landslide_tf.experiments.tables import format_mean_std, select_best_losses

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE3",
    "RunResult",
    "RunSpec",
    "Study",
    "available_studies",
    "format_mean_std",
    "load_study",
    "select_best_losses",
]
