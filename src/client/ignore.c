/* ignore: .ferryignore patterns (see ignore.h). (Being written: issue 6.) */
#include "ignore.h"
