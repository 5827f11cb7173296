#!/usr/bin/env bash
# The pipe by hand: vspipe writes the upscaled video as y4m, ffmpeg encodes it and takes the
# audio (and subtitles) straight from the source file.
#   bash examples/pipe.sh in.mkv out.mkv [model]
# y4m carries one constant frame rate and no colour matrix/primaries/transfer: a variable-frame-rate
# source loses its frame times (audio drifts) and the output is untagged. `vs-sr upscale` keeps both.
set -euo pipefail
input=$(realpath "$1")
output=$2
model=${3:-realesr-animevideov3}
here=$(dirname "$(realpath "$0")")
part="${output%.*}.part.${output##*.}"  # written under a temporary name, renamed when complete
vspipe -c y4m -a input="$input" -a model="$model" "$here/upscale.vpy" - \
    | ffmpeg -v error -y -i - -i "$input" -map 0:v:0 -map '1:a?' -map '1:s?' \
        -c:v libx264 -crf 18 -preset medium -c:a copy -c:s copy "$part"
mv "$part" "$output"
echo "wrote $output"
