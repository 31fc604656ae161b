// CImageCodecs: PNG (libpng 1.6) and JPEG (libjpeg-turbo's libjpeg API) decoding and encoding
// for `--data folder` and `moco export-folder`.
//
// Both libraries report errors by a non-local jump (libpng: png_longjmp from the error callback,
// PNG library manual "Setting up error handling"; libjpeg: the error manager's error_exit, which
// must not return, libjpeg.txt "Error handling"). Swift frames cannot be jumped over, so every
// call into the libraries, and every setjmp, lives in this C target; the functions below return
// 0 on success and -1 on failure with the library's message in `message`.
#ifndef MOCO_CIMAGECODECS_H
#define MOCO_CIMAGECODECS_H

#include <stddef.h>

/// Largest accepted width or height, and the default largest width x height, of a decoded
/// image: 2^26 pixels (a 67-megapixel photo; 192 MB as RGB) bounds the buffer a hostile header
/// can make the decoder allocate (scripts/fuzz.sh treats a single allocation over 512 MB as a
/// bug). The decoders take the pixel limit as an argument (moco_image_pixel_limit); the fuzz target
/// passes a smaller one so that its executions stay fast.
#define MOCO_IMAGE_MAX_SIDE 32768
#define MOCO_IMAGE_MAX_PIXELS ((size_t)1 << 26)

/// The pixel limit a decoder applies for a caller's `max_pixels`: 0 or anything above
/// MOCO_IMAGE_MAX_PIXELS gives MOCO_IMAGE_MAX_PIXELS.
static inline size_t moco_image_pixel_limit(size_t max_pixels) {
    return max_pixels == 0 || max_pixels > MOCO_IMAGE_MAX_PIXELS ? MOCO_IMAGE_MAX_PIXELS : max_pixels;
}

/// A decoded image: row-major [height, width, channels] 8-bit samples; channels is 1 (grey) or
/// 3 (RGB). `pixels` is malloc'd: release it with moco_image_free.
typedef struct moco_image {
    int width;
    int height;
    int channels;
    unsigned char *pixels;
} moco_image;

/// Decodes a whole PNG file held in memory (PNG spec, ISO/IEC 15948). Every colour type and bit
/// depth is converted to 8-bit grey or RGB: palette entries are expanded to RGB (colour type 3),
/// grey of 1, 2 or 4 bits is scaled to 8, 16-bit samples are scaled with rounding
/// (round(v * 255 / 65535), png_set_scale_16), an alpha channel or tRNS transparency is dropped
/// (the colour samples are kept as stored, as PIL's convert("RGB") does), Adam7 interlacing is
/// undone, and gAMA/sRGB/iCCP are ignored. Grey and grey+alpha give 1 channel, the others 3.
int moco_png_decode(const unsigned char *data, size_t size, size_t max_pixels, moco_image *out, char *message, size_t capacity);

/// Decodes a whole baseline or progressive JPEG file held in memory (libjpeg API: jpeg_mem_src,
/// jpeg_read_header, jpeg_start_decompress, jpeg_read_scanlines). One component gives 1 channel
/// (JCS_GRAYSCALE), YCbCr or RGB give 3 (JCS_RGB); CMYK is refused with libjpeg's message. A
/// file that ends before its last scan (libjpeg's warning JWRN_JPEG_EOF, "Premature end of JPEG
/// file") is an error; other warnings are ignored. EXIF orientation is not applied.
int moco_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, moco_image *out, char *message, size_t capacity);

void moco_image_free(moco_image *image);

/// What moco_png_encode writes: PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha,
/// 6 RGBA) and bit depth (PNG spec, table 11.1: 1, 2, 4, 8, 16 for grey; 8, 16 for RGB, grey+alpha
/// and RGBA; 1, 2, 4, 8 for palette), Adam7 interlacing, and for colour type 3 the palette as
/// `palette_entries` RGB triples.
typedef struct moco_png_spec {
    int width;
    int height;
    int color_type;
    int bit_depth;
    int interlace;
    const unsigned char *palette;
    int palette_entries;
} moco_png_spec;

/// Encodes row-major samples, one unsigned char per sample for bit depths up to 8 (values below
/// 2^depth; palette indices for colour type 3), one host-order unsigned short per sample for 16.
/// On success *out is a malloc'd buffer of *out_size bytes (release with moco_buffer_free).
int moco_png_encode(const moco_png_spec *spec, const void *samples, unsigned char **out, size_t *out_size,
                    char *message, size_t capacity);

/// Encodes [height, width, channels] 8-bit samples (channels 1 or 3) as a baseline JPEG of the
/// given quality (1-100; libjpeg's jpeg_set_quality, 4:2:0 chroma subsampling for colour).
int moco_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                     unsigned char **out, size_t *out_size, char *message, size_t capacity);

void moco_buffer_free(void *buffer);

#endif
