/* memlimit_size: the library's size parser (MEMLIMIT=SIZE) is memrun's own, config/size.c, compiled
 * here under the library's private names: libmemlimit.a links into programs that may have a
 * size_parse of their own. One parser, built twice. */
#include "memlimit_int.h"

#define size_parse memlimit__size_parse
#define pct_parse memlimit__pct_parse
#define duration_parse memlimit__duration_parse
#define size_format memlimit__size_format
#include "../config/size.c"
