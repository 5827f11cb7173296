#!/usr/bin/env python3
"""Build a TensorRT engine ahead of time (same as `vs-sr engines build`).

    .venv/bin/python scripts/build_engine.py --model realesr-animevideov3 --tile 720x480 --precision fp16
    .venv/bin/python scripts/build_engine.py --model realesr-animevideov3 --profile 64x64 720x480 1920x1080
"""

import sys

from vs_sr.cli import main

if __name__ == "__main__":
    sys.exit(main(["engines", "build", *sys.argv[1:]]))
