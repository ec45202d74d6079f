/* Atomic file output: every file invedit writes (images, .npy arrays, cache
 * entries) goes through here, so a failed or interrupted write never destroys
 * or truncates the file that was at the target path.
 *
 *   ie_afile f;
 *   if (!ie_afile_open(&f, "out.png", err, sizeof err)) fail(err);
 *   ... fwrite(..., f.fp) ...
 *   if (!ie_afile_commit(&f, err, sizeof err)) fail(err);   // or ie_afile_abort(&f)
 *
 * A regular target (or a new one) is written to a temporary file in the same
 * directory (".NAME.XXXXXX.part"), flushed to disk, given the old file's
 * permissions (a new file gets 0666 & ~umask, as fopen would), and renamed
 * over the target only by ie_afile_commit. ie_afile_abort removes the
 * temporary file. A symlink target is followed: the file it points to is
 * replaced atomically and the link is kept.
 *
 * Special targets are written directly: "-" (standard output), and an
 * existing path that is not a regular file (/dev/null, a FIFO, a terminal).
 *
 * Temporary files still open are recorded in a fixed table so that a signal
 * handler can remove them: call ie_afile_remove_pending() (async-signal-safe)
 * from SIGINT/SIGTERM handlers before exiting. Programs should also ignore
 * SIGXFSZ (a file-size limit then makes the write fail with EFBIG, which
 * ie_afile_commit reports, instead of killing the process).
 */
#ifndef IE_UTIL_ATOMIC_FILE_H
#define IE_UTIL_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct ie_afile {
    FILE *fp;    /* write here */
    char *path;  /* the target, as given */
    char *final; /* where the rename goes (the symlink's target for a symlink) */
    char *tmp;   /* the temporary file; NULL when written directly */
    int slot;    /* index in the pending table, -1 if none */
} ie_afile;

/* Opens a writer for path. On failure returns false with a message naming
 * the path and the reason (missing directory, permission, ...). */
bool ie_afile_open(ie_afile *f, const char *path, char *err, size_t errlen);

/* Flushes, syncs and closes the temporary file, then renames it over the
 * target. On failure the temporary file is removed, the target is left as it
 * was, and false is returned with a message. f is released either way. */
bool ie_afile_commit(ie_afile *f, char *err, size_t errlen);

/* Closes and removes the temporary file; the target is untouched. Safe on a
 * zeroed or already committed/aborted f. */
void ie_afile_abort(ie_afile *f);

/* Checks, before any long work, that path could be written: "-" or an
 * existing non-regular file is fine; otherwise its directory must exist and
 * be writable, and an existing target must not be a directory. */
bool ie_afile_check_writable(const char *path, char *err, size_t errlen);

/* Removes every temporary file still pending. Async-signal-safe. */
void ie_afile_remove_pending(void);

#endif
