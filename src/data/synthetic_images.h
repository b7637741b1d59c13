// Why this file exists: ladder needs training images that need no download and are the same
// on every machine (`ladder pack --synthetic`, quickstart, tests). Each image is a random
// scene (gradient background, filled shapes, stripes and checkers, thin lines) described in
// normalised [0, 1] coordinates and rendered at the requested resolution, so the rungs of a
// resolution ladder (32 -> 64 -> ...) all show the same scene of a given index.
#pragma once

#include <cstdint>

namespace ladder::data {

// Renders image `index` of the synthetic set `seed` as R x R pixels with `channels` 8-bit
// channels into out (R, R, C). The same (seed, index, resolution, channels) always gives
// the same bytes. The scene depends on (seed, index) only; pixels are area-averaged, so a
// 2R rendering box-filtered by 2x2 closely matches the R rendering.
// Channels: 3 is RGB; 1 is the luminance (0.299 R + 0.587 G + 0.114 B); with more than 3
// channels, the first three are RGB and the rest luminance; 2 is luminance twice.
void render_synthetic_image(uint64_t seed, int64_t index, int resolution, int channels,
                            uint8_t* out /* (R, R, C) */);

}  // namespace ladder::data
