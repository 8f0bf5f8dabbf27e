/* memlimit_govern: the governor's law (memlimit_law.c, the one memrun runs) compiled into the library
 * under the library's private names (memlimit_int.h): libmemlimit.a links into programs that may have
 * a law_init of their own. One law, built twice. */
#include "memlimit_int.h"
#include "memlimit_law.c"
