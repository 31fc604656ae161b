#include "CMPIShim.h"
