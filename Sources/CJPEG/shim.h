// libjpeg-turbo's libjpeg API (Debian: libjpeg62-turbo-dev). Used from C only (CImageCodecs):
// libjpeg reports errors through error_exit, which must not return (a longjmp in C).
#include <stdio.h>
#include <jpeglib.h>
