/* rules: per-device upload and download rules (see rules.h).
 * (Being written: issue 6.) */
#include "rules.h"
