// JPEG decoding and encoding through the libjpeg API of libjpeg-turbo (libjpeg.txt: "Decompression
// details", "Compression details", "Error handling"). The error manager's error_exit formats the
// message and longjmp()s back to the setjmp of the call.
#include "CImageCodecs.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct jpeg_report {
    struct jpeg_error_mgr manager;   // first: libjpeg passes &manager as cinfo->err
    jmp_buf jump;
    char *message;
    size_t capacity;
    int truncated;
} jpeg_report;

static void error_exit(j_common_ptr cinfo) {
    jpeg_report *r = (jpeg_report *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    if (r->message && r->capacity) snprintf(r->message, r->capacity, "%s", text);
    longjmp(r->jump, 1);
}

// Level -1 is a warning (libjpeg.txt, emit_message); only a premature end of the data matters.
static void emit_message(j_common_ptr cinfo, int level) {
    jpeg_report *r = (jpeg_report *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) r->truncated = 1;
        cinfo->err->num_warnings++;
    }
}

static void output_message(j_common_ptr cinfo) { (void)cinfo; }

static void install(jpeg_report *r, char *message, size_t capacity) {
    jpeg_std_error(&r->manager);
    r->manager.error_exit = error_exit;
    r->manager.emit_message = emit_message;
    r->manager.output_message = output_message;
    r->message = message;
    r->capacity = capacity;
    r->truncated = 0;
}

int moco_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, moco_image *out, char *message, size_t capacity) {
    max_pixels = moco_image_pixel_limit(max_pixels);
    out->width = out->height = out->channels = 0;
    out->pixels = NULL;
    // JPEG (ITU T.81, B.1.1.2): SOI marker FF D8 first.
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        if (message && capacity) snprintf(message, capacity, "not a JPEG file (no SOI marker)");
        return -1;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_report report;
    memset(&cinfo, 0, sizeof cinfo);
    install(&report, message, capacity);
    cinfo.err = &report.manager;
    unsigned char *volatile pixels = NULL;
    if (setjmp(report.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    (void)jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width > MOCO_IMAGE_MAX_SIDE || cinfo.image_height > MOCO_IMAGE_MAX_SIDE ||
        (size_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        if (message && capacity)
            snprintf(message, capacity, "image of %ux%u pixels is larger than accepted (%d per side, %zu in all)",
                     cinfo.image_width, cinfo.image_height, MOCO_IMAGE_MAX_SIDE, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int grey = cinfo.num_components == 1;
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    (void)jpeg_start_decompress(&cinfo);
    int channels = cinfo.output_components;
    if (channels != (grey ? 1 : 3)) {
        if (message && capacity) snprintf(message, capacity, "unexpected %d output components", channels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)channels;
    pixels = (unsigned char *)malloc(row_bytes * cinfo.output_height);
    if (!pixels) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * row_bytes;
        (void)jpeg_read_scanlines(&cinfo, &row, 1);
    }
    (void)jpeg_finish_decompress(&cinfo);
    if (report.truncated) {
        if (message && capacity) snprintf(message, capacity, "Premature end of JPEG file (the file is truncated)");
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = channels;
    out->pixels = pixels;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int moco_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                     unsigned char **out, size_t *out_size, char *message, size_t capacity) {
    *out = NULL;
    *out_size = 0;
    if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 || width > MOCO_IMAGE_MAX_SIDE ||
        height > MOCO_IMAGE_MAX_SIDE || quality < 1 || quality > 100) {
        if (message && capacity) snprintf(message, capacity, "JPEG encoding needs 1 or 3 channels, 1...32768 pixels per side and quality 1...100");
        return -1;
    }
    struct jpeg_compress_struct cinfo;
    jpeg_report report;
    memset(&cinfo, 0, sizeof cinfo);
    install(&report, message, capacity);
    cinfo.err = &report.manager;
    unsigned char *buffer = NULL;
    unsigned long size = 0;
    if (setjmp(report.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t row_bytes = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * row_bytes);
        (void)jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = (size_t)size;
    return 0;
}
