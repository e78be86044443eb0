// dfs/media/media.h — everything dfs_media offers, for callers that want one include.
//
//   probe.h       ProbeInfo probe(path)
//   decoder.h     Decoder (open / read / frame_at / seek / close), read_frames, read_image
//   thumbnails.h  ThumbnailJob (worker thread, cancellable), make_thumbnails
//   frame_ops.h   resize (letterbox/crop/stretch), upscale, psnr, ssim, colour conversion
//   encoder.h     Encoder (MP4/H.264, MKV, WebM/VP9, GIF, PNG sequence, PNG), write_png
//   metadata.h    read_generation_metadata, sidecar_path
//   error.h       dfs::media::Error
//
// None of these headers includes libav, OpenCV or torch.
#pragma once

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/error.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/metadata.h"
#include "dfs/media/probe.h"
#include "dfs/media/thumbnails.h"
