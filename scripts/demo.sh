#!/usr/bin/env bash
# Set up vs_sr, generate a 144p sample with ffmpeg and upscale it x4 with the offline
# realesr-animevideov3 network: vspipe (examples/upscale.vpy) piped into ffmpeg (x264).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p demo
ffmpeg -v error -y -f lavfi -i "testsrc2=size=176x144:rate=25:duration=2" -f lavfi -i "sine=frequency=440:duration=2" \
    -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a aac -shortest demo/sample_144p.mp4
.venv/bin/vspipe -c y4m -a input="$PWD/demo/sample_144p.mp4" -a model=realesr-animevideov3 examples/upscale.vpy - \
    | ffmpeg -v error -y -i - -i demo/sample_144p.mp4 -map 0:v -map 1:a -c:v libx264 -crf 18 -c:a copy demo/sample_576p.part.mp4
mv demo/sample_576p.part.mp4 demo/sample_576p.mp4
ffprobe -v error -select_streams v:0 -show_entries stream=width,height,nb_frames -of csv=p=0 demo/sample_576p.mp4 \
    | { IFS=, read -r w h n; echo "demo: wrote demo/sample_576p.mp4 (${w}x${h}, ${n} frames) from demo/sample_144p.mp4"; }
