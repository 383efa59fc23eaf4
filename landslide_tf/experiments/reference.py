"""The paper's published numbers (Hegde et al. 2025, Tables 1 and 3) and display labels.

Tables written by ``landslide_tf.experiments`` put these figures next to ours with the
difference ``ours - paper``. Table 2 of the paper is the first three rows of Table 3.
"""

from __future__ import annotations

#: The six metrics of Table 3, in the paper's column order.
METRICS = ("miou", "auc", "precision", "recall", "f1", "accuracy")

METRIC_LABELS = {
    "miou": "mIoU",
    "auc": "AUC",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "accuracy": "Acc",
    "iou_background": "IoU bg",
    "iou_landslide": "IoU ls",
}

MODEL_LABELS = {
    "unet": "U-Net",
    "resunet": "ResUNet",
    "unetpp": "U-Net++",
    "unetpp_spatial": "U-Net++ spatial",
    "unetpp_ctx": "U-Net++ contextual",
    "unetpp_spatial_ctx": "U-Net++ spatial+contextual",
}

LOSS_LABELS = {"bce": "BCE", "focal": "Focal", "dice": "Dice", "wce": "WCE"}

#: Table 1: test mIoU by base model and loss.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "unet": {"bce": 0.575, "focal": 0.572, "dice": 0.557, "wce": 0.508},
    "resunet": {"bce": 0.770, "focal": 0.786, "dice": 0.776, "wce": 0.787},
    "unetpp": {"bce": 0.770, "focal": 0.766, "dice": 0.774, "wce": 0.759},
}

#: Table 3: all metrics of the six final models, with the loss the paper used for each.
PAPER_TABLE3: dict[str, dict[str, float | str]] = {
    "unet": {
        "loss": "bce",
        "miou": 0.50,
        "auc": 0.80,
        "precision": 0.94,
        "recall": 0.12,
        "f1": 0.21,
        "accuracy": 0.90,
    },
    "resunet": {
        "loss": "wce",
        "miou": 0.70,
        "auc": 0.94,
        "precision": 0.85,
        "recall": 0.53,
        "f1": 0.65,
        "accuracy": 0.94,
    },
    "unetpp": {
        "loss": "dice",
        "miou": 0.75,
        "auc": 0.87,
        "precision": 0.69,
        "recall": 0.77,
        "f1": 0.73,
        "accuracy": 0.94,
    },
    "unetpp_spatial": {
        "loss": "dice",
        "miou": 0.72,
        "auc": 0.82,
        "precision": 0.73,
        "recall": 0.65,
        "f1": 0.69,
        "accuracy": 0.94,
    },
    "unetpp_ctx": {
        "loss": "dice",
        "miou": 0.76,
        "auc": 0.90,
        "precision": 0.69,
        "recall": 0.79,
        "f1": 0.74,
        "accuracy": 0.94,
    },
    "unetpp_spatial_ctx": {
        "loss": "dice",
        "miou": 0.73,
        "auc": 0.93,
        "precision": 0.73,
        "recall": 0.65,
        "f1": 0.69,
        "accuracy": 0.94,
    },
}


def model_label(model: str) -> str:
    """Display name of a registry model name (the name itself when unknown)."""
    return MODEL_LABELS.get(model, model)


def loss_label(loss: str) -> str:
    """Display name of a loss name (upper case when unknown)."""
    return LOSS_LABELS.get(loss, loss.upper())
