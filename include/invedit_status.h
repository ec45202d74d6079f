/* invedit: the status codes every function of the library returns.
 *
 * Part of the public API (installed with invedit.h). Functions return IE_OK or
 * one of the codes below, and fill a caller-supplied message buffer with a
 * sentence that names what was wrong.
 */
#ifndef INVEDIT_STATUS_H
#define INVEDIT_STATUS_H

/* IE_API marks the functions libinvedit exports. The library is compiled
 * with hidden symbol visibility (-fvisibility=hidden) and IE_BUILDING_LIBRARY
 * defined, so only what this mark names is visible in libinvedit.so; for
 * users of the library it expands to nothing. */
#ifndef IE_API
#if defined(IE_BUILDING_LIBRARY) && defined(__GNUC__)
#define IE_API __attribute__((visibility("default")))
#else
#define IE_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ie_status {
    IE_OK = 0,
    IE_ERR_SHAPE = 1,     /* tensor shapes or dtypes do not fit the op */
    IE_ERR_ARG = 2,       /* an argument is out of range */
    IE_ERR_NOMEM = 3,     /* host or device memory exhausted */
    IE_ERR_DEVICE = 4,    /* the Vulkan device failed (lost, unsupported, ...) */
    IE_ERR_NODEVICE = 5,  /* no Vulkan loader or no usable device */
    IE_ERR_IO = 6,        /* a file could not be read or written */
    IE_ERR_FORMAT = 7,    /* a file is malformed */
    IE_ERR_CANCELLED = 8, /* the caller cancelled */
    IE_ERR_UNSUPPORTED = 9,
    IE_ERR_NONFINITE = 10, /* a computation produced NaN or Inf (bad weights, fp16 overflow) */
} ie_status;

IE_API const char *ie_status_name(ie_status s);

#ifdef __cplusplus
}
#endif

#endif
