"""Peer networks from keras-unet-collection at the same widths as landslide_tf's models.

Benchmarks import it with::

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/
    from _peers import PEERS, build_peer

``build_peer(model_name, input_shape, base_filters, depth)`` returns the keras-unet-collection
network that corresponds to one of our registry names, with the same filters per level
(``base_filters * 2**i`` for ``i = 0..depth``, the last being the bottleneck), batch norm on,
learned (transposed-convolution) up-sampling, max-pool down-sampling, and a 1-channel sigmoid
output:

=====================  ==========================================================
ours                   keras-unet-collection peer
=====================  ==========================================================
unet                   ``unet_2d``
resunet                ``r2_unet_2d`` with ``recur_num=0``: each block is a 1x1-conv
                       shortcut added to two conv-BN-ReLU layers, i.e. a residual
                       U-Net (``resunet_a_2d`` fails on Keras 3: its ASPP calls
                       ``KerasTensor.get_shape``; and it adds ASPP and dilations)
unetpp                 ``unet_plus_2d`` (but see below: not a U-Net++ in 0.1.13)
unetpp_spatial/_ctx/   ``unet_plus_2d`` too: the package has no CBAM/spatial
unetpp_spatial_ctx     attention U-Net++, so the ratio is our attention variant vs
                       the plain peer U-Net++ (it includes the attention cost)
=====================  ==========================================================

``unet_plus_2d`` (keras-unet-collection 0.1.13) builds its nested nodes with
``UNET_right(..., concat=False)``, so the skip tensors it collects are never concatenated:
the model it returns has no ``Concatenate`` layer, and its output is the bottleneck through
four plain decoder blocks (3x3 transposed conv + BN + ReLU, then three conv-BN-ReLU), with
no skip connection and no nested node. It costs 6.4 GFLOPs per 128x128x4 tile at
base_filters 32 / depth 4 against 14.9 for our U-Net++ (node ``x_{i}_{j}`` = conv block
over ``[x_{i}_0..x_{i}_{j-1}, up(x_{i+1}_{j-1})]`` with level-``i`` filters, as in
Zhou et al. 2018); the nested nodes are 12.1 of those 14.9 GFLOPs. Read the U-Net++
FLOPs and speed ratios with that in mind (docs/readme_models.md).

The package is optional (``pip install keras-unet-collection``, or the ``bench`` extra);
``build_peer`` raises ``PeerUnavailable`` with that instruction when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

#: our registry name -> (keras-unet-collection function, extra keyword arguments, label)
PEERS: dict[str, tuple[str, dict, str]] = {
    "unet": ("unet_2d", {}, "kuc.unet_2d"),
    "resunet": ("r2_unet_2d", {"recur_num": 0}, "kuc.r2_unet_2d(recur=0)"),
    "unetpp": ("unet_plus_2d", {"deep_supervision": False}, "kuc.unet_plus_2d"),
    "unetpp_spatial": ("unet_plus_2d", {"deep_supervision": False}, "kuc.unet_plus_2d"),
    "unetpp_ctx": ("unet_plus_2d", {"deep_supervision": False}, "kuc.unet_plus_2d"),
    "unetpp_spatial_ctx": ("unet_plus_2d", {"deep_supervision": False}, "kuc.unet_plus_2d"),
}

INSTALL_HINT = "pip install keras-unet-collection  (or: pip install -e '.[bench]')"


class PeerUnavailable(RuntimeError):
    """keras-unet-collection is not installed or cannot build the peer network."""


def peer_label(model_name: str) -> str:
    """Short label of the peer network for ``model_name`` (for tables)."""
    return PEERS[model_name][2] if model_name in PEERS else "-"


def build_peer(
    model_name: str,
    input_shape: Sequence[int] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
) -> keras.Model:
    """Build the keras-unet-collection network that matches one of our models.

    Args:
        model_name: one of our registry names (keys of ``PEERS``).
        input_shape: ``(height, width, channels)``.
        base_filters: filters of the first level; level ``i`` has ``base_filters * 2**i``.
        depth: number of 2x down-samplings (``depth + 1`` levels).

    Returns:
        An uncompiled ``keras.Model`` mapping ``(N, H, W, C)`` to ``(N, H, W, 1)`` sigmoid.

    Raises:
        KeyError: ``model_name`` has no peer (message lists those that do).
        PeerUnavailable: keras-unet-collection is missing or fails to build the network.
    """
    if model_name not in PEERS:
        raise KeyError(f"no peer for {model_name!r}; peers exist for {', '.join(PEERS)}")
    try:
        from keras_unet_collection import models as kuc
    except ImportError as exc:
        raise PeerUnavailable(
            f"keras-unet-collection is not installed ({exc}); {INSTALL_HINT}"
        ) from None
    func_name, extra, _ = PEERS[model_name]
    filters = [int(base_filters) * 2**i for i in range(int(depth) + 1)]
    try:
        return getattr(kuc, func_name)(
            tuple(input_shape),
            filters,
            n_labels=1,
            batch_norm=True,
            pool=True,
            unpool=False,
            output_activation="Sigmoid",
            name=f"peer_{model_name}",
            **extra,
        )
    except Exception as exc:  # noqa: BLE001 - any failure inside the third-party builder
        raise PeerUnavailable(
            f"keras-unet-collection could not build {func_name}: {type(exc).__name__}: {exc}"
        ) from exc


#: our encoder name -> segmentation_models (qubvel) backbone name.
SM_BACKBONES = {"resnet18": "resnet18", "resnet50": "resnet50", "efficientnet_b0": "efficientnetb0"}

SM_INSTALL_HINT = (
    "pip install --no-deps segmentation-models image-classifiers efficientnet "
    "keras-applications scikit-image  (its pinned requirements predate Keras 3; with "
    "SM_FRAMEWORK=tf.keras it builds on Keras 3)"
)


def build_sm_unet(encoder: str, input_shape: Sequence[int] = (128, 128, 3)) -> keras.Model:
    """segmentation_models' (Keras) ``Unet`` with the backbone matching our ``encoder``.

    Its decoder has 256, 128, 64, 32, 16 filters at strides 16..1, i.e. ours at
    ``--depth 5 --base-filters 16``; random initialisation (``encoder_weights=None``).

    Raises:
        KeyError: no segmentation_models backbone for ``encoder``.
        PeerUnavailable: segmentation_models is missing or fails to build the network.
    """
    import os

    if encoder not in SM_BACKBONES:
        raise KeyError(
            f"no segmentation_models backbone for {encoder!r}; have {list(SM_BACKBONES)}"
        )
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    try:
        import segmentation_models as sm
    except ImportError as exc:
        raise PeerUnavailable(
            f"segmentation_models is not usable ({exc}); {SM_INSTALL_HINT}"
        ) from None
    try:
        return sm.Unet(
            SM_BACKBONES[encoder],
            input_shape=tuple(input_shape),
            classes=1,
            activation="sigmoid",
            encoder_weights=None,
        )
    except Exception as exc:  # noqa: BLE001 - any failure inside the third-party builder
        raise PeerUnavailable(
            f"segmentation_models could not build Unet({encoder}): {type(exc).__name__}: {exc}"
        ) from exc
