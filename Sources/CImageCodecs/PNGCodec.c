// PNG decoding and encoding through libpng 1.6's classic API (libpng manual, "Reading PNG files
// simply" / "Writing"). Errors arrive in error_callback, which records the message and
// png_longjmp()s back to the setjmp of the call.
#include "CImageCodecs.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_report {
    char *message;
    size_t capacity;
} png_report;

static void error_callback(png_structp png, png_const_charp text) {
    png_report *r = (png_report *)png_get_error_ptr(png);
    if (r->message && r->capacity) snprintf(r->message, r->capacity, "%s", text);
    png_longjmp(png, 1);
}

// Warnings (ancillary-chunk CRC errors, unknown chunks, ...) do not stop a decode.
static void warning_callback(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void set_message(char *message, size_t capacity, const char *text) {
    if (message && capacity) snprintf(message, capacity, "%s", text);
}

typedef struct png_source {
    const unsigned char *data;
    size_t size;
    size_t position;
} png_source;

static void read_callback(png_structp png, png_bytep out, size_t count) {
    png_source *s = (png_source *)png_get_io_ptr(png);
    if (count > s->size - s->position) png_error(png, "file truncated (ends inside a chunk)");
    memcpy(out, s->data + s->position, count);
    s->position += count;
}

int moco_png_decode(const unsigned char *data, size_t size, size_t max_pixels, moco_image *out, char *message, size_t capacity) {
    max_pixels = moco_image_pixel_limit(max_pixels);
    out->width = out->height = out->channels = 0;
    out->pixels = NULL;
    // PNG spec 5.2: the eight-byte signature 89 50 4E 47 0D 0A 1A 0A.
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_message(message, capacity, "not a PNG file (no PNG signature)");
        return -1;
    }
    png_report report = {message, capacity};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &report, error_callback, warning_callback);
    if (!png) {
        set_message(message, capacity, "cannot create a libpng read structure");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, capacity, "cannot create a libpng info structure");
        return -1;
    }
    // Written after setjmp and read after the jump: volatile (C11 7.13.2.1).
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    png_source source = {data, size, 0};
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &source, read_callback);
    png_set_user_limits(png, MOCO_IMAGE_MAX_SIDE, MOCO_IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int depth = 0, colour = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &depth, &colour, &interlace, NULL, NULL);
    if ((size_t)width * height > max_pixels) {
        char text[128];
        snprintf(text, sizeof text, "image of %ux%u pixels is larger than accepted (%d per side, %zu in all)",
                 (unsigned)width, (unsigned)height, MOCO_IMAGE_MAX_SIDE, max_pixels);
        png_error(png, text);
    }
    int grey = (colour & PNG_COLOR_MASK_COLOR) == 0;
    if (colour == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (grey && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if (colour & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels != (grey ? 1 : 3) || png_get_bit_depth(png, info) != 8 || row_bytes != (size_t)width * (size_t)channels)
        png_error(png, "unexpected sample layout after conversion to 8-bit grey/RGB");
    pixels = (unsigned char *)malloc(row_bytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->pixels = pixels;
    return 0;
}

void moco_image_free(moco_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
}

typedef struct png_sink {
    unsigned char *data;
    size_t size;
    size_t capacity;
} png_sink;

static void write_callback(png_structp png, png_bytep in, size_t count) {
    png_sink *s = (png_sink *)png_get_io_ptr(png);
    if (count > s->capacity - s->size) {
        size_t grown = s->capacity ? s->capacity : 4096;
        while (grown - s->size < count) grown *= 2;
        unsigned char *next = (unsigned char *)realloc(s->data, grown);
        if (!next) png_error(png, "out of memory");
        s->data = next;
        s->capacity = grown;
    }
    memcpy(s->data + s->size, in, count);
    s->size += count;
}

static void flush_callback(png_structp png) { (void)png; }

/// Samples per pixel of a PNG colour type (PNG spec, table 11.1), 0 for an unknown type.
static int samples_per_pixel(int colour) {
    switch (colour) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 0;
    }
}

/// Whether the PNG spec allows `depth` for `colour` (table 11.1).
static int depth_allowed(int colour, int depth) {
    switch (colour) {
    case PNG_COLOR_TYPE_GRAY: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case PNG_COLOR_TYPE_PALETTE: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_GRAY_ALPHA:
    case PNG_COLOR_TYPE_RGB_ALPHA: return depth == 8 || depth == 16;
    default: return 0;
    }
}

int moco_png_encode(const moco_png_spec *spec, const void *samples, unsigned char **out, size_t *out_size,
                    char *message, size_t capacity) {
    *out = NULL;
    *out_size = 0;
    int spp = samples_per_pixel(spec->color_type);
    if (spp == 0 || !depth_allowed(spec->color_type, spec->bit_depth)) {
        set_message(message, capacity, "colour type and bit depth not allowed by the PNG spec (table 11.1)");
        return -1;
    }
    if (spec->width <= 0 || spec->height <= 0 || spec->width > MOCO_IMAGE_MAX_SIDE || spec->height > MOCO_IMAGE_MAX_SIDE) {
        set_message(message, capacity, "image width and height must be 1...32768");
        return -1;
    }
    if (spec->color_type == PNG_COLOR_TYPE_PALETTE &&
        (!spec->palette || spec->palette_entries < 1 || spec->palette_entries > (1 << spec->bit_depth))) {
        set_message(message, capacity, "a palette image needs 1...2^depth palette entries");
        return -1;
    }
    png_report report = {message, capacity};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &report, error_callback, warning_callback);
    if (!png) {
        set_message(message, capacity, "cannot create a libpng write structure");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        set_message(message, capacity, "cannot create a libpng info structure");
        return -1;
    }
    png_sink sink = {NULL, 0, 0};
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(sink.data);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, &sink, write_callback, flush_callback);
    png_set_IHDR(png, info, (png_uint_32)spec->width, (png_uint_32)spec->height, spec->bit_depth, spec->color_type,
                 spec->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (spec->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[256];
        for (int i = 0; i < spec->palette_entries; i++) {
            palette[i].red = spec->palette[3 * i];
            palette[i].green = spec->palette[3 * i + 1];
            palette[i].blue = spec->palette[3 * i + 2];
        }
        png_set_PLTE(png, info, palette, spec->palette_entries);
    }
    png_write_info(png, info);
    // One byte per sample below 8 bits: libpng packs them (png_set_packing). 16-bit samples
    // are big-endian in the file (PNG spec 7.1): swap host-order little-endian ones.
    if (spec->bit_depth < 8) png_set_packing(png);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (spec->bit_depth == 16) png_set_swap(png);
#endif
    size_t stride = (size_t)spec->width * (size_t)spp * (spec->bit_depth == 16 ? 2 : 1);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)spec->height);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < spec->height; y++) rows[y] = (png_bytep)samples + (size_t)y * stride;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *out_size = sink.size;
    return 0;
}

void moco_buffer_free(void *buffer) { free(buffer); }
