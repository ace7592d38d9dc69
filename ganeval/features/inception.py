"""Inception-v3 features as torch-fidelity computes them (its TF-1.x bilinear resize to 299×299 and its
network), run channels_last and batched on the chosen device.

The forward pass is torch-fidelity's, rearranged for speed (docs/performance.md); features differ from
``FeatureExtractorInceptionV3.forward`` by float32 round-off only: max |Δ| ≈ 1–2e-5 on pool features up to ~6,
the size of torch-fidelity's own float32-vs-float64 error (tests/test_precision.py):

* every eval-mode BatchNorm is folded into its convolution (scale into the weights, shift into a bias) and
  the ReLU is fused into it: one oneDNN call per layer on the CPU, with the weights packed once;
* a grayscale image tiled to 3 channels is resized and normalised on its single channel (bit-identical),
  and the first convolution uses its weights summed over the 3 input channels (the same linear map);
* the TF-1.x resize interpolates rows first (the same float32 operations per pixel, bit-identical);
* bf16 (autocast) on a CPU with native bf16 runs the same fused convolutions in bf16, exactly as autocast's
  conv2d + relu (elsewhere autocast's own conv2d, emulated);
* ``torch.compile`` can be asked for (``compile=True`` or ``GANEVAL_COMPILE=1``); if it fails, the eager
  path is used silently.

``fused=False`` (or ``GANEVAL_INCEPTION_FUSED=0``) runs torch-fidelity's own network instead (channels_last,
grayscale tiled to 3 channels): slower, for comparisons.

``resize="clean"`` replaces the TF-1.x bilinear resize by clean-fid's (``ganeval.features.resize``), done on the
CPU before the network; everything after the resize is the same network. Its statistics are kept apart
(``stats_name`` ``inception-clean``, and the resize is part of every provenance check and cache key).
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganeval.devices import cpu_has_native_bf16
from ganeval.features.base import check_precision, forward_precision, register_extractor, resolve_device
from ganeval.features.inception_net import build_tfid_inception
from ganeval.features.inception_weights import InceptionWeights, resolve_inception_weights
from ganeval.features.resize import CLEAN_RESIZE_MODE, clean_resize

RESIZE_MODE = "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299"
#: ``resize=`` choices: the provenance string of each, and the name its statistics files use.
RESIZES = {"tf1x": (RESIZE_MODE, "inception"), "clean": (CLEAN_RESIZE_MODE, "inception-clean")}
CHANNELS = "grayscale tiled to 3 channels"
SIZE = 299
#: Images per network call on CPU (larger batches are split; smaller ones stay whole).
CPU_CHUNK = 32
#: sFID (Nash et al. 2021, as OpenAI guided-diffusion's evaluator computes it): the first 7 channels of the TF graph's
#: ``mixed_6/conv`` (Mixed_6d's 1×1 branch after its ReLU, 17×17), flattened in TF's (H, W, C) order.
SPATIAL_CHANNELS = 7
SPATIAL_DIM = SPATIAL_CHANNELS * 17 * 17
SPATIAL_NAME = "inception-spatial"
SPATIAL_LAYER = "mixed_6/conv (Mixed_6d.branch1x1), first 7 channels, 17x17, flattened H,W,C"


def stats_name_of(extractor: str, resize: str) -> str:
    """The name the statistics files of registered extractor ``extractor`` carry at ``resize`` (``inception`` with
    clean-fid's: ``inception-clean``; ``inception-spatial``: ``inception-spatial-clean``); any other: itself."""
    return RESIZES[resize][1].replace("inception", extractor) if extractor in ("inception", SPATIAL_NAME) else extractor


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value not in ("0", "false", "False", "no")


def _mkldnn_fused_ok() -> bool:
    """Whether oneDNN's fused conv+bias+ReLU op exists and agrees with conv2d+relu here."""
    try:
        x = torch.randn(1, 2, 5, 5).to(memory_format=torch.channels_last)
        w, b = torch.randn(3, 2, 3, 3), torch.randn(3)
        got = torch.ops.mkldnn._convolution_pointwise(x, w, b, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        return bool(torch.allclose(got, F.relu(F.conv2d(x, w, b, padding=1)), atol=1e-5))
    except Exception:  # noqa: BLE001 - any failure means: not available, use the plain ops
        return False


class FusedConvBNReLU(nn.Module):
    """torch-fidelity's ``BasicConv2d`` (conv, eval BatchNorm eps=1e-3, ReLU) as one conv with bias and ReLU."""

    def __init__(self, block: nn.Module, sum_input_channels: bool = False) -> None:
        super().__init__()
        conv, bn = block.conv, block.bn
        w = conv.weight.detach().double()
        if sum_input_channels:
            w = w.sum(1, keepdim=True)
        alpha = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        self.weight = nn.Parameter((w * alpha.view(-1, 1, 1, 1)).float(), requires_grad=False)
        self.bias = nn.Parameter((bn.bias.detach().double() - bn.running_mean.detach().double() * alpha).float(),
                                 requires_grad=False)
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.use_mkldnn = False
        self.use_mkldnn_bf16 = False  # oneDNN's op in bf16 too: only on a CPU with native bf16
        #: ``weight`` reordered once into oneDNN's layout for the expected input size, float32 and bfloat16
        #: (not part of the state dict).
        self.packed: torch.Tensor | None = None
        self.packed_bf16: torch.Tensor | None = None

    def pack(self, input_size: list[int], bf16: bool = False) -> None:
        """Reorder the weights for oneDNN once, for inputs of ``input_size`` (others still work, reordering per call)."""
        w = self.weight.detach()
        self.packed = torch.ops.mkldnn._reorder_convolution_weight(w, self.padding, self.stride, [1, 1], 1, input_size)
        if bf16:
            self.packed_bf16 = torch.ops.mkldnn._reorder_convolution_weight(w.to(torch.bfloat16), self.padding, self.stride,
                                                                            [1, 1], 1, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_mkldnn and x.device.type == "cpu":
            if not torch.is_autocast_enabled("cpu"):
                if x.dtype == torch.float32:
                    w = self.packed if self.packed is not None else self.weight
                    return torch.ops.mkldnn._convolution_pointwise(x, w, self.bias, self.padding, self.stride, [1, 1], 1,
                                                                   "relu", [], "")
            elif self.use_mkldnn_bf16 and torch.get_autocast_dtype("cpu") == torch.bfloat16:  # autocast's conv2d + relu, fused
                w = self.packed_bf16 if self.packed_bf16 is not None else self.weight.to(torch.bfloat16)
                return torch.ops.mkldnn._convolution_pointwise(x.to(torch.bfloat16), w, self.bias.to(torch.bfloat16),
                                                               self.padding, self.stride, [1, 1], 1, "relu", [], "")
        return F.relu(F.conv2d(x, self.weight, self.bias, self.stride, self.padding), inplace=True)

    def __deepcopy__(self, memo: dict[int, Any]) -> FusedConvBNReLU:
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = None if key in ("packed", "packed_bf16") else copy.deepcopy(value, memo)
        return new


def _first_channels(conv: FusedConvBNReLU, k: int) -> FusedConvBNReLU:
    """A copy of ``conv`` computing only its first ``k`` output channels (the same values: each channel is its own
    filter, BatchNorm scale, shift and ReLU)."""
    cut = copy.deepcopy(conv)
    cut.weight = nn.Parameter(conv.weight.detach()[:k].clone(), requires_grad=False)
    cut.bias = nn.Parameter(conv.bias.detach()[:k].clone(), requires_grad=False)
    return cut


def _tf1x_grid(n_in: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch-fidelity's sampling grid for one axis (align_corners=False): low index, high index, fraction."""
    grid = torch.arange(0, SIZE, 1, dtype=torch.float32, device=device) * torch.tensor(n_in / SIZE, dtype=torch.float32)
    lo = grid.long()
    return lo, (lo + 1).clamp_max(n_in - 1), grid - lo.float()


def tf1x_resize(x: torch.Tensor) -> torch.Tensor:
    """torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x(x, (299, 299), align_corners=False)``, bit for bit.

    The same float32 operations per output pixel, but the horizontal interpolation is done once per input row
    (then rows are gathered), instead of gathering four full 299×299 images first.
    """
    if x.dtype != torch.float32:
        raise TypeError("tf1x_resize expects float32")
    ylo, yhi, dy = _tf1x_grid(x.shape[2], x.device)
    xlo, xhi, dx = _tf1x_grid(x.shape[3], x.device)
    left = x[:, :, :, xlo]
    rows = left + (x[:, :, :, xhi] - left) * dx.view(1, 1, 1, SIZE)
    top = rows[:, :, ylo, :]
    return top + (rows[:, :, yhi, :] - top) * dy.view(1, 1, SIZE, 1)


def _flat_spatial(x: torch.Tensor) -> torch.Tensor:
    """sFID's 7×17×17 layer flattened in TF's (H, W, C) order, as guided-diffusion's evaluator reads mixed_6/conv."""
    return x.permute(0, 2, 3, 1).reshape(len(x), SPATIAL_DIM).to(torch.float32)


class FastInception(nn.Module):
    """torch-fidelity's Inception-v3 with folded BatchNorms and fused ReLUs, from uint8 ``(B, 1|3, H, W)`` (resized
here, TF-1.x bilinear) or from float32 ``(B, 1|3, 299, 299)`` in 0..255 already resized.

    Returns ``(pool,)`` or ``(pool, logits_unbiased)``, float32, like torch-fidelity's ``("2048", "logits_unbiased")``;
    with ``spatial``, ``(spatial,)``: sFID's :data:`SPATIAL_DIM` features, the network run only as far as they need.
    """

    def __init__(self, net: nn.Module, with_logits: bool, spatial: bool = False) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

        body = copy.deepcopy(net).float().eval()
        self.conv1_gray = FusedConvBNReLU(body.Conv2d_1a_3x3, sum_input_channels=True)
        for name, mod in list(body.named_modules()):
            if isinstance(mod, BasicConv2d):
                parent_name, _, attr = name.rpartition(".")
                setattr(body.get_submodule(parent_name) if parent_name else body, attr, FusedConvBNReLU(mod))
        self.conv1 = body.Conv2d_1a_3x3
        self.stem = nn.Sequential(body.Conv2d_2a_3x3, body.Conv2d_2b_3x3, body.MaxPool_1, body.Conv2d_3b_1x1,
                                  body.Conv2d_4a_3x3, body.MaxPool_2)
        blocks = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")
        self.mixed = nn.Sequential(*(getattr(body, f"Mixed_{k}") for k in blocks[: blocks.index("6d") if spatial else None]))
        self.spatial_block = blocks.index("6d")  # whose output's first channels are sFID's layer (full network)
        #: sFID's layer: Mixed_6d's 1×1 branch (its output's first channels), cut to the channels kept.
        self.spatial_head = _first_channels(body.Mixed_6d.branch1x1, SPATIAL_CHANNELS) if spatial else None
        self.with_logits = with_logits and not spatial
        self.fc_weight = nn.Parameter(body.fc.weight.detach().clone(), requires_grad=False) if self.with_logits else None
        self.requires_grad_(False)

    def set_mkldnn(self, on: bool, batch: int | None = None, bf16: bool = False) -> None:
        """Use oneDNN's fused conv+bias+ReLU op on the CPU (float32, or bfloat16 under autocast), with weights
        packed for ``batch`` images (also in bfloat16 with ``bf16``)."""
        convs = [m for m in self.modules() if isinstance(m, FusedConvBNReLU)]
        native = on and cpu_has_native_bf16()  # else bf16 runs autocast's own (emulated) conv2d
        for mod in convs:
            mod.use_mkldnn, mod.use_mkldnn_bf16, mod.packed, mod.packed_bf16 = on, native, None, None
        if not (on and batch):
            return
        shapes: dict[FusedConvBNReLU, list[int]] = {}
        hooks = [m.register_forward_pre_hook(lambda m, a: shapes.__setitem__(m, list(a[0].shape))) for m in convs]
        try:
            with torch.inference_mode():
                self(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))  # every layer's input size (fixed by the 299×299 resize)
        finally:
            for h in hooks:
                h.remove()
        try:
            for mod, shape in shapes.items():
                mod.pack([batch, *shape[1:]], bf16 and native)
        except Exception:  # noqa: BLE001 - packing is only a speed-up (same features within float32 round-off)
            for mod in convs:
                mod.packed = mod.packed_bf16 = None

    def forward(self, images: torch.Tensor, spatial_too: bool = False) -> tuple[torch.Tensor, ...]:
        """``spatial_too`` (full network only): sFID's features appended, read off Mixed_6d's output on the way."""
        gray = images.shape[1] == 1
        x = tf1x_resize(images.to(torch.float32)) if images.dtype == torch.uint8 else images
        x = (x - 128) / 128
        x = x.contiguous(memory_format=torch.channels_last)
        # A 1-channel input is both NCHW- and NHWC-contiguous, so the convolution returns NCHW: convert once.
        x = (self.conv1_gray(x) if gray else self.conv1(x)).contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        if self.spatial_head is not None:
            return (_flat_spatial(self.spatial_head(self.mixed(x))),)
        spatial: tuple[torch.Tensor, ...] = ()
        for i, block in enumerate(self.mixed):
            x = block(x)
            if spatial_too and i == self.spatial_block:  # Mixed_6d concatenates its 1×1 branch first
                spatial = (_flat_spatial(x[:, :SPATIAL_CHANNELS]),)
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        if self.fc_weight is None:
            return (x.to(torch.float32), *spatial)
        return x.to(torch.float32), x.mm(self.fc_weight.T).to(torch.float32), *spatial


class InceptionExtractor:
    """``pool`` (2048-d) and, with full weights, ``logits`` (1008-d, unbiased as torch-fidelity's IS uses)."""

    name = "inception"
    pool_dim = 2048

    def __init__(
        self,
        weights: InceptionWeights | None = None,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        weights_path: str | os.PathLike[str] | None = None,
        compile: bool | None = None,
        fused: bool | None = None,
        resize: str = "tf1x",
        spatial: bool = False,
    ) -> None:
        """``compile``: try ``torch.compile`` on the fast network (default: ``GANEVAL_COMPILE=1``); ``fused``: use the
        fast network (default, unless ``GANEVAL_INCEPTION_FUSED=0``), else torch-fidelity's; ``resize``: ``tf1x``
        (torch-fidelity's, the default) or ``clean`` (clean-fid's); ``spatial``: sFID's features
        (:data:`SPATIAL_LAYER`) as ``pool`` instead, the ``inception-spatial`` extractor."""
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}, not {resize!r}")
        self.resize, self.spatial = resize, spatial
        if spatial:
            self.name, self.pool_dim = SPATIAL_NAME, SPATIAL_DIM
        self.resize_mode, self.stats_name = RESIZES[resize][0], stats_name_of(self.name, resize)
        self.weights = weights or resolve_inception_weights(weights_path)
        self.has_logits = self.weights.has_logits and not spatial
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        feats = ("2048", "logits_unbiased") if self.has_logits else ("2048",)
        self._keys = ("pool", "logits") if self.has_logits else ("pool",)
        net = build_tfid_inception(self.weights.state_dict, feats)
        #: torch-fidelity's own network (the reference forward, kept unchanged).
        self.net = net.to(self.device).to(memory_format=torch.channels_last).eval()
        self.fast = FastInception(net, self.has_logits, spatial).to(self.device).eval()
        if self.device.type == "cpu":
            self.fast.set_mkldnn(_mkldnn_fused_ok(), batch=CPU_CHUNK, bf16=precision == "bf16")
        self._forward: Any = self.fast
        self.fused = fused if fused is not None else _env_flag("GANEVAL_INCEPTION_FUSED", True)
        if not self.fused:
            if resize != "tf1x":
                raise ValueError("torch-fidelity's own network (fused=False) resizes inside: only resize='tf1x'")
            self._forward = self._tfid_forward
        elif compile if compile is not None else _env_flag("GANEVAL_COMPILE", False):
            self._forward = self._try_compile()

    def _tfid_forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        if not self.spatial:
            return self.net(x)
        got: list[torch.Tensor] = []  # Mixed_6d's output, whose first channels are its 1×1 branch's
        hook = self.net.Mixed_6d.register_forward_hook(lambda _m, _a, out: got.append(out[:, :SPATIAL_CHANNELS]))
        try:
            self.net(x)
        finally:
            hook.remove()
        return (got[0].permute(0, 2, 3, 1).reshape(len(x), SPATIAL_DIM),)

    def _try_compile(self) -> Any:
        """``torch.compile`` of the fast network, checked on a small batch; the eager network if anything fails."""
        try:
            if self.device.type == "cpu":
                import torch._inductor.config as inductor_config

                inductor_config.freezing = True
            plain = copy.deepcopy(self.fast)
            plain.set_mkldnn(False)  # inductor picks its own fused kernels; the explicit oneDNN op does not trace
            compiled = torch.compile(plain)
            probe = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
            probe = (clean_resize(probe) if self.resize == "clean" else probe).to(self.device)
            torch._dynamo.mark_dynamic(probe, 0)  # one graph for every batch size
            with torch.inference_mode():
                if (compiled(probe)[0] - self.fast(probe)[0]).abs().max().item() > 1e-4:
                    raise RuntimeError("compiled features differ")
            return compiled
        except Exception as exc:  # noqa: BLE001 - compilation is an optional speed-up
            if os.environ.get("GANEVAL_DEBUG"):
                print(f"ganeval: torch.compile unavailable ({exc.__class__.__name__}: {str(exc)[:300]}); eager Inception",
                      file=sys.stderr)
            return self.fast

    def provenance(self) -> dict[str, Any]:
        """Extractor identity for sidecars, caches and reports: ``weights_sha256`` names the network the pool features
        come from (what reference statistics must match), ``logits_sha256`` its logits layer, when it has one (what
        the Inception Score comes from), and then ``weights_whole_sha256``, the identity such a file was recorded
        under before the logits layer was left out (so older reports and statistics can still be matched)."""
        return {
            "extractor": self.name,
            "weights_sha256": self.weights.sha256,
            **({"logits_sha256": self.weights.logits_sha256} if self.has_logits else {}),
            **({"weights_whole_sha256": self.weights.whole_sha256} if self.weights.whole_sha256 else {}),
            "weights_source": self.weights.source,
            "resize": self.resize_mode,
            **({"layer": SPATIAL_LAYER} if self.spatial else {}),
            "channels": CHANNELS,
            "precision": self.precision,
        }

    def serves(self, other: object) -> bool:
        """Whether this extractor's pass also gives ``other``'s features: the full network's Mixed_6d output holds
        sFID's layer, so ``fid`` and ``sfid`` together cost one Inception pass (same weights, resize, precision
        and device; the fast network only)."""
        return (isinstance(other, InceptionExtractor) and other.spatial and not self.spatial and self.fused and other.fused
                and (other.weights.sha256, other.resize, other.precision, other.device)
                == (self.weights.sha256, self.resize, self.precision, self.device))

    def _run(self, x: torch.Tensor, spatial_too: bool) -> tuple[torch.Tensor, ...]:
        with forward_precision(self.precision, self.device):
            return self._forward(x, spatial_too=True) if spatial_too else self._forward(x)

    @torch.inference_mode()
    def _features(self, images: torch.Tensor, spatial_too: bool = False) -> tuple[torch.Tensor, ...]:
        if images.dtype != torch.uint8:
            raise TypeError("InceptionExtractor expects uint8 images")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1|3, H, W), got {tuple(images.shape)}")
        x = (clean_resize(images) if self.resize == "clean" else images).to(self.device, non_blocking=True)
        if x.device.type == "cpu" and x.shape[0] > CPU_CHUNK:
            parts = [self._run(c, spatial_too) for c in x.split(CPU_CHUNK)]
            return tuple(torch.cat(p) for p in zip(*parts, strict=True))
        return self._run(x, spatial_too)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() for k, v in zip(self._keys, self._features(images), strict=True)}

    def joint(self, images: torch.Tensor, riders: list[Any]) -> dict[str, dict[str, torch.Tensor]]:
        """This extractor's features and those of ``riders`` (extractors it :meth:`serves`), by name, from one pass."""
        if not riders:
            return {self.name: self(images)}
        *own, spatial = self._features(images, spatial_too=True)
        out = {self.name: {k: v.float() for k, v in zip(self._keys, own, strict=True)}}
        return out | {r.name: {"pool": spatial} for r in riders}


@register_extractor("inception")
def make_inception(**kwargs: Any) -> InceptionExtractor:
    """Registry factory for the Inception-v3 extractor (``resize="tf1x"`` unless asked otherwise)."""
    return InceptionExtractor(**kwargs)


@register_extractor("inception-clean")
def make_inception_clean(**kwargs: Any) -> InceptionExtractor:
    """The Inception-v3 extractor with clean-fid's resize: the name its statistics files carry."""
    return InceptionExtractor(**{**kwargs, "resize": "clean"})


@register_extractor(SPATIAL_NAME)
def make_inception_spatial(**kwargs: Any) -> InceptionExtractor:
    """sFID's spatial Inception features (:data:`SPATIAL_LAYER`), with the resize asked for (``tf1x`` by default)."""
    return InceptionExtractor(**{**kwargs, "spatial": True})


@register_extractor(SPATIAL_NAME + "-clean")
def make_inception_spatial_clean(**kwargs: Any) -> InceptionExtractor:
    """sFID's features with clean-fid's resize: the name its statistics files carry."""
    return InceptionExtractor(**{**kwargs, "resize": "clean", "spatial": True})
