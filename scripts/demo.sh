#!/usr/bin/env bash
# Set up vs_sr, generate a 144p sample with audio and subtitles, and upscale it to exactly
# 854x480 with the offline realesr-animevideov3 network: `vs-sr upscale` (vspipe -> ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p demo
printf '1\n00:00:00,500 --> 00:00:02,500\nvs_sr demo\n' > demo/sample.srt
ffmpeg -v error -y -f lavfi -i "testsrc2=size=256x144:rate=25:duration=4" -f lavfi -i "sine=frequency=440:duration=4" \
    -i demo/sample.srt -map 0 -map 1 -map 2 -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a aac -c:s srt \
    demo/sample_144p.mkv
.venv/bin/vs-sr upscale demo/sample_144p.mkv demo/sample_480p.mkv --width 854 --height 480 --overwrite
