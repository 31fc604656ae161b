#include <cblas.h>
// OpenBLAS extensions for thread control.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
