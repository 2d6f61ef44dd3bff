#!/bin/sh
# Regenerates the decode_bytes seed corpus: 0.15 s of the fixture speech clip in every format
# the decoder reads or names, each a few kB, so the fuzzer runs thousands of inputs a second.
# Needs ffmpeg 5.1 (libmp3lame, libvorbis, libopus). spec_json/spec.json is a copy of
# examples/demo/spec.json.
set -eu
cd "$(dirname "$0")/decode_bytes"
FF="ffmpeg -hide_banner -loglevel error -y"
BX="-fflags +bitexact -flags:a +bitexact"
FX=../../../crates/assembly-core/tests/fixtures
S=$FX/speech.wav
X="-ss 0.6 -t 0.15"
$FF $X -i $S -ar 8000 $BX -c:a pcm_s16le s16.wav
$FF $X -i $S -ar 8000 $BX -c:a pcm_u8 u8.wav
$FF $X -i $S -ar 8000 $BX -c:a adpcm_ima_wav ima.wav
$FF $X -i $S -ar 8000 $BX -c:a flac flac.flac
$FF $X -i $S $BX -c:a libmp3lame -b:a 32k lame.mp3
$FF $X -i $S $BX -c:a libmp3lame -b:a 32k -write_xing 0 noxing.mp3
$FF $X -i $S $BX -c:a libvorbis -q:a 0 vorbis.ogg
$FF $X -i $S -ar 48000 $BX -c:a libopus -b:a 12k mono.opus
$FF -i mono.opus -c copy $BX mono.webm
$FF $X -i $S -ar 48000 -ac 2 $BX -c:a libopus -b:a 16k stereo.opus
$FF -i stereo.opus -c copy $BX stereo.mka
$FF $X -i $S $BX -c:a aac -b:a 24k aac.m4a
$FF $X -i $S $BX -c:a aac -b:a 24k -f adts aac.aac
$FF $X -i $S -ar 44100 $BX -c:a mp2 -b:a 64k -f mp2 layer2.mp2
head -c 1920 $FX/speech.mp1 > layer1.mp1
$FF $X -i $S -ar 8000 $BX -c:a pcm_s16be tone.aiff
$FF $X -i $S -ar 8000 $BX -c:a pcm_s16le tone.caf
$FF $X -i $S -ar 8000 $BX -c:a alac alac.m4a
$FF $X -i $S -ar 8000 $BX -c:a pcm_s16le w64.w64
cp $FX/empty.flac empty.flac
