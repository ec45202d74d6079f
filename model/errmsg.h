/* The model room's error messages: every loader returns an ie_status and
 * explains it in a caller's (err, errlen) buffer, which may be NULL. */
#ifndef IE_MODEL_ERRMSG_H
#define IE_MODEL_ERRMSG_H

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>

static inline void ie_set_err(char *err, size_t errlen, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static inline void ie_set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#endif
