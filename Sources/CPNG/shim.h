// libpng 1.6 (Debian: libpng-dev). Used from C only (CImageCodecs): libpng reports errors by
// longjmp, which Swift code cannot take part in.
#include <png.h>
